"""Helpers shared by the studio's tabs: the work folder, safe image uploads, error display.

Nothing here imports gradio at module level, so the logic can be tested (and reused) without it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("robust_r1.studio")

DEFAULT_MAX_IMAGE_PIXELS = 25_000_000
"""Uploads above this many pixels are refused (with a message), before any pixel is decoded."""
DISPLAY_SIDE = 1024
"""Images are shown downscaled to this longer side; computations and downloads use full size."""


class StudioError(ValueError):
    """A problem the user can fix; its message is shown in the page as it is."""


# ---------------------------------------------------------------- the work folder


class Workdir:
    """The one folder the studio writes to (uploads, outputs, Hub downloads, reports, caches)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    def ensure(self) -> Workdir:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StudioError(
                f"--workdir {self.root}: cannot create it ({exc.strerror}); choose a writable folder."
            ) from None
        return self

    def path(self, *parts: str) -> Path:
        """A path inside the work folder (created as a folder when ``parts`` name one); never outside it."""
        p = self.root.joinpath(*parts).resolve()
        if p != self.root and self.root not in p.parents:
            raise StudioError(f"{'/'.join(parts)}: outside the work folder {self.root}.")
        return p

    def folder(self, *parts: str) -> Path:
        p = self.path(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def write_bytes(self, rel: str, data: bytes) -> Path:
        """Write ``data`` atomically at ``rel`` inside the work folder; returns the path."""
        from factory.layout import atomic_write

        p = self.path(*Path(rel).parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(p, data)

    def write_json(self, rel: str, obj: Any) -> Path:
        return self.write_bytes(rel, (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def slug(text: str, limit: int = 60) -> str:
    """A file-name-safe version of ``text`` (letters, digits, ``.-_``), never empty."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")[:limit]
    return s or "x"


def short_hash(*parts: Any) -> str:
    h = hashlib.blake2b(digest_size=5)
    for p in parts:
        h.update(p.tobytes() if isinstance(p, np.ndarray) else str(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


# ---------------------------------------------------------------- images


def load_upload(
    path: str | Path | None, *, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, what: str = "upload"
) -> np.ndarray:
    """Read an uploaded image as RGB uint8, refusing files that are not images or too large.

    The size is read from the header first, so a huge image (or a decompression bomb) is refused
    before it is decoded. Errors are :class:`StudioError` naming the file and what to do.
    """
    from PIL import Image, UnidentifiedImageError

    from factory.degrade import load_image

    if not path:
        raise StudioError(f"{what}: no file; upload an image (PNG, JPEG, WebP, ...).")
    p = Path(path)
    name = p.name
    if not p.is_file() or p.stat().st_size == 0:
        raise StudioError(f"{what} {name}: the file is empty; upload an image (PNG, JPEG, WebP, ...).")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(p) as im:
                w, h = im.size
        except Image.DecompressionBombError:
            raise StudioError(
                f"{what} {name}: the image is far too large (a decompression bomb by Pillow's limit); "
                f"the studio accepts up to {max_pixels / 1e6:.0f} megapixels: downscale it first."
            ) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise StudioError(
                f"{what} {name}: not an image the studio can read; upload a PNG, JPEG, WebP, BMP or TIFF file."
            ) from None
    if w * h > max_pixels:
        raise StudioError(
            f"{what} {name}: the image is {w}×{h} ({w * h / 1e6:.1f} megapixels); the studio accepts up to "
            f"{max_pixels / 1e6:.0f} megapixels: downscale it first (or start the studio with a larger --max-image-mp)."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return load_image(p)
    except ValueError as exc:
        raise StudioError(f"{what} {name}: {exc}") from None


def display(img: np.ndarray | None, side: int = DISPLAY_SIDE) -> np.ndarray | None:
    """``img`` downscaled (area interpolation) so its longer side is at most ``side``."""
    if img is None:
        return None
    h, w = img.shape[:2]
    if max(h, w) <= side:
        return img
    import cv2

    k = side / max(h, w)
    return cv2.resize(img, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)


def png_bytes(img: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def difference(clean: np.ndarray, out: np.ndarray) -> dict[str, float]:
    """How much an image changed: mean absolute difference (0-255) and PSNR in dB (inf when equal)."""
    a = clean.astype(np.float32)
    b = out.astype(np.float32)
    mad = float(np.abs(a - b).mean())
    mse = float(((a - b) ** 2).mean())
    psnr = float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
    return {"mean_abs_diff": round(mad, 3), "psnr_db": round(psnr, 2) if np.isfinite(psnr) else psnr}


# ---------------------------------------------------------------- text helpers


def parse_options(text: str | Sequence[str] | None) -> list[str]:
    """Options of a multiple-choice question: one per line (blank lines ignored); a single line
    with ``;`` separators also works. Empty → an open question."""
    if text is None:
        return []
    if not isinstance(text, str):
        return [" ".join(str(t).split()) for t in text if str(t).strip()]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) == 1 and ";" in lines[0]:
        lines = lines[0].split(";")
    return [" ".join(ln.split()) for ln in lines if ln.strip()]


def resolve_answer(answer: str, choices: list[str]) -> tuple[str, str]:
    """``(answer, answer_text)``: an option index, letter or text for multiple choice; else the answer."""
    from factory.chains.writer import resolve_answer as resolve

    try:
        return resolve(str(answer or ""), choices)
    except ValueError as exc:
        raise StudioError(str(exc).replace("--answer", "answer", 1)) from None


def error_markdown(message: str) -> str:
    return f"⚠ **Error:** {message}"


# ---------------------------------------------------------------- handlers that never kill the app


def guarded(n_outputs: int, reset: dict[int, Any] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap an event handler whose first output is a status Markdown.

    A :class:`StudioError` or ``ValueError`` puts its message into the status and leaves the other
    outputs as they were (except those ``reset`` gives a value for, by position: e.g. a rejected
    upload clears its widget); any other exception is logged with its traceback and shown the
    same way. The page never dies. The signature is kept, so ``gr.Progress`` parameters still work.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every failure is shown in the page
                if isinstance(exc, ValueError):
                    msg = str(exc)
                    log.info("studio: %s: %s", fn.__name__, msg)
                else:
                    msg = f"unexpected {type(exc).__name__}: {exc}"
                    log.exception("studio: %s failed", fn.__name__)
                return error_result(msg, n_outputs, reset)

        return wrapper

    return deco


def error_result(message: str, n_outputs: int, reset: dict[int, Any] | None = None) -> Any:
    import gradio as gr

    status = error_markdown(message)
    if n_outputs == 1:
        return status
    reset = reset or {}
    return (status, *[reset[i] if i in reset else gr.skip() for i in range(1, n_outputs)])
