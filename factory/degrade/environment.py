"""Environment stage: what the scene, the air and the sensor add.

dark illumination, atmospheric turbulence, gaussian noise, color diffusion.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from ._common import REFLECT, base_grid, lerp_u8, low_res_size, resize_to, short_side, smooth_field, to_u8
from .registry import Param, register


@register(
    "dark illumination",
    stage="environment",
    aliases=("darkness", "low light", "low-light", "underexposure", "dark_illumination"),
    params={
        "gain": Param(1.0, 0.15, 1.0, "× exposure"),
        "gamma": Param(1.0, 2.2, 1.0, "tone-curve exponent"),
    },
    random=False,
    description="Low light: exposure falls and the tone curve crushes the shadows.",
)
def dark_illumination(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    x = np.arange(256, dtype=np.float64) / 255.0
    lut = np.clip(np.rint(255.0 * p["gain"] * x ** p["gamma"]), 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


@register(
    "atmospheric turbulence",
    stage="environment",
    aliases=("turbulence", "heat haze", "heat shimmer", "atmospheric_turbulence"),
    params={
        "displacement": Param(0.0, 0.012, 1.0, "× short side (RMS pixel wander)"),
        "blur": Param(0.0, 0.003, 1.0, "× short side (Gaussian sigma)"),
    },
    description="Heat shimmer: a smooth random warp of the picture plus a slight blur.",
)
def atmospheric_turbulence(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    ss = short_side(img)
    # Two octaves of smooth random displacement, drawn on grids independent of the image size.
    gh, gw = low_res_size(h, w, 96)
    coarse = (max(2, round(6 * h / max(h, w))), max(2, round(6 * w / max(h, w))))
    fine = (max(2, round(24 * h / max(h, w))), max(2, round(24 * w / max(h, w))))
    fx = smooth_field(rng, coarse, gh, gw) + 0.5 * smooth_field(rng, fine, gh, gw)
    fy = smooth_field(rng, coarse, gh, gw) + 0.5 * smooth_field(rng, fine, gh, gw)
    amp = p["displacement"] * ss
    dx = resize_to(fx * amp, w, h, cv2.INTER_LINEAR)
    dy = resize_to(fy * amp, w, h, cv2.INTER_LINEAR)
    gx, gy = base_grid(h, w)
    out = cv2.remap(img, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=REFLECT)
    sigma = p["blur"] * ss
    if sigma > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), sigma, borderType=REFLECT)
    if out.ndim == 2:
        out = out[:, :, None]
    return out


@functools.lru_cache(maxsize=1)
def _normal_table() -> np.ndarray:
    """65536 equiprobable standard-normal quantiles: a uint16 draw indexes a Gaussian sample.

    Drawing raw bytes and looking them up is several times faster than
    ``Generator.standard_normal`` and exact to 1/65536 in probability.
    """
    from scipy.special import ndtri

    u = (np.arange(65536, dtype=np.float64) + 0.5) / 65536.0
    t = ndtri(u).astype(np.float32)
    t.setflags(write=False)
    return t


@register(
    "gaussian noise",
    stage="environment",
    aliases=("noise", "sensor noise", "gaussian_noise"),
    params={"sigma": Param(0.0, 0.2, 1.0, "× 255, per-channel standard deviation")},
    scale_invariant=False,
    description="Sensor noise: zero-mean Gaussian noise added to every pixel and channel.",
)
def gaussian_noise(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    idx = np.frombuffer(rng.bytes(img.size * 2), dtype=np.uint16).reshape(img.shape)
    # The pixels are integers, so round(img + z) == img + round(z): add integer noise directly.
    levels = np.rint(_normal_table() * np.float32(p["sigma"] * 255.0)).astype(np.int16)
    return cv2.add(img, levels[idx], dtype=cv2.CV_8U)


@register(
    "color diffusion",
    stage="environment",
    aliases=("colour diffusion", "color bleeding", "colour bleeding", "chroma bleed", "color_diffusion"),
    params={
        "spread": Param(0.0, 0.05, 1.0, "× short side (chroma blur sigma)"),
        "drift": Param(0.0, 0.035, 1.0, "× short side (chroma offset)"),
        "mix": Param(0.0, 1.0, 0.5, "share of diffused chroma"),
    },
    description="Colours bleed across edges and drift off their objects (chroma blurred and offset).",
)
def color_diffusion(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    ss = short_side(img)
    angle = float(rng.uniform(0.0, 2.0 * np.pi))
    luma, cr, cb = cv2.split(cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb))
    chroma = cv2.merge([cr, cb])  # (cv2 split/merge: strided numpy copies are far slower)
    sigma = p["spread"] * ss
    # Chroma is smooth after diffusion: process it at a size where sigma is ~2 px.
    f = max(1.0, sigma / 2.0)
    sh, sw = max(1, round(h / f)), max(1, round(w / f))
    small = resize_to(chroma, sw, sh, cv2.INTER_AREA) if f > 1 else chroma
    fx, fy = w / sw, h / sh
    if sigma / f > 0.05:
        small = cv2.GaussianBlur(small, (0, 0), sigma / f, borderType=REFLECT)
    drift = p["drift"] * ss
    m = np.float32([[1, 0, np.cos(angle) * drift / fx], [0, 1, np.sin(angle) * drift / fy]])
    small = cv2.warpAffine(small, m, (sw, sh), flags=cv2.INTER_LINEAR, borderMode=REFLECT)
    diffused = resize_to(small, w, h, cv2.INTER_LINEAR) if f > 1 else small
    if diffused.ndim == 2:
        diffused = diffused.reshape(h, w, 2)
    mixed = lerp_u8(chroma, diffused, p["mix"])
    return cv2.cvtColor(cv2.merge([luma, *cv2.split(mixed)]), cv2.COLOR_YCrCb2RGB)
