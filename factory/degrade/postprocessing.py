"""Post-processing stage: what editing and reuse do to the picture.

sharpness change, graffiti, watermark damage; each in the ``physical`` style (first) and the
``reference`` style (at the end of the module).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._common import (
    REFLECT,
    lerp_u8,
    low_res_size,
    ref_unit,
    resize_to,
    short_side,
    to_u8,
)
from .registry import Curve, Influence, Param, register


@register(
    "sharpness change",
    stage="post-processing",
    aliases=("sharpness", "sharpening", "oversharpening", "over-sharpening", "sharpness_change"),
    params={
        "amount": Param(0.0, 4.0, 1.0, "unsharp-mask gain"),
        "radius": Param(0.002, 0.005, 1.0, "× short side (Gaussian sigma)"),
    },
    random=False,
    description="Over-sharpening: an unsharp mask whose gain grows until halos and noise dominate.",
    style="physical",
    influence=Influence(
        {
            "low": (
                "mild over-sharpening adds thin halos along edges",
                "slight sharpening makes edges a little harsh",
            ),
            "medium": (
                "over-sharpening adds bright halos and harsh edges",
                "aggressive sharpening exaggerates edges and grain",
            ),
            "high": (
                "extreme sharpening covers the picture with halos and amplified noise",
                "severe over-sharpening turns edges into glaring outlines",
            ),
        },
        hides="smooth gradients, true edge positions and fine texture",
        keeps="objects themselves and their layout",
    ),
)
def sharpness_change(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    sigma = max(0.5, p["radius"] * short_side(img))
    blurred = cv2.GaussianBlur(img, (0, 0), sigma, borderType=REFLECT)
    a = p["amount"]
    out = cv2.addWeighted(img, 1.0 + a, blurred, -a, 0.0)
    if out.ndim == 2:
        out = out[:, :, None]
    return out


_PALETTE = np.array(
    [
        [230, 30, 40],
        [30, 90, 220],
        [250, 210, 20],
        [20, 20, 20],
        [40, 190, 70],
        [240, 240, 240],
        [200, 40, 200],
        [250, 120, 20],
    ],
    np.float32,
)


def _stroke_points(ctrl: np.ndarray, n: int = 64) -> np.ndarray:
    """A smooth curve through control points (Catmull-Rom), in relative coordinates."""
    pts = np.vstack([ctrl[:1], ctrl, ctrl[-1:]])
    out = []
    for i in range(1, len(pts) - 2):
        p0, p1, p2, p3 = pts[i - 1], pts[i], pts[i + 1], pts[i + 2]
        t = np.linspace(0.0, 1.0, n // (len(pts) - 3), endpoint=False)[:, None]
        out.append(
            0.5
            * (
                2 * p1
                + (-p0 + p2) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3
            )
        )
    out.append(ctrl[-1:])
    return np.vstack(out)


@register(
    "graffiti",
    stage="post-processing",
    aliases=("scribble", "scribbles", "vandalism", "doodle"),
    params={
        "coverage": Param(0.0, 1.0, 1.0, "share of the strokes painted (in drawing order)"),
        "width": Param(0.012, 0.03, 1.0, "× short side (stroke width)"),
    },
    description="Spray-paint strokes drawn over the picture, more and longer as intensity grows.",
    style="physical",
    influence=Influence(
        {
            "low": (
                "a few spray-paint strokes cross the picture",
                "thin painted scribbles cover small parts of the scene",
            ),
            "medium": (
                "spray-paint strokes cover several parts of the picture",
                "painted scribbles are drawn over a good share of the scene",
            ),
            "high": (
                "dense spray paint covers much of the picture",
                "heavy scribbles hide large parts of the scene",
            ),
        },
        hides="details under the strokes",
        keeps="uncovered parts of the scene",
    ),
)
def graffiti(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    n = 6
    ctrl = rng.uniform(0.05, 0.95, size=(n, 5, 2))
    colours = _PALETTE[rng.permutation(len(_PALETTE))[:n]]
    widths = rng.uniform(0.7, 1.3, n)
    opac = rng.uniform(0.75, 0.95, n)
    cover = p["coverage"] * n  # strokes are painted one after another, the last one partly
    ss = short_side(img)
    colour_layer = np.zeros_like(img)
    alpha_layer = np.zeros((h, w), np.uint8)
    shift = 4  # sub-pixel precision for cv2 drawing
    for i in range(n):
        done = min(1.0, cover - i)
        if done <= 0:
            break
        pts = _stroke_points(ctrl[i])
        k = max(2, int(round(done * len(pts))))
        seg = [np.round(pts[:k] * np.array([w, h]) * (1 << shift)).astype(np.int32)]
        thick = max(1, int(round(p["width"] * widths[i] * ss)))
        # Paint: solid colour (one pixel wider, no anti-aliasing, so edges never darken) and an
        # anti-aliased coverage; a new stroke fades in over the first quarter of its length.
        cv2.polylines(colour_layer, seg, False, colours[i].tolist(), thick + 2, cv2.LINE_8, shift)
        a = int(round(255 * opac[i] * min(1.0, done * 4.0)))
        cv2.polylines(alpha_layer, seg, False, a, thick, cv2.LINE_AA, shift)
    return lerp_u8(img, colour_layer, alpha_layer.astype(np.float32) * (1.0 / 255.0))


_WATERMARK_TEXTS = ("SAMPLE", "PREVIEW", "(c) STOCK", "DO NOT COPY", "PROOF", "WATERMARK")


@register(
    "watermark damage",
    stage="post-processing",
    aliases=("watermark", "watermarks", "watermarked", "watermark_damage"),
    params={
        "opacity": Param(0.0, 0.8, 1.0, "opacity of the watermark text"),
    },
    description="A tiled, rotated stock-photo watermark laid over the picture.",
    style="physical",
    influence=Influence(
        {
            "low": (
                "a faint tiled watermark lies over the picture",
                "light watermark text runs across the frame",
            ),
            "medium": (
                "a semi-transparent tiled watermark overlays the picture",
                "watermark text repeated across the frame muddies the details",
            ),
            "high": (
                "a dense, strong watermark covers the whole picture",
                "opaque watermark text obscures much of the scene",
            ),
        },
        hides="fine detail and text under the letters",
        keeps="larger objects behind the watermark",
    ),
)
def watermark_damage(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    text = _WATERMARK_TEXTS[int(rng.integers(len(_WATERMARK_TEXTS)))]
    angle = float(rng.uniform(-35.0, 35.0))
    offset = rng.uniform(0.0, 1.0, size=2)
    light = bool(rng.random() < 0.7)
    size = float(rng.uniform(0.08, 0.12))  # text height, × short side
    ss = short_side(img)
    text_h = max(1.0, size * ss)
    font = cv2.FONT_HERSHEY_DUPLEX
    (tw, th), _ = cv2.getTextSize(text, font, 1.0, 2)
    scale = text_h / max(th, 1)
    thick = max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    # Tile the text over a canvas that still covers the image after rotation.
    diag = int(math.ceil(math.hypot(h, w)))
    canvas = np.zeros((diag, diag), np.uint8)
    step_x = tw + max(2, int(0.6 * text_h))
    step_y = th + base + max(2, int(1.4 * text_h))
    ox = int(offset[0] * step_x)
    oy = int(offset[1] * step_y)
    row = 0
    for y in range(-step_y + oy, diag + step_y, step_y):
        stagger = (step_x // 2) * (row % 2)
        for x in range(-step_x + ox - stagger, diag + step_x, step_x):
            cv2.putText(canvas, text, (x, y + th), font, scale, 255, thick, cv2.LINE_AA)
        row += 1
    m = cv2.getRotationMatrix2D((diag / 2.0, diag / 2.0), angle, 1.0)
    m[0, 2] -= (diag - w) / 2.0
    m[1, 2] -= (diag - h) / 2.0
    mask = cv2.warpAffine(canvas, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    colour = np.full_like(img, 245 if light else 15)
    return lerp_u8(img, colour, mask.astype(np.float32) * (p["opacity"] / 255.0))


# ---------------------------------------------------------------- reference style
# What the reference implementation draws under each name, at its strength curve. Its pixel sizes
# assume a 640x480 frame and are read here as fractions of that frame's short side (ref_unit).


@register(
    "sharpness change",
    stage="post-processing",
    style="reference",
    params={
        "gain": Curve.of(lambda s: 80.0 * max(s, 0.25), "80 max(s, 0.25)", "× the 3x3 sharpening kernel (saturating)"),
        "mix": Param(0.3, 0.33, 1.0, "weight of the sharpened image over the original"),
        "fade": Curve.of(lambda s: min(1.0, s / 0.2), "min(1, s / 0.2)", "share of the wash (fades in below 0.2)"),
    },
    random=False,
    description=(
        "Over-sharpened wash: a sharpening kernel with a huge gain saturates most pixels to white and "
        "is mixed over the picture, brightening it ×1.7 and leaving dark, harsh edges."
    ),
    influence=Influence(
        {
            "low": (
                "harsh over-sharpening washes the picture out towards white and darkens the edges",
                "an extreme sharpening filter brightens the scene into a pale wash with gritty edges",
            ),
            "medium": (
                "the picture is washed out by extreme sharpening and only dark edges and outlines stand out",
                "over-sharpening saturates most pixels, leaving a pale, low-contrast picture with harsh edges",
            ),
            "high": (
                "severe over-sharpening bleaches the picture into a bright wash crossed by harsh dark edges",
                "the sharpening is so strong that nearly every pixel is pushed towards white",
            ),
        },
        hides="true brightness, colours and smooth shading",
        keeps="dark outlines, object shapes and the layout",
    ),
)
def sharpness_change_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    d = max(1, int(round(ref_unit(img))))  # neighbour distance: one pixel of the 640x480 frame
    k = np.zeros((2 * d + 1, 2 * d + 1), np.float32)
    k[d, d] = 5.0
    k[0, d] = k[2 * d, d] = k[d, 0] = k[d, 2 * d] = -1.0
    sharp = cv2.filter2D(img, -1, k * np.float32(p["gain"]), borderType=REFLECT)  # saturates, as the reference
    out = cv2.addWeighted(img, 1.0 - p["mix"], sharp.reshape(img.shape), p["mix"], 0.0).reshape(img.shape)
    # The reference's wash is complete from s ≈ 0.1 on and its SSIM wobbles at low gains: below
    # s = 0.25 the gain is held and the wash fades in, so the damage grows strictly with s.
    return out if p["fade"] >= 1.0 else lerp_u8(img, out, p["fade"])


_REF_LINES = 10
_REF_TEXTS = ("X", "FAKE", "COPY", "VOID", "COPYRIGHT")


@register(
    "graffiti",
    stage="post-processing",
    style="reference",
    params={
        "lines": Param(0.0, 10.0, 1.0, "straight coloured lines (the newest fades in)"),
        "max_width": Curve.of(lambda s: max(1.0, math.floor(5.0 * s)), "max(1, int(5 s))", "× 1/480 short side"),
        "text": Curve.of(
            lambda s: min(1.0, max(0.0, (s - 0.55) / 0.05)), "clip((s - 0.55) / 0.05, 0, 1)", "text opacity"
        ),
        "font_scale": Param(0.0, 5.0, 1.0, "Hershey font scale × 1/480 short side (at least 0.5)"),
    },
    description=(
        "Thin straight lines in random colours scribbled across the picture; above 0.55 a large red "
        "word or number (X, FAKE, COPY, VOID, COPYRIGHT or 1-100) is painted on it."
    ),
    influence=Influence(
        {
            "low": (
                "one or two thin coloured lines are scratched across the picture",
                "a couple of thin straight scribbles cross the frame",
            ),
            "medium": (
                "several thin coloured lines are scribbled across the picture",
                "a few straight lines in random colours cross the scene",
            ),
            "high": (
                "many coloured lines cross the picture and a large red word or number is painted over it",
                "scribbled lines and a big red painted word cover parts of the scene",
            ),
        },
        hides="details under the lines and painted text",
        keeps="most of the scene between the strokes",
    ),
)
def graffiti_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    u = ref_unit(img)
    colours = rng.integers(0, 256, (_REF_LINES, 3))
    ends = rng.random((_REF_LINES, 4))
    widths = rng.random(_REF_LINES)
    pick = int(rng.integers(0, len(_REF_TEXTS) + 1))
    number = int(rng.integers(1, 101))
    where = rng.random(2)

    colour_layer = np.zeros_like(img)
    alpha = np.zeros((h, w), np.uint8)
    shift = 3
    one = 1 << shift
    n = min(float(_REF_LINES), p["lines"])
    for i in range(int(math.ceil(n))):
        a = int(round(255 * min(1.0, n - i)))
        if a <= 0:
            break
        p1 = (int(round(ends[i, 0] * (w - 1) * one)), int(round(ends[i, 1] * (h - 1) * one)))
        p2 = (int(round(ends[i, 2] * (w - 1) * one)), int(round(ends[i, 3] * (h - 1) * one)))
        thick = max(1, int(round((1 + math.floor(widths[i] * p["max_width"])) * u)))
        cv2.line(colour_layer, p1, p2, colours[i].tolist(), thick, cv2.LINE_8, shift)
        cv2.line(alpha, p1, p2, a, thick, cv2.LINE_8, shift)
    if p["text"] > 0.0:
        text = _REF_TEXTS[pick] if pick < len(_REF_TEXTS) else str(number)
        scale_ref = max(0.5, p["font_scale"])
        thick_ref = max(1, int(scale_ref))
        font = cv2.FONT_HERSHEY_SIMPLEX
        scale = scale_ref * u
        thick = max(1, int(round(thick_ref * u)))
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
        margin = 10.0 * u
        if h - margin > th + margin:
            x = where[0] * max(1.0, w - tw - margin)
            y = th + margin + where[1] * (h - 2 * margin - th)
            org = (int(x), int(y))
            cv2.putText(colour_layer, text, org, font, scale, (255, 0, 0), thick, cv2.LINE_8)
            text_alpha = np.zeros_like(alpha)
            cv2.putText(text_alpha, text, org, font, scale, int(round(255 * p["text"])), thick, cv2.LINE_8)
            np.maximum(alpha, text_alpha, out=alpha)
    return lerp_u8(img, colour_layer, alpha.astype(np.float32) * (1.0 / 255.0))


_REF_PATCHES = 16  # the reference erases int(1 + 15 s) rectangles: at most 16
_FILL_GRID = 160


def _fill_holes(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Fill the pixels where ``hole`` > 0 from their surroundings (push-pull on a small grid).

    A fast stand-in for ``cv2.inpaint``: the valid pixels are averaged down a pyramid and the
    holes take the average of the nearest valid level, so the erased regions are smeared away
    into a smooth fill of the colours around them. Returns a full-size fill image (only its hole
    pixels are meant to be used).
    """
    h, w = img.shape[:2]
    gh, gw = low_res_size(h, w, _FILL_GRID)
    keep = cv2.bitwise_not(hole)
    kept = cv2.bitwise_and(img, img, mask=keep).reshape(img.shape)
    colour = resize_to(kept, gw, gh, cv2.INTER_AREA).astype(np.float32).reshape(gh, gw, -1)
    weight = resize_to(keep, gw, gh, cv2.INTER_AREA).astype(np.float32).reshape(gh, gw, 1) * (1.0 / 255.0)
    levels = [(colour, weight)]
    while min(levels[-1][0].shape[:2]) > 1:
        c, wt = levels[-1]
        lh, lw = max(1, c.shape[0] // 2), max(1, c.shape[1] // 2)
        levels.append(
            (
                resize_to(c, lw, lh, cv2.INTER_AREA).reshape(lh, lw, -1),
                resize_to(wt, lw, lh, cv2.INTER_AREA).reshape(lh, lw, 1),
            )
        )
    c, wt = levels[-1]
    est = np.where(wt > 1e-6, c / np.maximum(wt, 1e-6), 128.0).astype(np.float32)
    for c, wt in reversed(levels[:-1]):
        up = resize_to(est, c.shape[1], c.shape[0], cv2.INTER_LINEAR).reshape(c.shape)
        conf = np.clip(wt * 2.0, 0.0, 1.0)
        est = conf * (c / np.maximum(wt, 1e-6)) + (1.0 - conf) * up
    return resize_to(to_u8(est), w, h, cv2.INTER_LINEAR).reshape(h, w, -1)


@register(
    "watermark damage",
    stage="post-processing",
    style="reference",
    params={
        "patches": Curve.of(lambda s: float(math.floor(1.0 + 15.0 * s)), "int(1 + 15 s)", "rectangles erased"),
        "erase": Param(0.0, 1.0, 1.0, "share of the inpainted fill in the rectangles"),
        "outline": Curve.of(
            lambda s: 1.0 - 0.2 * min(1.0, max(0.0, (s - 0.5) / 0.05)), "1 - 0.2 ramp(0.5..0.55)", "× edge pixels"
        ),
    },
    description=(
        "Removed watermarks: rectangles of the picture are erased and inpainted from their "
        "surroundings, leaving smeared patches; above 0.5 their outlines show as faint dark frames."
    ),
    influence=Influence(
        {
            "low": (
                "a few small rectangles of the picture are faintly smeared where a watermark was removed",
                "some rectangular patches look slightly smudged by inpainting",
            ),
            "medium": (
                "several rectangular patches are smeared away where watermarks were removed",
                "inpainted rectangles blur out parts of the scene",
            ),
            "high": (
                "many rectangles are erased and filled with smeared colour, their outlines still visible",
                "large rectangular patches are inpainted away, leaving smudged blocks with faint frames",
            ),
        },
        hides="details inside the erased rectangles",
        keeps="everything outside the patches and the layout",
    ),
)
def watermark_damage_reference(img: np.ndarray, s: float, p: dict, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    u = ref_unit(img)
    corner = rng.random((_REF_PATCHES, 2))
    size = np.stack([rng.integers(50, 201, _REF_PATCHES), rng.integers(20, 81, _REF_PATCHES)], axis=1)
    hole = np.zeros((h, w), np.uint8)
    for i in range(min(_REF_PATCHES, int(p["patches"]))):
        x = int(corner[i, 0] * max(1.0, w - 50.0 * u))
        y = int(corner[i, 1] * max(1.0, h - 50.0 * u))
        x2 = x + max(1, int(round(size[i, 0] * u)))
        y2 = y + max(1, int(round(size[i, 1] * u)))
        cv2.rectangle(hole, (x, y), (x2, y2), 255, -1)
    fill = _fill_holes(img, hole)
    out = img.copy()
    erased = cv2.addWeighted(img, 1.0 - p["erase"], fill, p["erase"], 0.0).reshape(img.shape)
    cv2.copyTo(erased, hole, out)
    if p["outline"] < 1.0:  # the frame of the erased area darkens (the reference's Canny edges)
        t = max(1, int(round(u)))
        kernel = np.ones((2 * t + 1, 2 * t + 1), np.uint8)
        inner = cv2.erode(hole, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=255)
        edge = cv2.subtract(hole, inner)
        dark = cv2.convertScaleAbs(out, alpha=p["outline"]).reshape(img.shape)
        cv2.copyTo(dark, edge, out)
    return out
