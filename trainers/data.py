"""Data adapters: the factory dataset (DESIGN data contract) → TRL's SFT and GRPO formats.

* SFT (prompt-completion, conversational): ``prompt`` = user turn with the image and the
  ``prompt`` column, ``completion`` = assistant turn with the ``solution`` chain, ``images`` =
  ``[image]``. TRL then computes the loss on the completion only.
* GRPO: ``prompt`` = the user turn, ``image`` = the degraded image, and the ground-truth columns
  the rewards read (``solution``, ``answer``, ``choices``, ``degradations``, ``target_words``,
  ``direct_answers``) kept as they are.

Images are resized to a pixel budget (aspect ratio kept, never enlarged) so the number of image
tokens is bounded and the text is never truncated into the image placeholders.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from factory.layout import config_files

GT_COLUMNS: tuple[str, ...] = (
    "solution", "answer", "choices", "degradations", "target_words", "direct_answers", "answer_text",
)  # fmt: skip
REQUIRED: tuple[str, ...] = ("image", "prompt", "solution")


def fit_pixels(image: Any, max_pixels: int, *, multiple: int = 28):
    """Resize a PIL image so ``width * height <= max_pixels`` (aspect kept, sides >= ``multiple``)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        from factory.degrade import to_rgb_uint8

        image = Image.fromarray(to_rgb_uint8(image))
    image = image.convert("RGB")
    w, h = image.size
    if w * h <= max_pixels and w >= multiple and h >= multiple:
        return image
    f = math.sqrt(max_pixels / float(w * h))
    nw = max(multiple, int(w * f))
    nh = max(multiple, int(h * f))
    while nw * nh > max_pixels and (nw > multiple or nh > multiple):
        if nw >= nh and nw > multiple:
            nw -= 1
        else:
            nh -= 1
    return image.resize((nw, nh), Image.BICUBIC)


def load_factory_dataset(path_or_repo: str | Path, config: str, split: str = "train"):
    """Load a factory dataset (local folder or Hub repo) config/split with ``datasets``.

    A local folder is read through its shards (``factory.layout.config_files``: the files the
    card lists for ``config``/``split``), so the ``datasets`` cache is keyed by those files: a
    rebuilt folder (or another folder of the same name) is never served from a stale cache."""
    from datasets import load_dataset

    try:
        folder = Path(path_or_repo)
        files = [str(f) for f in config_files(folder, config, split)] if folder.is_dir() else None
        if files:
            ds = load_dataset("parquet", data_files={split: files}, split=split)
        else:
            ds = load_dataset(str(path_or_repo), config, split=split)
    except (ValueError, FileNotFoundError, ConnectionError) as exc:
        raise ValueError(
            f"{path_or_repo}: cannot load config {config!r} split {split!r} ({exc}). "
            "Build one with `robust-r1 build` or `robust-r1 demo`, or pass a Hub repo made by `robust-r1 publish`."
        ) from None
    missing = [c for c in REQUIRED if c not in ds.column_names]
    if missing:
        raise ValueError(
            f"{path_or_repo} [{config}/{split}]: missing columns {missing}; columns are {ds.column_names}. "
            "Is this a robust-r1 dataset?"
        )
    return ds


def _user_turn(prompt: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]


def to_sft(ds, max_pixels: int):
    """Map a factory dataset to TRL prompt-completion rows with one image each."""

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "prompt": _user_turn(row["prompt"]),
            "completion": [{"role": "assistant", "content": [{"type": "text", "text": row["solution"]}]}],
            "images": [fit_pixels(row["image"], max_pixels)],
        }

    return ds.map(convert, remove_columns=ds.column_names, desc="SFT format")


def to_grpo(ds, max_pixels: int):
    """Map a factory dataset to TRL GRPO rows, keeping the ground-truth columns for the rewards."""
    keep = [c for c in GT_COLUMNS if c in ds.column_names]

    def convert(row: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": _user_turn(row["prompt"]), "image": fit_pixels(row["image"], max_pixels)}

    drop = [c for c in ds.column_names if c not in keep and c not in ("prompt", "image")]
    return ds.map(convert, remove_columns=drop, desc="GRPO format")
