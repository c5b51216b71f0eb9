"""Acquisition stage: what the camera and its optics do to the picture.

lens blur, lens flare, motion blur, dirty lens, hsv saturation.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._common import (
    disc_kernel,
    filter_at_scale,
    lerp_u8,
    line_kernel,
    low_res_size,
    resize_to,
    short_side,
    to_u8,
)
from .registry import Param, register


@register(
    "lens blur",
    stage="acquisition",
    aliases=("defocus blur", "defocus", "out of focus", "lens_blur"),
    params={"radius": Param(0.0, 0.025, 1.0, "× short side")},
    random=False,
    description="Out-of-focus optics: convolution with a defocus disc (brightness preserved).",
)
def lens_blur(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    r = p["radius"] * short_side(img)
    return filter_at_scale(img, disc_kernel, r, max_px=1.5)


# Lens flare: a glare source, its halo and a chain of ghost reflections along the line through
# the optical centre. The map is built on a small grid and upsampled (it is smooth anyway).
_FLARE_GRID = 160


@register(
    "lens flare",
    stage="acquisition",
    aliases=("flare", "glare", "lens_flare"),
    params={
        "strength": Param(0.0, 0.9, 1.0, "peak added light (screen blend)"),
        "halo": Param(0.25, 0.55, 1.0, "× diagonal"),
    },
    description="Stray light from a bright source: glow, halo ring and ghost discs, screen-blended.",
)
def lens_flare(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    # Random draws (fixed count, independent of the intensity).
    src = rng.uniform(0.1, 0.9, size=2)
    tint = np.array([1.0, rng.uniform(0.85, 0.97), rng.uniform(0.65, 0.9)], np.float32)
    ghosts_t = rng.uniform(-1.4, 0.9, size=5)
    ghosts_r = rng.uniform(0.02, 0.08, size=5)
    ghosts_a = rng.uniform(0.15, 0.45, size=5)
    ghost_col = rng.uniform(0.5, 1.0, size=(5, 3)).astype(np.float32)

    gh, gw = low_res_size(h, w, _FLARE_GRID)
    ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float32)
    xs = (xs + 0.5) / gw * w
    ys = (ys + 0.5) / gh * h
    diag = math.hypot(h, w)
    sx, sy = src[0] * w, src[1] * h
    d = np.hypot(xs - sx, ys - sy) / diag
    halo = p["halo"]
    core = np.exp(-((d / (0.06 * halo / 0.4)) ** 2))
    glow = np.exp(-((d / halo) ** 2) * 2.0)
    ring = np.exp(-(((d - 0.35 * halo) / (0.025)) ** 2)) * 0.35
    lum = core + 0.6 * glow + ring
    flare = lum[:, :, None] * tint[None, None, :]
    cx, cy = w / 2.0, h / 2.0
    for t, r, a, col in zip(ghosts_t, ghosts_r, ghosts_a, ghost_col):
        gx = cx + (cx - sx) * t
        gy = cy + (cy - sy) * t
        dg = np.hypot(xs - gx, ys - gy) / diag
        disc = np.clip((r - dg) / (0.3 * r) + 0.5, 0.0, 1.0) * a
        flare += disc[:, :, None] * col[None, None, :]
    flare = to_u8(np.clip(flare * p["strength"], 0.0, 1.0) * 255.0)
    flare = resize_to(flare, w, h, cv2.INTER_LINEAR)
    # Screen blend in uint8: out = img + (255 - img) * flare / 255.
    out = cv2.bitwise_not(img)
    cv2.multiply(out, flare, dst=out, scale=1.0 / 255.0)
    return cv2.add(img, out, dst=out)


@register(
    "motion blur",
    stage="acquisition",
    aliases=("camera shake", "motion_blur"),
    params={"length": Param(0.0, 0.06, 1.0, "× short side")},
    description="Camera or subject motion during exposure: a linear streak at a random angle.",
)
def motion_blur(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    angle = float(rng.uniform(0.0, 180.0))
    length = p["length"] * short_side(img)
    # Quantise the angle to 1 degree so kernels are cached across images.
    return filter_at_scale(img, lambda L: line_kernel(round(L, 2), round(angle)), length, max_px=4.0)


_DIRT_GRID = 96


@register(
    "dirty lens",
    stage="acquisition",
    aliases=("dirty", "lens dirt", "smudge", "smudged lens", "dirty_lens"),
    params={"opacity": Param(0.0, 0.9, 0.8, "peak smudge opacity")},
    description="Smudges and dust on the front element: hazy, veiled, locally blurred patches.",
)
def dirty_lens(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    n = 14
    cx = rng.uniform(0.0, 1.0, n)
    cy = rng.uniform(0.0, 1.0, n)
    rad = rng.uniform(0.08, 0.26, n)
    wgt = rng.uniform(0.6, 1.0, n)
    elong = rng.uniform(0.6, 1.6, n)
    veil = np.array([rng.uniform(215, 245)] * 3, np.float32) - np.array([0, 3, 8], np.float32)

    gh, gw = low_res_size(h, w, _DIRT_GRID)
    ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float32)
    xs = (xs + 0.5) / gw
    ys = (ys + 0.5) / gh
    aspect = w / max(h, 1)
    m = np.zeros((gh, gw), np.float32)
    for i in range(n):
        dx = (xs - cx[i]) * aspect / elong[i]
        dy = (ys - cy[i]) * elong[i]
        m += wgt[i] * np.exp(-(dx * dx + dy * dy) / (rad[i] ** 2))
    m = np.clip(m, 0.0, 1.0) * p["opacity"]
    # Light through a smudge: a heavily blurred, low-contrast, brighter version of the scene.
    # It is smooth, so it is computed on the small grid and upsampled with the mask.
    small = resize_to(img, gw, gh, cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.5).astype(np.float32)
    haze = to_u8(0.45 * small + 0.55 * veil[None, None, :])
    haze = resize_to(haze, w, h, cv2.INTER_LINEAR)
    mask = resize_to(m, w, h, cv2.INTER_LINEAR)
    return lerp_u8(img, haze, mask)


@register(
    "hsv saturation",
    stage="acquisition",
    aliases=("saturation", "saturation change", "color saturation", "colour saturation", "hsv_saturation"),
    params={
        "factor_down": Param(1.0, 0.1, 1.0, "× saturation (washed-out images)"),
        "factor_up": Param(1.0, 3.5, 1.0, "× saturation (oversaturated images)"),
    },
    description="Wrong colour processing: HSV saturation scaled down (washed out) or up (garish).",
)
def hsv_saturation(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    up = bool(rng.random() < 0.5)
    jitter = float(rng.uniform(0.85, 1.0))  # per-image share of the tabulated change
    factor = 1.0 + ((p["factor_up"] if up else p["factor_down"]) - 1.0) * jitter
    x = img.astype(np.float32)
    x *= 1.0 / 255.0
    cv2.cvtColor(x, cv2.COLOR_RGB2HSV, dst=x)  # float HSV: no 8-bit hue quantisation
    sat = x[:, :, 1]
    sat *= factor
    np.minimum(sat, 1.0, out=sat)
    cv2.cvtColor(x, cv2.COLOR_HSV2RGB, dst=x)
    x *= 255.0
    return to_u8(x)
