"""Small numeric helpers shared by the stage modules (not public API)."""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

REFLECT = cv2.BORDER_REFLECT_101


def short_side(img: np.ndarray) -> int:
    return int(min(img.shape[0], img.shape[1]))


def to_u8(x: np.ndarray) -> np.ndarray:
    """Round and clip a float array to uint8. A float32 ``x`` is clipped in place (a temporary)."""
    if x.dtype != np.float32:
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)
    np.clip(x, 0.0, 255.0, out=x)
    out = cv2.convertScaleAbs(x)  # rounds to nearest and saturates, without float temporaries
    if x.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


def lerp_u8(a: np.ndarray, b: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """``a * (1 - alpha) + b * alpha`` for uint8 images; ``alpha`` a scalar or an H×W map in [0, 1]."""
    if np.isscalar(alpha):
        al = float(alpha)
        return cv2.addWeighted(a, 1.0 - al, b, al, 0.0)
    w2 = np.asarray(alpha, dtype=np.float32)
    if w2.ndim == 3:
        w2 = w2[:, :, 0]
    out = cv2.blendLinear(a, b, 1.0 - w2, w2)
    if a.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


def resize_to(img: np.ndarray, w: int, h: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    out = cv2.resize(img, (max(1, int(w)), max(1, int(h))), interpolation=interpolation)
    if img.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


def low_res_size(h: int, w: int, longest: int) -> tuple[int, int]:
    """(h, w) scaled so the longer side is at most ``longest`` (never below 1)."""
    f = min(1.0, longest / max(h, w))
    return max(1, round(h * f)), max(1, round(w * f))


def downscale_for(img: np.ndarray, size_px: float, target_px: float) -> tuple[np.ndarray, float]:
    """Downscale ``img`` so a feature of ``size_px`` pixels becomes about ``target_px`` pixels.

    Returns the (possibly unchanged) image and the factor by which it was reduced (>= 1).
    Filtering at the reduced size and resizing back keeps the cost of large kernels flat.
    """
    h, w = img.shape[:2]
    f = max(1.0, size_px / target_px)
    if f <= 1.0 + 1e-9:
        return img, 1.0
    sh, sw = max(1, round(h / f)), max(1, round(w / f))
    if sh == h and sw == w:
        return img, 1.0
    small = resize_to(img, sw, sh, cv2.INTER_AREA)
    return small, 0.5 * (h / sh + w / sw)


@functools.lru_cache(maxsize=64)
def disc_kernel(radius: float) -> np.ndarray:
    """Normalised anti-aliased disc (a defocus point-spread function) of fractional radius."""
    r = max(0.0, float(radius))
    half = int(math.ceil(r + 0.5))
    y, x = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float32)
    d = np.sqrt(x * x + y * y)
    k = np.clip(r + 0.5 - d, 0.0, 1.0)
    k /= k.sum()
    return k.astype(np.float32)


@functools.lru_cache(maxsize=64)
def line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Normalised motion-blur kernel: a straight segment of fractional length through the centre."""
    L = max(0.0, float(length))
    half = int(math.ceil(L / 2 + 1))
    size = 2 * half + 1
    k = np.zeros((size, size), np.float32)
    n = max(2, int(math.ceil(L * 4)) + 1)
    t = np.linspace(-L / 2, L / 2, n)
    a = math.radians(angle_deg)
    xs = half + t * math.cos(a)
    ys = half + t * math.sin(a)
    x0 = np.floor(xs).astype(int)
    y0 = np.floor(ys).astype(int)
    fx = xs - x0
    fy = ys - y0
    for dx, dy, wgt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        np.add.at(k, (y0 + dy, x0 + dx), wgt)
    k /= k.sum()
    return k


def filter_at_scale(img: np.ndarray, kernel_for, size_px: float, max_px: float = 2.5) -> np.ndarray:
    """Convolve with ``kernel_for(size)``; kernels larger than ``max_px`` run on a reduced image."""
    h, w = img.shape[:2]
    small, f = downscale_for(img, size_px, max_px)
    k = kernel_for(size_px / f)
    out = cv2.filter2D(small, -1, k, borderType=REFLECT)
    if out.ndim == 2:
        out = out[:, :, None]
    if f > 1.0:
        out = resize_to(out, w, h, cv2.INTER_LINEAR)
    return out


def smooth_field(rng: np.random.Generator, cells: tuple[int, int], h: int, w: int) -> np.ndarray:
    """A smooth random field ~N(0, 1) of shape (h, w) from a grid of ``cells`` (rows, cols).

    The grid size does not depend on the image size, so the same seed gives the same pattern at
    any resolution.
    """
    g = rng.standard_normal(cells).astype(np.float32)
    f = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    if f.ndim == 1:
        f = f.reshape(h, w)
    return f


@functools.lru_cache(maxsize=8)
def base_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gx.setflags(write=False)
    gy.setflags(write=False)
    return gx, gy
