"""Transmission stage: what storage and networks do to the picture.

jpeg compression, block exchange, mean shift, scan lines.
"""

from __future__ import annotations

import cv2
import numpy as np

from ._common import downscale_for, lerp_u8, resize_to, short_side
from .registry import Param, register


@register(
    "jpeg compression",
    stage="transmission",
    aliases=("compression", "jpeg", "jpeg artifacts", "jpeg_compression"),
    params={"quality": Param(100.0, 2.0, 0.6, "JPEG quality (libjpeg scale)")},
    random=False,
    scale_invariant=False,
    description="Lossy JPEG round trip; quality falls over the whole intensity range (100 → 2).",
)
def jpeg_compression(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    q = int(round(p["quality"]))
    ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:  # pragma: no cover - libjpeg never refuses an RGB uint8 image
        raise ValueError(f"jpeg compression: encoder failed on an image of shape {img.shape}.")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(out[:, :, ::-1])


@register(
    "block exchange",
    stage="transmission",
    aliases=("block change", "block swap", "block shuffle", "block_exchange"),
    params={"swapped": Param(0.0, 0.6, 1.0, "fraction of blocks displaced")},
    description="Packet/block errors: square blocks of the picture swapped with each other.",
)
def block_exchange(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    frac_size = float(rng.uniform(0.07, 0.12))
    perm_seed = int(rng.integers(0, 2**63 - 1))
    b = max(1, int(round(frac_size * short_side(img))))
    ny, nx = h // b, w // b
    nblocks = ny * nx
    out = img.copy()
    if nblocks < 2:
        return out
    order = np.random.default_rng(perm_seed).permutation(nblocks)
    npairs = nblocks // 2
    x = p["swapped"] * npairs  # pairs to swap; the last one is blended in (continuous in s)
    full = int(np.floor(x))
    part = x - full
    for k in range(min(npairs, full + 1)):
        i, j = int(order[2 * k]), int(order[2 * k + 1])
        yi, xi = (i // nx) * b, (i % nx) * b
        yj, xj = (j // nx) * b, (j % nx) * b
        bi = img[yi : yi + b, xi : xi + b]
        bj = img[yj : yj + b, xj : xj + b]
        if k < full:
            out[yi : yi + b, xi : xi + b] = bj
            out[yj : yj + b, xj : xj + b] = bi
        elif part > 0:
            out[yi : yi + b, xi : xi + b] = lerp_u8(bi, bj, part)
            out[yj : yj + b, xj : xj + b] = lerp_u8(bj, bi, part)
    return out


@register(
    "mean shift",
    stage="transmission",
    aliases=("shifting", "mean-shift", "mean shift filtering", "mean_shift"),
    params={
        "spatial_radius": Param(0.0, 0.06, 1.0, "× short side"),
        "color_radius": Param(8.0, 48.0, 1.0, "RGB levels"),
        "strength": Param(0.0, 1.0, 0.5, "blend of the flattened image"),
    },
    random=False,
    description="Mean-shift colour flattening: regions collapse to shifted flat colours, edges kept.",
)
def mean_shift(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    """Fast mean-shift filtering.

    ``cv2.pyrMeanShiftFiltering`` costs O(pixels × radius²) and takes seconds on a photo. Here the
    image is reduced until the spatial radius is ~3 px, three range-weighted (bilateral) mean
    iterations move each pixel's colour towards its local colour mode, the result is brought
    back to full size and its colours are snapped to the mode spacing, giving the flat,
    shifted colour regions of mean-shift filtering at a few milliseconds.
    """
    h, w = img.shape[:2]
    sp = max(1.0, p["spatial_radius"] * short_side(img))
    sr = p["color_radius"]
    # At least half size (the flattened image is smooth), radius ~2 px after reduction.
    small, f = downscale_for(img, max(sp, 4.0), 2.0)
    r = max(1, int(round(sp / f)))
    flat = small
    for _ in range(3):
        flat = cv2.bilateralFilter(flat, 2 * r + 1, sr, r)
    if flat.ndim == 2:
        flat = flat[:, :, None]
    if f > 1.0:
        flat = resize_to(flat, w, h, cv2.INTER_LINEAR)
    # Snap to a colour lattice whose spacing grows with the range radius (mode merging).
    step = max(1.0, sr / 2.0)
    lut = np.clip(np.round(np.floor(np.arange(256) / step) * step + step / 2.0), 0, 255).astype(np.uint8)
    flat = cv2.LUT(flat, lut)
    if flat.ndim == 2:
        flat = flat[:, :, None]
    return lerp_u8(img, flat, p["strength"])


@register(
    "scan lines",
    stage="transmission",
    aliases=("scanlines", "scan line", "interlacing", "scan_lines"),
    params={
        "darkness": Param(0.0, 0.7, 1.0, "attenuation of the scan lines"),
        "glitched": Param(0.0, 0.25, 1.0, "fraction of line bands torn sideways"),
        "tear": Param(0.0, 0.06, 1.0, "× width, horizontal offset of torn bands"),
    },
    description="Analogue/scanner transmission: dark horizontal lines and sideways-torn bands.",
)
def scan_lines(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    period = max(2.0, h / 90.0)  # line pitch scales with the height
    nbands = 48
    thresholds = rng.random(nbands)
    directions = rng.choice(np.array([-1.0, 1.0]), nbands) * rng.uniform(0.3, 1.0, nbands)
    phase = float(rng.uniform(0.0, period))
    rows = np.arange(h, dtype=np.float32)
    # A smooth (raised-cosine) line profile keeps its look when the image is resized.
    on = 0.5 - 0.5 * np.cos(2.0 * np.pi * (rows + phase) / period)
    gain = 1.0 - p["darkness"] * on
    out = img.copy()
    band_h = max(1, int(np.ceil(h / nbands)))
    glitched = p["glitched"]
    for bnd in range(nbands):
        if thresholds[bnd] >= glitched:
            continue
        # Fade in the tear as the intensity passes the band's threshold (continuous in s).
        amount = min(1.0, (glitched - thresholds[bnd]) / 0.05)
        shift = int(round(directions[bnd] * p["tear"] * w * amount))
        y0, y1 = bnd * band_h, min(h, (bnd + 1) * band_h)
        if shift and y0 < y1:
            out[y0:y1] = np.roll(img[y0:y1], shift, axis=1)
    # Per-row gain in 8.8 fixed point: (x * g + 128) >> 8, in 16 bits (exact to 1 level).
    g16 = np.round(gain * 256.0).astype(np.uint16)[:, None, None]
    wide = out.astype(np.uint16)
    wide *= g16
    wide += 128
    wide >>= 8
    return wide.astype(np.uint8)
