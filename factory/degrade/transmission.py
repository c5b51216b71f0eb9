"""Transmission stage: what storage and networks do to the picture.

jpeg compression, block exchange, mean shift, scan lines; each in the ``physical`` style
(first) and the ``reference`` style (at the end of the module).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._common import downscale_for, gaussian_blur, lerp_u8, resize_to, short_side
from .registry import Curve, Influence, Param, register


@register(
    "jpeg compression",
    stage="transmission",
    aliases=("compression", "jpeg", "jpeg artifacts", "jpeg_compression"),
    params={"quality": Param(100.0, 2.0, 0.6, "JPEG quality (libjpeg scale)")},
    random=False,
    scale_invariant=False,
    description="Lossy JPEG round trip; quality falls over the whole intensity range (100 → 2).",
    style="physical",
    influence=Influence(
        {
            "low": (
                "mild JPEG compression leaves faint ringing around edges",
                "light compression slightly smooths the finest texture",
            ),
            "medium": (
                "JPEG compression adds 8×8 blocks and ringing around edges",
                "lossy compression removes fine texture and leaves blocky artefacts",
            ),
            "high": (
                "heavy JPEG compression breaks the picture into coarse blocks",
                "extreme compression wipes out texture and bands smooth areas into blocks",
            ),
        },
        hides="fine texture, small text and smooth gradients",
        keeps="coarse shapes, main objects and their colours",
    ),
)
def jpeg_compression(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    q = int(round(p["quality"]))
    # cvtColor swaps the channel order much faster than a reversed-view copy.
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:  # pragma: no cover - libjpeg never refuses an RGB uint8 image
        raise ValueError(f"jpeg compression: encoder failed on an image of shape {img.shape}.")
    out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB).reshape(img.shape)


@register(
    "block exchange",
    stage="transmission",
    aliases=("block change", "block swap", "block shuffle", "block_exchange"),
    params={"swapped": Param(0.0, 0.6, 1.0, "fraction of blocks displaced")},
    description="Packet/block errors: square blocks of the picture swapped with each other.",
    style="physical",
    influence=Influence(
        {
            "low": (
                "a few square blocks of the picture are swapped around",
                "a handful of blocks are moved to the wrong places",
            ),
            "medium": (
                "many square blocks are swapped, cutting objects apart",
                "transmission errors move a good share of the blocks to wrong positions",
            ),
            "high": (
                "most of the picture is shuffled into misplaced blocks",
                "block errors scramble large parts of the layout",
            ),
        },
        hides="object continuity and positions",
        keeps="contents of the intact blocks",
    ),
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
    style="physical",
    influence=Influence(
        {
            "low": (
                "mean-shift filtering flattens some texture into smooth patches",
                "slight colour flattening merges similar neighbouring tones",
            ),
            "medium": (
                "regions collapse into flat, shifted colour patches",
                "mean-shift filtering turns texture into uniform colour areas",
            ),
            "high": (
                "the picture is reduced to large flat patches of shifted colour",
                "strong flattening erases texture and shading almost entirely",
            ),
        },
        hides="texture, shading and exact colours",
        keeps="object outlines and the main colour regions",
    ),
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
    style="physical",
    influence=Influence(
        {
            "low": (
                "faint horizontal scan lines run across the picture",
                "a few thin dark lines and small tears cross the frame",
            ),
            "medium": (
                "dark scan lines and sideways-torn bands run across the picture",
                "analogue transmission adds horizontal lines and shifted bands",
            ),
            "high": (
                "dense dark lines and badly torn bands cut through the picture",
                "heavy scan-line damage slices the frame into shifted strips",
            ),
        },
        hides="thin horizontal details and the edges at the tears",
        keeps="objects between the lines and the overall scene",
    ),
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


# ---------------------------------------------------------------- reference style
# What the reference implementation draws under each name, at its strength curve. Its pixel sizes
# assume a 640x480 frame and are read here as fractions of that frame's short side (ref_unit).


register(
    "jpeg compression",
    stage="transmission",
    style="reference",
    params={
        "quality": Curve.of(
            lambda s: float(max(5, min(100, math.floor(100.0 - 95.0 * s + 1e-9)))), "int(100 - 95 s)", "JPEG quality"
        )
    },
    random=False,
    scale_invariant=False,
    description="Lossy JPEG round trip at quality int(100 - 95 s): 78 at 0.23, 57 at 0.45, 14 at 0.9.",
    influence=Influence(
        {
            "low": (
                "mild JPEG compression leaves faint ringing around edges",
                "light compression slightly smooths the finest texture",
            ),
            "medium": (
                "JPEG compression softens fine texture and leaves faint blocks around edges",
                "lossy compression removes some fine texture and adds ringing",
            ),
            "high": (
                "heavy JPEG compression breaks the picture into visible 8×8 blocks",
                "strong compression wipes out fine texture and bands smooth areas into blocks",
            ),
        },
        hides="fine texture, small text and smooth gradients",
        keeps="coarse shapes, main objects and their colours",
    ),
)(jpeg_compression)


_REF_SWAPS = 35  # the reference swaps int(35 s) pairs of blocks: at most 35


@register(
    "block exchange",
    stage="transmission",
    style="reference",
    params={
        "block": Curve.of(
            lambda s: min(32.0, math.floor(5.0 + 30.0 * s)) / 480.0, "min(32, int(5 + 30 s)) / 480", "× short side"
        ),
        "swaps": Curve.of(lambda s: float(math.floor(35.0 * s + 1e-9)), "int(35 s)", "block pairs swapped"),
    },
    description=(
        "Transmission errors: random pairs of square blocks swap places; more and larger blocks with intensity."
    ),
    influence=Influence(
        {
            "low": (
                "a few small square blocks of the picture are swapped around",
                "a handful of small blocks are moved to the wrong places",
            ),
            "medium": (
                "a dozen or so square blocks are swapped, cutting small pieces out of objects",
                "transmission errors move a number of blocks to wrong positions",
            ),
            "high": (
                "dozens of large blocks are swapped, breaking objects apart",
                "block errors scramble a good part of the layout",
            ),
        },
        hides="object continuity and positions",
        keeps="contents of the intact blocks",
    ),
)
def block_exchange_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    picks = rng.random((_REF_SWAPS, 4))
    b = max(1, int(round(p["block"] * short_side(img))))
    ny, nx = h // b, w // b
    out = img.copy()
    if ny < 1 or nx < 1:
        return out
    for k in range(min(_REF_SWAPS, int(p["swaps"]))):
        y1, x1 = int(picks[k, 0] * ny) * b, int(picks[k, 1] * nx) * b
        y2, x2 = int(picks[k, 2] * ny) * b, int(picks[k, 3] * nx) * b
        first = out[y1 : y1 + b, x1 : x1 + b].copy()
        out[y1 : y1 + b, x1 : x1 + b] = out[y2 : y2 + b, x2 : x2 + b]
        out[y2 : y2 + b, x2 : x2 + b] = first
    return out


@register(
    "mean shift",
    stage="transmission",
    style="reference",
    params={
        "spatial_radius": Param(0.0, 40.0 / 480.0, 1.0, "× short side"),
        "color_radius": Param(0.0, 40.0, 1.0, "RGB levels"),
    },
    random=False,
    description=(
        "Mean-shift colour flattening: texture within the colour radius collapses towards its local "
        "mean colour, strong edges keep their place and contrast."
    ),
    influence=Influence(
        {
            "low": (
                "slight colour flattening smooths fine texture while edges stay crisp",
                "mean-shift filtering merges similar neighbouring tones into smoother patches",
            ),
            "medium": (
                "regions flatten into smooth patches of colour, though outlines stay sharp",
                "mean-shift filtering turns texture into flatter colour areas with crisp borders",
            ),
            "high": (
                "the picture looks painted: texture and shading are flattened into patches with sharp borders",
                "strong flattening erases texture and fine shading, leaving only outlines and colour areas",
            ),
        },
        hides="texture, shading and small low-contrast details",
        keeps="sharp outlines and the main colour regions",
    ),
)
def mean_shift_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    """Fast stand-in for ``cv2.pyrMeanShiftFiltering(img, 40 s, 40 s)``.

    Mean shift moves every pixel to the mode of the colours within ``color_radius`` in its
    spatial window. Here each pixel moves towards its local (Gaussian) mean colour by a weight
    that falls with its distance to that mean, measured in colour radii: texture within the radius
    is flattened, pixels across strong edges differ by far more and keep their colour, so edges
    stay sharp, at a few milliseconds instead of seconds.
    """
    sp = p["spatial_radius"] * short_side(img)
    sr = max(1.0, p["color_radius"])
    local = gaussian_blur(img, sp / 2.0)
    diff = cv2.absdiff(img, local).reshape(img.shape)
    d = cv2.max(cv2.max(diff[:, :, 0], diff[:, :, 1]), diff[:, :, 2])
    table = np.rint(255.0 * np.clip(1.75 - np.arange(256) / sr, 0.0, 1.0)).astype(np.uint8)
    wgt = cv2.LUT(d, table).astype(np.float32)
    wgt *= 1.0 / 255.0
    return lerp_u8(img, local, wgt)


@register(
    "scan lines",
    stage="transmission",
    style="reference",
    params={
        "pitch": Curve.of(
            lambda s: max(3.0, math.floor(20.0 / (s + 0.1))) / 480.0,
            "max(3, int(20 / (s + 0.1))) / 480",
            "× short side",
        ),
        "bar": Curve.of(lambda s: max(5.0, math.floor(7.0 * s)) / 480.0, "max(5, int(7 s)) / 480", "× short side"),
        "gain": Curve.of(lambda s: 1.0 - 0.99 * min(1.0, s / 0.05), "1 - 0.99 min(1, s / 0.05)", "× bar pixels"),
    },
    description=(
        "Thick black horizontal bars at a regular pitch that tightens with intensity "
        "(8 % of the rows at 0.23, 30 % at 0.9)."
    ),
    influence=Influence(
        {
            "low": (
                "thin black horizontal bars run across the picture at wide intervals",
                "a few black scan lines cut across the frame",
            ),
            "medium": (
                "black horizontal bars cut the picture into strips",
                "regular black scan lines hide every few rows of the picture",
            ),
            "high": (
                "dense black bars hide nearly a third of the rows",
                "thick black scan lines slice the whole frame into narrow strips",
            ),
        },
        hides="thin horizontal details and whatever lies under the bars",
        keeps="objects between the bars and the overall scene",
    ),
)
def scan_lines_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h = img.shape[0]
    ss = short_side(img)
    phase = float(rng.random())
    pitch = max(1e-3, p["pitch"] * ss)
    bar = p["bar"] * ss
    # Share of each row covered by a bar (8 sub-rows), so bars thinner than a pixel still darken.
    sub = (np.arange(h * 8, dtype=np.float64) + 0.5) / 8.0
    offset = round(phase * pitch)  # whole rows: bars start on a row, as the reference's do
    covered = (np.mod(sub - offset, pitch) < bar).reshape(h, 8).mean(axis=1)
    gain = 1.0 - (1.0 - p["gain"]) * covered  # the reference keeps 1 % of the bars' values
    g16 = np.round(gain * 256.0).astype(np.uint16)[:, None, None]
    wide = img.astype(np.uint16)
    wide *= g16
    wide >>= 8  # truncated, as the reference's float-to-uint8 cast
    return wide.astype(np.uint8)
