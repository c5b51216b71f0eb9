"""Acquisition stage: what the camera and its optics do to the picture.

lens blur, lens flare, motion blur, dirty lens, hsv saturation; each in the ``physical`` style
(first) and the ``reference`` style (at the end of the module).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._common import (
    disc_kernel,
    filter_at_scale,
    gaussian_blur,
    lerp_u8,
    line_blur,
    line_kernel,
    low_res_size,
    ref_unit,
    resize_to,
    short_side,
    to_u8,
)
from .registry import Curve, Influence, Param, register


@register(
    "lens blur",
    stage="acquisition",
    aliases=("defocus blur", "defocus", "out of focus", "lens_blur"),
    params={"radius": Param(0.0, 0.025, 1.0, "× short side")},
    random=False,
    description="Out-of-focus optics: convolution with a defocus disc (brightness preserved).",
    style="physical",
    influence=Influence(
        {
            "low": (
                "a slight defocus softens the finest edges",
                "the optics are a little out of focus and crisp edges turn soft",
            ),
            "medium": (
                "a clear defocus blurs edges and small texture",
                "the out-of-focus optics smear fine texture into soft gradients",
            ),
            "high": (
                "heavy defocus turns the frame into soft blobs of colour",
                "the picture is so far out of focus that only broad forms remain",
            ),
        },
        hides="small text, thin lines and fine texture",
        keeps="large shapes, colours and the overall layout",
    ),
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
    style="physical",
    influence=Influence(
        {
            "low": (
                "a faint glow of stray light lifts part of the frame",
                "a weak flare adds a soft halo near the light source",
            ),
            "medium": (
                "stray light washes a bright haze and ghost discs over part of the frame",
                "a flare adds glowing halos that lower the contrast around the light",
            ),
            "high": (
                "a strong flare floods part of the frame with glare and ghost discs",
                "intense stray light bleaches a large region into glowing haze",
            ),
        },
        hides="details and contrast inside the glare",
        keeps="objects away from the bright region",
    ),
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


# Motion blur reads the same in both styles (the reference style differs in its length curve only).
MOTION_BLUR_WORDS = Influence(
    {
        "low": (
            "slight motion during the exposure drags edges into short streaks",
            "a small camera shake doubles the finest edges",
        ),
        "medium": (
            "camera motion smears every edge into visible streaks",
            "motion during the exposure blurs the picture along one direction",
        ),
        "high": (
            "strong motion drags the whole picture into long streaks",
            "heavy camera shake smears objects far along the motion",
        ),
    },
    hides="edges across the motion, small parts and any text",
    keeps="overall layout, large objects and their colours",
)


@register(
    "motion blur",
    stage="acquisition",
    aliases=("camera shake", "motion_blur"),
    params={"length": Param(0.0, 0.06, 1.0, "× short side")},
    description="Camera or subject motion during exposure: a linear streak at a random angle.",
    style="physical",
    influence=MOTION_BLUR_WORDS,
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
    style="physical",
    influence=Influence(
        {
            "low": (
                "a few faint smudges veil small patches of the picture",
                "light dust on the lens adds a thin haze in places",
            ),
            "medium": (
                "smudges on the lens cover patches of the picture with a milky haze",
                "dirt on the front element blurs and brightens several regions",
            ),
            "high": (
                "thick smudges veil large parts of the picture in haze",
                "a heavily soiled lens washes out and blurs much of the frame",
            ),
        },
        hides="details and contrast under the smudges",
        keeps="regions between the smudges and large shapes",
    ),
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
    style="physical",
    influence=Influence(
        {
            "low": (
                "the colour saturation is slightly off",
                "colour processing shifts how vivid the colours look a little",
            ),
            "medium": (
                "the colours are clearly washed out or pushed to garish",
                "wrong colour processing distorts how vivid the colours are",
            ),
            "high": (
                "the colours are drained almost to grey or pushed to extreme vividness",
                "colour processing has badly distorted the saturation",
            ),
        },
        hides="true colours and subtle colour differences",
        keeps="shapes, edges, brightness and layout",
    ),
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


# ---------------------------------------------------------------- reference style
# What the reference implementation draws under each name, at its strength curve. Its pixel sizes
# assume a 640x480 frame and are read here as fractions of that frame's short side (ref_unit).


@register(
    "lens blur",
    stage="acquisition",
    style="reference",
    params={
        "sigma": Param(0.0, 20.0 / 480.0, 1.0, "× short side (Gaussian sigma)"),
        "sharp": Param(1.0, 0.3, 1.0, "weight of the sharp image"),
        "blurred": Param(0.0, 0.9, 1.0, "weight of the blurred copy"),
    },
    random=False,
    description=(
        "Soft-focus glow: a Gaussian-blurred copy added over the dimmed sharp image; the weights sum "
        "above 1, so the picture also brightens (×1.17 at 0.9)."
    ),
    influence=Influence(
        {
            "low": (
                "a faint soft-focus glow lies over the picture and edges lose a little crispness",
                "a slight blur haze softens the finest edges and lifts the brightness a touch",
            ),
            "medium": (
                "a blurred, brighter copy glows over the picture and fine edges turn hazy",
                "soft-focus blur spreads a bright haze over the scene and smears small texture",
            ),
            "high": (
                "a strong, bright blur swamps the picture so that sharp detail survives only as a faint ghost",
                "heavy soft-focus glow washes the scene into bright, blurred forms",
            ),
        },
        hides="small text, thin lines and fine texture",
        keeps="large shapes, colours and the overall layout",
    ),
)
def lens_blur_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    blurred = gaussian_blur(img, p["sigma"] * short_side(img))
    return cv2.addWeighted(img, p["sharp"], blurred, p["blurred"], 0.0)  # saturating, as the reference


_REF_FLARES = 33  # the reference draws 3 + int(30 s) flares: at most 33
_REF_FLARE_RGB = np.array([235.0, 255.0, 255.0], np.float32)


@register(
    "lens flare",
    stage="acquisition",
    style="reference",
    params={
        "flares": Param(3.0, 33.0, 1.0, "bright discs with streaks (the newest fades in)"),
        "strength": Param(0.0, 0.9, 1.0, "× 255 light added on the discs"),
    },
    description=(
        "Hard-edged bright discs, each with a thin streak, added over the picture; more and brighter with intensity."
    ),
    influence=Influence(
        {
            "low": (
                "a few pale, hard-edged light discs with thin streaks float over the picture",
                "some faint bright circles and light streaks are scattered across the frame",
            ),
            "medium": (
                "bright flare discs and streaks are scattered over the picture and wash out what lies under them",
                "a dozen or more glowing discs with light streaks cover parts of the scene",
            ),
            "high": (
                "dozens of near-white flare discs and streaks blot out large parts of the picture",
                "glaring discs of light cover much of the frame and bleach the regions under them",
            ),
        },
        hides="details and contrast under the light discs",
        keeps="objects between the discs and the layout",
    ),
)
def lens_flare_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    u = ref_unit(img)
    pos = rng.random((_REF_FLARES, 2))
    radius = rng.integers(10, 51, _REF_FLARES)
    angle = rng.uniform(0.0, 2.0 * math.pi, _REF_FLARES)
    length = rng.integers(30, 151, _REF_FLARES)
    shift = 3
    one = 1 << shift
    thick = max(1, int(round(2.0 * u)))

    def draw(target: np.ndarray, k: int) -> None:
        cx, cy = pos[k, 0] * w, pos[k, 1] * h
        c = (int(round(cx * one)), int(round(cy * one)))
        cv2.circle(target, c, int(round(radius[k] * u * one)), 255, -1, cv2.LINE_AA, shift)
        ex = cx + length[k] * u * math.cos(angle[k])
        ey = cy + length[k] * u * math.sin(angle[k])
        cv2.line(target, c, (int(round(ex * one)), int(round(ey * one))), 255, thick, cv2.LINE_AA, shift)

    n = min(float(_REF_FLARES), p["flares"])
    full = int(n)
    mask = np.zeros((h, w), np.uint8)
    for k in range(full):
        draw(mask, k)
    if full < _REF_FLARES and n > full:
        extra = np.zeros_like(mask)
        draw(extra, full)
        np.maximum(mask, cv2.convertScaleAbs(extra, alpha=n - full), out=mask)
    k = max(1, 2 * int(round(u)) + 1)  # the reference softens the layer with a 3x3 blur
    mask = cv2.blur(mask, (k, k))
    gain = p["strength"] / 255.0
    add = cv2.merge([cv2.convertScaleAbs(mask, alpha=gain * float(c)) for c in _REF_FLARE_RGB])
    return cv2.add(img, add.reshape(img.shape))


@register(
    "motion blur",
    stage="acquisition",
    style="reference",
    params={
        "length": Param(0.0, 31.0 / 480.0, 1.08, "× short side (streak length)"),
    },
    description=(
        "Camera or subject motion during exposure: a linear streak at a random angle (the reference's length curve)."
    ),
    influence=MOTION_BLUR_WORDS,
)
def motion_blur_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    angle = float(rng.uniform(0.0, 180.0))
    return line_blur(img, p["length"] * short_side(img), angle)


_REF_DIRT_GRID = 160  # the dirt layer is blurred with sigma 30/480 of the short side: drawn small


@register(
    "dirty lens",
    stage="acquisition",
    style="reference",
    params={
        "picture": Param(1.0, 0.3, 1.0, "weight of the picture"),
        "dirt": Param(0.0, 0.8, 1.0, "weight of the grey dirt layer"),
        "smudges": Curve.of(lambda s: math.floor(10 * s) if s > 0.1 else 0.0, "int(10 s) above 0.1", "grey smudges"),
        "spots": Curve.of(lambda s: math.floor(300 * s), "int(300 s)", "grey spots"),
        "blotches": Curve.of(lambda s: math.floor(5 * s) if s > 0.5 else 0.0, "int(5 s) above 0.5", "bright blotches"),
    },
    description=(
        "A grey veil: the picture is dimmed and a blurred layer of grey smudges, spots and blotches "
        "is added over it, greying out and desaturating the frame."
    ),
    influence=Influence(
        {
            "low": (
                "a thin grey veil with faint spots dims the picture slightly",
                "light dirt on the lens lays a faint grey haze over the scene",
            ),
            "medium": (
                "a grey veil of smudges dims the picture and drains part of its colour",
                "dirt on the lens greys out the scene and blurs blotches into it",
            ),
            "high": (
                "a thick grey veil of smudges and blotches covers the frame and mutes almost all colour",
                "a heavily soiled lens turns the picture into a dim, grey, washed-out view",
            ),
        },
        hides="colours, contrast and detail under the veil",
        keeps="bright regions, large shapes and the layout",
    ),
)
def dirty_lens_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    u = ref_unit(img)
    # Random draws: every shape the reference could draw, whatever the intensity.
    ell_pos = rng.random((10, 2))
    ell_axes = np.stack([rng.integers(150, 301, 10), rng.integers(100, 201, 10)], axis=1)
    ell_angle = rng.integers(0, 181, 10)
    spot_pos = rng.random((300, 2))
    spot_r = rng.integers(4, 21, 300)
    spot_grey = rng.integers(50, 101, 300)
    blot_pos = rng.random((5, 2))
    blot_r = np.stack([rng.integers(20, 51, 5), rng.integers(10, 31, 5)], axis=1)

    gh, gw = low_res_size(h, w, _REF_DIRT_GRID)
    f = gw / w  # pixels of the small grid per image pixel
    k = u * f  # reference pixels -> grid pixels
    shift = 4
    one = 1 << shift
    dirt = np.zeros((gh, gw), np.uint8)

    # Coordinates in 1/16 grid pixels, computed at once (a Python loop draws up to 315 shapes).
    def fixed(v: np.ndarray) -> list:
        return np.rint(v * one).astype(np.int64).tolist()

    grid = np.array([gw, gh], np.float64)
    ell_c, ell_ax = fixed(ell_pos * grid), fixed(ell_axes * k)
    spot_c, spot_rr, greys = fixed(spot_pos * grid), fixed(spot_r * k), spot_grey.tolist()
    blot_c, blot_rr = fixed(blot_pos * grid), fixed(blot_r * k)
    for i in range(int(p["smudges"])):
        cv2.ellipse(dirt, ell_c[i], ell_ax[i], int(ell_angle[i]), 0, 360, 50, -1, cv2.LINE_AA, shift)
    for i in range(int(p["spots"])):
        cv2.circle(dirt, spot_c[i], spot_rr[i], greys[i], -1, cv2.LINE_AA, shift)
    for i in range(int(p["blotches"])):
        cv2.circle(dirt, blot_c[i], blot_rr[i][0], 80, -1, cv2.LINE_AA, shift)
        cv2.circle(dirt, blot_c[i], blot_rr[i][1], 120, -1, cv2.LINE_AA, shift)
    sigma = 30.0 * k
    if sigma > 0.05:
        dirt = cv2.GaussianBlur(dirt, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    layer = resize_to(dirt, w, h, cv2.INTER_LINEAR)
    layer = cv2.cvtColor(layer.reshape(h, w), cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(img, p["picture"], layer, p["dirt"], 0.0).reshape(img.shape)


@register(
    "hsv saturation",
    stage="acquisition",
    style="reference",
    params={"factor": Param(1.0, 0.0, 1.0, "× HSV saturation (8-bit HSV, truncated)")},
    random=False,
    description="Washed-out colour: the HSV saturation is scaled down towards grey (the value channel is kept).",
    influence=Influence(
        {
            "low": (
                "the colours are slightly washed out",
                "the saturation is lowered a little and colours look paler",
            ),
            "medium": (
                "the colours are clearly washed out towards grey",
                "much of the colour is drained and hues look pale and faded",
            ),
            "high": (
                "the colours are drained almost to grey",
                "nearly all saturation is gone and the picture looks almost black and white",
            ),
        },
        hides="true colours and subtle colour differences",
        keeps="shapes, edges, brightness and layout",
    ),
)
def hsv_saturation_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    lut = np.empty((1, 256, 3), np.uint8)
    ramp = np.arange(256, dtype=np.float64)
    lut[0, :, 0] = ramp
    lut[0, :, 1] = np.floor(ramp * p["factor"] + 1e-9)
    lut[0, :, 2] = ramp
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    return cv2.cvtColor(cv2.LUT(hsv, lut), cv2.COLOR_HSV2RGB)
