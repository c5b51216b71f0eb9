"""Environment stage: what the scene, the air and the sensor add.

dark illumination, atmospheric turbulence, gaussian noise, color diffusion; each in the
``physical`` style (first) and the ``reference`` style (at the end of the module).
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from ._common import (
    REFLECT,
    base_grid,
    gaussian_blur,
    lerp_u8,
    low_res_size,
    ref_unit,
    resize_to,
    short_side,
    smooth_field,
)
from .registry import Curve, Influence, Param, register


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
    style="physical",
    influence=Influence(
        {
            "low": (
                "the scene is slightly underexposed",
                "the light is a little dim and the shadows are deeper",
            ),
            "medium": (
                "the scene is clearly underexposed and the shadows are crushed",
                "low light darkens the picture and hides the shadow regions",
            ),
            "high": (
                "the scene is very dark and most of it sinks into black",
                "severe underexposure leaves only the brightest parts visible",
            ),
        },
        hides="shadow details and dark colours",
        keeps="bright regions and strong outlines",
    ),
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
    style="physical",
    influence=Influence(
        {
            "low": (
                "a slight heat shimmer bends straight lines",
                "weak turbulence adds a faint wobble to edges",
            ),
            "medium": (
                "heat shimmer warps the picture and wobbles straight lines",
                "turbulence bends and slightly blurs the scene",
            ),
            "high": (
                "strong turbulence distorts shapes and smears the whole scene",
                "heavy heat shimmer warps objects out of their true shape",
            ),
        },
        hides="straight edges, fine geometry and small details",
        keeps="objects with their rough shapes and colours",
    ),
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
    style="physical",
    influence=Influence(
        {
            "low": (
                "light sensor noise adds a fine grain",
                "a faint speckle covers the picture",
            ),
            "medium": (
                "visible grain speckles every region",
                "sensor noise covers the picture with coloured speckle",
            ),
            "high": (
                "heavy noise buries the picture under dense speckle",
                "strong grain overwhelms the faint structure of the scene",
            ),
        },
        hides="fine texture and faint detail",
        keeps="large objects, strong edges and the main colours",
    ),
)
def gaussian_noise(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    idx = np.frombuffer(rng.bytes(img.size * 2), dtype=np.uint16).reshape(img.shape)
    # The pixels are integers, so round(img + z) == img + round(z): add integer noise directly.
    levels = np.rint(_normal_table() * np.float32(p["sigma"] * 255.0)).astype(np.int16)
    return cv2.add(img, np.take(levels, idx), dtype=cv2.CV_8U)  # take: a faster gather than levels[idx]


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
    style="physical",
    influence=Influence(
        {
            "low": (
                "colours bleed slightly across edges",
                "a little chroma spills past object borders",
            ),
            "medium": (
                "colours bleed across edges and drift off their objects",
                "chroma spreads well beyond the objects it belongs to",
            ),
            "high": (
                "colours smear far from their objects and mix together",
                "strong colour bleeding detaches colours from their objects",
            ),
        },
        hides="links between colours and their objects",
        keeps="brightness structure, shapes and layout",
    ),
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


# ---------------------------------------------------------------- reference style
# What the reference implementation draws under each name, at its strength curve. Its pixel sizes
# assume a 640x480 frame and are read here as fractions of that frame's short side (ref_unit).


@register(
    "dark illumination",
    stage="environment",
    style="reference",
    params={"gain": Param(1.0, 0.0, 2.0, "× every pixel value (truncated)")},
    random=False,
    description="Dimming: every pixel value is multiplied by 1 - s² (94 % of the brightness at 0.23, 19 % at 0.9).",
    influence=Influence(
        {
            "low": (
                "the picture is a touch dimmer than normal",
                "the brightness is lowered slightly and evenly",
            ),
            "medium": (
                "the whole picture is clearly dimmed and its contrast is reduced",
                "the scene is noticeably darker everywhere, with flatter contrast",
            ),
            "high": (
                "the picture is dimmed to a dark, low-contrast frame",
                "the scene is so dark that only faint outlines and the brightest parts remain",
            ),
        },
        hides="shadow details and dark colours",
        keeps="bright regions and strong outlines",
    ),
)
def dark_illumination_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    lut = np.floor(np.arange(256, dtype=np.float64) * p["gain"] + 1e-9).clip(0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


@register(
    "atmospheric turbulence",
    stage="environment",
    style="reference",
    params={
        "amplitude": Param(0.0, 40.0 / 480.0, 1.0, "× short side (horizontal shear of the rows)"),
        "period": Param(30.0 / 480.0, 30.0 / 480.0, 1.0, "× short side (rows per radian of the wave)"),
        "contrast": Param(0.0, 0.2, 1.0, "local-contrast gain (unsharp mask, sigma 40/480 short side)"),
    },
    description=(
        "A strong sine-wave shear: every row is shifted sideways (and 0.7× as far vertically) along "
        "a wave down the picture, tens of pixels at 0.9, bending every straight line into waves."
    ),
    influence=Influence(
        {
            "low": (
                "a wavy distortion shifts the rows of the picture sideways and bends straight lines",
                "the picture is sheared by a gentle wave, so edges wobble from row to row",
            ),
            "medium": (
                "a strong wave shears the picture, bending outlines into clear S-shapes",
                "rows of the picture are pushed sideways along a wave and objects look warped",
            ),
            "high": (
                "a violent sine-wave shear twists the picture and drags objects far out of shape",
                "the rows are displaced by tens of pixels along a wave and shapes are badly warped",
            ),
        },
        hides="straight edges, exact shapes and positions",
        keeps="colours, textures and rough object positions",
    ),
)
def atmospheric_turbulence_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    ss = short_side(img)
    phase0 = float(rng.uniform(0.0, 2.0 * np.pi))
    rows = np.arange(h, dtype=np.float64)
    # The reference also moves the wave with the intensity (phase + 5 s); here it stays put and
    # only grows, so the levels of one image are nested versions of the same shear.
    d = (p["amplitude"] * ss) * np.sin(rows / (p["period"] * ss) + phase0)
    gx, gy = base_grid(h, w)
    map_x = gx + d.astype(np.float32)[:, None]
    map_y = gy + (0.7 * d).astype(np.float32)[:, None]
    out = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Once the shear has displaced the rows by more than the texture's scale (stars, cells), more
    # shear no longer lowers the similarity to the clean picture; a light local-contrast boost
    # growing with s keeps the damage growing there.
    out = out.reshape(img.shape)
    a = p["contrast"]
    soft = gaussian_blur(out, 40.0 * ss / 480.0).reshape(img.shape)
    return cv2.addWeighted(out, 1.0 + a, soft, -a, 0.0).reshape(img.shape)


register(
    "gaussian noise",
    stage="environment",
    style="reference",
    params={"sigma": Param(0.0, 75.0 / 255.0, 1.0, "× 255, per-channel standard deviation")},
    scale_invariant=False,
    description="Sensor noise: strong zero-mean Gaussian noise on every pixel and channel (sigma 75 levels at 1).",
    influence=Influence(
        {
            "low": (
                "visible grain speckles every region",
                "sensor noise covers the picture with a fine coloured speckle",
            ),
            "medium": (
                "heavy grain speckles every region and blurs fine texture into noise",
                "strong sensor noise covers the picture with coloured speckle",
            ),
            "high": (
                "heavy noise buries the picture under dense speckle",
                "strong grain overwhelms the faint structure of the scene",
            ),
        },
        hides="fine texture and faint detail",
        keeps="large objects, strong edges and the main colours",
    ),
)(gaussian_noise)


_REF_DISCS = 100


@register(
    "color diffusion",
    stage="environment",
    style="reference",
    params={
        "picture": Param(1.0, 0.1, 1.0, "weight of the picture"),
        "diffused": Param(0.0, 0.9, 3.0, "weight of the box-blurred picture (0.9 s · s²)"),
        "window": Curve.of(lambda s: (3 + 2 * math.floor(20 * s)) / 480.0, "(3 + 2 int(20 s)) / 480", "× short side"),
        "discs": Curve.of(
            lambda s: min(1.0, max(0.0, (s - 0.9) / 0.03)), "clip((s - 0.9) / 0.03, 0, 1)", "opacity of grey discs"
        ),
    },
    description=(
        "Diffuse dimming: the picture fades while a wide-blurred, darker copy takes its place "
        "(brightness ×0.67 at 0.45); above 0.9 grey discs appear in the blur."
    ),
    influence=Influence(
        {
            "low": (
                "the picture is dimmed and a faint diffuse blur creeps over it",
                "a soft, darker haze spreads over the scene and lowers its contrast",
            ),
            "medium": (
                "the picture is clearly dimmed and softened by a diffuse blur",
                "light and colour diffuse into a dim, low-contrast blur",
            ),
            "high": (
                "the picture dissolves into a wide blur in which only broad patches of colour remain",
                "heavy diffusion blurs the scene into soft colour blobs",
            ),
        },
        hides="edges, fine detail and the true brightness",
        keeps="the broad colour layout and largest shapes",
    ),
)
def color_diffusion_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    u = ref_unit(img)
    pos = rng.random((_REF_DISCS, 2))
    radius = rng.integers(5, 20, _REF_DISCS)
    grey = rng.integers(0, 255, _REF_DISCS)
    size = p["window"] * short_side(img)
    k = max(1, int(round(size)) | 1)
    blurred = _box_blur(img, k)
    disc_alpha = p["discs"]
    if disc_alpha > 0.0:  # grey discs drawn into the blurred layer (opaque in the reference)
        scaled = cv2.convertScaleAbs(blurred, alpha=s * s)
        discs = np.zeros_like(img)
        mask = np.zeros((h, w), np.uint8)
        shift = 3
        one = 1 << shift
        a = int(round(255 * disc_alpha))
        for i in range(int(math.floor(100 * s))):
            c = (int(round(pos[i, 0] * w * one)), int(round(pos[i, 1] * h * one)))
            r = int(round(radius[i] * u * one))
            cv2.circle(discs, c, r, (int(grey[i]),) * 3, -1, cv2.LINE_8, shift)
            cv2.circle(mask, c, r, a, -1, cv2.LINE_8, shift)
        layer = lerp_u8(scaled, discs, mask.astype(np.float32) * (1.0 / 255.0))
        return cv2.addWeighted(img, p["picture"], layer, 0.9 * s, 0.0).reshape(img.shape)
    return cv2.addWeighted(img, p["picture"], blurred, p["diffused"], 0.0).reshape(img.shape)


def _box_blur(img: np.ndarray, k: int) -> np.ndarray:
    """Mean over a k×k window (the reference's wide, nearly flat Gaussian), edges reflected.

    OpenCV's box filter keeps running sums, so its cost does not depend on ``k``.
    """
    if k <= 1:
        return img
    return cv2.blur(img, (k, k), borderType=REFLECT).reshape(img.shape)
