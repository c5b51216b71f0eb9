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


REFERENCE_SHORT_SIDE = 480.0
"""The reference implementation's pixel sizes assume a 640x480 frame: its sizes are read as
fractions of this short side, so they scale with the image."""


def ref_unit(img: np.ndarray) -> float:
    """One pixel of the reference's 640x480 frame, in pixels of ``img``."""
    return short_side(img) / REFERENCE_SHORT_SIDE


def gaussian_blur(img: np.ndarray, sigma: float, max_sigma: float = 2.0) -> np.ndarray:
    """Gaussian blur of any sigma at a flat cost: large sigmas run down an image pyramid.

    Each ``pyrDown`` halves the image and blurs it with a sigma of one of its own pixels; the
    remaining blur is applied at the smallest level (where it is at most about ``max_sigma``
    pixels) and the result is linearly resized back. Below ``2 * max_sigma`` the blur is exact.
    """
    h, w = img.shape[:2]
    if sigma <= 0.05:
        return img.copy()
    cur = img
    var_done = 0.0  # variance (in full-size pixels²) applied by the pyramid so far
    level = 0
    while sigma / (1 << level) > 2.0 * max_sigma and min(cur.shape[:2]) >= 4:
        cur = cv2.pyrDown(cur, borderType=REFLECT)
        var_done += float(4**level)  # pyrDown's 5-tap kernel: variance 1 at the input's scale
        level += 1
    rest = math.sqrt(max(0.0, sigma * sigma - var_done)) / (1 << level)
    if rest > 0.05:
        cur = cv2.GaussianBlur(cur, (0, 0), rest, borderType=REFLECT)
    if level:
        cur = cv2.resize(cur, (w, h), interpolation=cv2.INTER_LINEAR)
    return cur.reshape(img.shape)


def line_blur(img: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    """Average along a straight segment of about ``length`` pixels at ``angle_deg`` (a motion streak).

    Along the segment's major axis (x or y, whichever it runs closer to) the streak is built from
    symmetric passes: a [1, 2, 1] / 4 base, then two-tap averages at ±1, ±2, ±4, ... pixels, each
    doubling the length. Every pass is one shifted add of the whole image at full resolution, so a
    30-pixel streak costs five additions instead of a 30x30 convolution and stays sharp across the
    motion; the taps are symmetric, so the image never shifts. The last pass is blended in by the
    fraction of its doubling, so the blur grows continuously with ``length``. Minor-axis offsets
    are rounded to whole pixels; borders are reflected; sums are kept in 16-bit fixed point.
    """
    a = math.radians(angle_deg)
    c, s_ = math.cos(a), math.sin(a)
    major_x = abs(c) >= abs(s_)
    extent = float(length) * (abs(c) if major_x else abs(s_))  # pixels along the major axis
    if extent <= 1e-3:
        return img.copy()
    ratio = (s_ / c) if major_x else (c / s_)  # minor step per major pixel, in [-1, 1]
    # Passes: (half-spacing h along the major axis, blend t of this pass).
    if extent < 2.0:  # below two pixels the [1, 2, 1] base fades in
        plan = [(1, extent / 2.0)]
    else:
        j = int(math.floor(math.log2(extent)))
        plan = [(1, 1.0)] + [(1 << (i - 1), 1.0) for i in range(1, j)]
        t = extent / (1 << j) - 1.0
        if t > 1e-6:
            plan.append((1 << (j - 1), t))
    # Minor-axis offsets: fractional ones are split between the two neighbouring whole pixels.
    minors = []
    for h_major, _ in plan:
        m = h_major * ratio
        lo = int(math.floor(m))
        f = m - lo
        minors.append((lo, 0.0) if f < 0.25 else ((lo + 1, 0.0) if f > 0.75 else (lo, f)))
    pad_major = sum(hm for hm, _ in plan)
    pad_minor = sum(max(abs(lo), abs(lo + 1)) if f > 0.0 else abs(lo) for lo, f in minors)
    pad_x, pad_y = (pad_major, pad_minor) if major_x else (pad_minor, pad_major)
    cur = cv2.copyMakeBorder(img, pad_y, pad_y, pad_x, pad_x, REFLECT).astype(np.uint16)
    cur <<= 4  # 16-bit fixed point, 4 fractional bits
    if cur.ndim == 2:
        cur = cur[:, :, None]
    for n, ((h_major, t), (m0, f)) in enumerate(zip(plan, minors)):
        reach = max(abs(m0), abs(m0 + 1)) if f > 0.0 else abs(m0)
        ax, ay = (h_major, reach) if major_x else (reach, h_major)
        hh, ww = cur.shape[0] - 2 * ay, cur.shape[1] - 2 * ax

        def tap(sign: int, minor: int, hm: int = h_major, src: np.ndarray = cur) -> np.ndarray:
            # The canvas shifted by sign * (hm, minor) (major/minor mapped to x/y).
            dx, dy = (sign * hm, sign * minor) if major_x else (sign * minor, sign * hm)
            return src[ay + dy : ay + dy + hh, ax + dx : ax + dx + ww]  # noqa: B023 (used at once)

        if f > 0.0:
            lo = cv2.addWeighted(tap(-1, m0), 1.0 - f, tap(-1, m0 + 1), f, 0.0)
            hi = cv2.addWeighted(tap(1, m0), 1.0 - f, tap(1, m0 + 1), f, 0.0)
        else:
            lo, hi = tap(-1, m0), tap(1, m0)
        mid = cur[ay : ay + hh, ax : ax + ww]
        pair = cv2.addWeighted(lo, 0.5, hi, 0.5, 0.0)
        if n == 0:  # base: [1, 2, 1] / 4 at full strength
            nxt = cv2.addWeighted(mid, 1.0 - 0.5 * t, pair, 0.5 * t, 0.0)
        else:
            nxt = pair if t >= 1.0 else cv2.addWeighted(mid, 1.0 - t, pair, t, 0.0)
        cur = nxt if nxt.ndim == 3 else nxt[:, :, None]
    out = cv2.convertScaleAbs(cur, alpha=1.0 / 16.0)
    return out.reshape(img.shape)
