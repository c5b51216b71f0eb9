"""Post-processing stage: what editing and reuse do to the picture.

sharpness change, graffiti, watermark damage.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._common import REFLECT, lerp_u8, short_side, to_u8
from .registry import Param, register


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
