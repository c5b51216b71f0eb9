"""A labelled contact sheet: rows = degradations, columns = intensities."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import apply, get, to_rgb_uint8

DEFAULT_LEVELS: tuple[float, ...] = (0.0, 0.23, 0.45, 0.9)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def gallery(
    image: Any,
    names: Sequence[str],
    levels: Sequence[float] = DEFAULT_LEVELS,
    *,
    seed: int = 0,
    thumb_height: int = 160,
    title: str | None = None,
) -> np.ndarray:
    """Render ``image`` under every degradation in ``names`` at every level; return an RGB grid."""
    import cv2
    from PIL import Image, ImageDraw

    img = to_rgb_uint8(image)
    h, w = img.shape[:2]
    th = max(16, int(thumb_height))
    tw = max(16, round(w * th / h))
    entries = [get(n) for n in names]
    label_w = 190
    head_h = 28 + (26 if title else 0)
    pad = 4
    grid_w = label_w + len(levels) * (tw + pad) + pad
    grid_h = head_h + len(entries) * (th + pad) + pad
    canvas = Image.new("RGB", (grid_w, grid_h), (250, 250, 250))
    draw = ImageDraw.Draw(canvas)
    f_head, f_label, f_small = _font(16), _font(15), _font(11)
    y_head = 4
    if title:
        draw.text((pad, y_head), title, fill=(20, 20, 20), font=f_head)
        y_head += 26
    for j, s in enumerate(levels):
        x = label_w + pad + j * (tw + pad)
        draw.text((x + 4, y_head), f"intensity {s:.2f}", fill=(20, 20, 20), font=f_head)
    for i, e in enumerate(entries):
        y = head_h + pad + i * (th + pad)
        draw.text((pad, y + th // 2 - 18), e.name, fill=(10, 10, 10), font=f_label)
        draw.text((pad, y + th // 2 + 2), e.stage, fill=(110, 110, 110), font=f_small)
        for j, s in enumerate(levels):
            out = apply(img, e.name, s, seed=seed)
            thumb = cv2.resize(out, (tw, th), interpolation=cv2.INTER_AREA)
            canvas.paste(Image.fromarray(thumb), (label_w + pad + j * (tw + pad), y))
    return np.asarray(canvas)
