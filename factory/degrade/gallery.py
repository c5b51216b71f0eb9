"""A labelled contact sheet: rows = degradations, columns = intensities (per style)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import DEFAULT_STYLE, apply, check_style, get, to_rgb_uint8

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
    style: str | Sequence[str] = DEFAULT_STYLE,
) -> np.ndarray:
    """Render ``image`` under every degradation in ``names`` at every level; return an RGB grid.

    ``style`` is one style (``reference``, ``physical`` or ``mixed``) or a sequence of styles:
    with several, each row shows the levels of every style side by side (a level 0 column is
    shown once, it is the same picture in every style).
    """
    import cv2
    from PIL import Image, ImageDraw

    styles = (style,) if isinstance(style, str) else tuple(style)
    if not styles:
        raise ValueError("gallery: style must name at least one style.")
    styles = tuple(check_style(st) for st in styles)
    img = to_rgb_uint8(image)
    h, w = img.shape[:2]
    th = max(16, int(thumb_height))
    tw = max(16, round(w * th / h))
    entries = [get(n) for n in names]
    # Columns: (style, level); intensity 0 is the clean picture in every style, so it comes once.
    columns: list[tuple[str, float]] = []
    for i, st in enumerate(styles):
        columns += [(st, float(s)) for s in levels if not (float(s) == 0.0 and i > 0)]
    label_w = 190
    many = len(styles) > 1
    head_h = 28 + (26 if title else 0) + (20 if many else 0)
    pad = 4
    grid_w = label_w + len(columns) * (tw + pad) + pad
    grid_h = head_h + len(entries) * (th + pad) + pad
    canvas = Image.new("RGB", (grid_w, grid_h), (250, 250, 250))
    draw = ImageDraw.Draw(canvas)
    f_head, f_label, f_small = _font(16), _font(15), _font(11)
    y_head = 4
    if title:
        draw.text((pad, y_head), title, fill=(20, 20, 20), font=f_head)
        y_head += 26
    for j, (st, s) in enumerate(columns):
        x = label_w + pad + j * (tw + pad)
        if many and s != 0.0 and (j == 0 or columns[j - 1][0] != st or columns[j - 1][1] == 0.0):
            draw.text((x + 4, y_head), f"{st} style", fill=(150, 30, 30), font=f_head)
        label = "clean (0)" if s == 0.0 else f"intensity {s:.2f}"
        draw.text((x + 4, y_head + (20 if many else 0)), label, fill=(20, 20, 20), font=f_head)
    for i, e in enumerate(entries):
        y = head_h + pad + i * (th + pad)
        draw.text((pad, y + th // 2 - 18), e.name, fill=(10, 10, 10), font=f_label)
        draw.text((pad, y + th // 2 + 2), e.stage, fill=(110, 110, 110), font=f_small)
        for j, (st, s) in enumerate(columns):
            out = apply(img, e.name, s, seed=seed, style=st)
            thumb = cv2.resize(out, (tw, th), interpolation=cv2.INTER_AREA)
            canvas.paste(Image.fromarray(thumb), (label_w + pad + j * (tw + pad), y))
    return np.asarray(canvas)
