"""Export a dataset folder to the layout of the Robust-R1 reference repository.

The reference GRPO loader (``src/open-r1-multimodal/src/open_r1/grpo_jsonl.py`` of
jqtangust/Robust-R1, run by ``run_scripts/run_grpo_robust.sh`` with ``--data_file_paths
train.jsonl --image_folders train_images --task_type robust``) reads one JSON object per line:

- ``image``: a path relative to the image folder (``os.path.join(image_folder, item["image"])``);
- ``conversations[0]["value"]``: the question; ``<image>`` is removed and the ``robust`` question
  template (its own TYPE/INFLUENCE/REASONING/CONCLUSION/ANSWER instruction) is appended directly
  after it, so the question ends with a newline;
- ``conversations[1]["value"]``: the ground-truth chain, which its ``type``, ``accuracy`` and
  ``length`` rewards parse (``<TYPE>…<TYPE_END>``, ``<ANSWER>…<ANSWER_END>``, token length);
- ``id``: kept as a column (its SFT script prints it).

So each line is ``{"id", "image", "conversations": [{"from": "human", "value": "<image>" +
question}, {"from": "gpt", "value": solution}]}``; multiple-choice options are laid out one per
line (``"…?\\n0. trucks\\n1. wagons\\n"``) as in the reference demo. ``human="prompt"`` puts our
own ``prompt`` column (question + our instruction) there instead, for loaders that add no
instruction of their own.

``train.jsonl`` + ``train_images/`` come from the chosen config's train split (``rl`` by
default: the reference runs GRPO on it), ``test.jsonl`` + ``test_images/`` from ``validation``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from factory.errors import ConfigError
from factory.layout import CONFIGS, DATA, shard_files
from factory.lock import LOCK_NAME, OutputLock

MARKER = ".robust-r1-export.json"
"""Written into every export; an existing folder without it is never replaced."""
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
HUMAN_FIELDS = ("question", "prompt")


def reference_question(question: str, choices: list[str] | None = None) -> str:
    """Our ``question`` column (``"q 0. a 1. b"``) in the reference layout (``"q\\n0. a\\n1. b\\n"``)."""
    q = (question or "").strip()
    choices = [" ".join(str(c).split()) for c in (choices or [])]
    if choices:
        inline = " ".join(f"{i}. {c}" for i, c in enumerate(choices))
        if q.endswith(inline):
            stem = q[: -len(inline)].rstrip()
            return stem + "\n" + "".join(f"{i}. {c}\n" for i, c in enumerate(choices))
    return q + "\n"


def _suffix(image: dict[str, Any]) -> str:
    data = image.get("bytes") or b""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    suffix = Path(image.get("path") or "").suffix.lower()
    return suffix if suffix in IMAGE_SUFFIXES else ".png"


def _safe_name(sample_id: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._\-]+", "_", sample_id).strip("._") or "image"
    return name[:150]


def _write_split(files: list[Path], jsonl: Path, images: Path, human: str, dataset_dir: Path) -> int:
    import pyarrow.parquet as pq

    images.mkdir(parents=True)
    used: set[str] = set()
    n = 0
    with open(jsonl, "w", encoding="utf-8") as fh:
        for f in files:
            pf = pq.ParquetFile(f)
            have = set(pf.schema_arrow.names)
            need = ["id", "image", "solution", "question", "choices"] + (["prompt"] if human == "prompt" else [])
            missing = [c for c in need if c not in have]
            if missing:
                raise ValueError(f"{f}: missing column(s) {', '.join(missing)}; is it a robust-r1 dataset?")
            for batch in pf.iter_batches(batch_size=64, columns=need):
                for row in batch.to_pylist():
                    sid = str(row["id"])
                    image = row["image"] or {}
                    stem = _safe_name(sid)
                    ext = _suffix(image)
                    fname, k = stem + ext, 1
                    while fname in used:
                        k += 1
                        fname = f"{stem}-{k}{ext}"
                    used.add(fname)
                    if image.get("bytes"):
                        (images / fname).write_bytes(image["bytes"])
                    elif image.get("path") and (dataset_dir / image["path"]).is_file():
                        shutil.copyfile(dataset_dir / image["path"], images / fname)
                    else:
                        raise ValueError(f"{f}: sample {sid!r} has no image bytes; rebuild the dataset.")
                    text = row["prompt"] if human == "prompt" else reference_question(row["question"], row["choices"])
                    item = {
                        "id": sid,
                        "image": fname,
                        "conversations": [
                            {"from": "human", "value": "<image>" + text},
                            {"from": "gpt", "value": row["solution"]},
                        ],
                    }
                    fh.write(json.dumps(item, ensure_ascii=False) + "\n")
                    n += 1
    return n


def export_reference(
    dataset_dir: str | Path,
    out_dir: str | Path,
    config: str = "rl",
    *,
    human: str = "question",
) -> dict[str, int]:
    """Write ``train.jsonl``/``test.jsonl`` + ``train_images/``/``test_images/`` into ``out_dir``.

    Returns ``{"train": n, "test": m}``. Everything is written to a hidden temporary sibling and
    renamed into place at the end, so an interrupted export leaves the previous one (or nothing),
    never a half-written folder; re-running is always safe. ``out_dir`` may be a previous export
    (it is replaced) or a missing/empty folder; any other existing folder is refused. One export
    into ``out_dir`` at a time: a second raises :class:`factory.lock.FolderBusy` (the lock file,
    ``.<name>.robust-r1.lock``, lies beside ``out_dir`` because the folder itself is replaced).
    """
    ds = Path(dataset_dir)
    out = Path(out_dir)
    if config not in CONFIGS:
        msg = f"use {' or '.join(CONFIGS)} (the config whose train split becomes train.jsonl)."
        raise ConfigError("config", msg, value=config)
    if human not in HUMAN_FIELDS:
        raise ConfigError("human", "use question (the reference appends its own instruction) or prompt.", value=human)
    shards = shard_files(ds, keep_empty=True)
    train_files = shards[config]
    if not train_files:
        raise ValueError(f"{ds / DATA / config}: no parquet files; pass a dataset folder written by `robust-r1 build`.")
    test_files = shards["validation"]
    ds_abs, out_abs = ds.resolve(), out.resolve()
    if out_abs == ds_abs or ds_abs in out_abs.parents or out_abs in ds_abs.parents:
        raise ValueError(f"{out}: the export folder must lie outside the dataset folder {ds} (and not contain it).")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file())):
        raise ValueError(f"{out}: exists and is not a robust-r1 export; choose another folder or remove it.")

    out.parent.mkdir(parents=True, exist_ok=True)
    lock = OutputLock(out.parent, "export")
    lock.path = out.parent / f".{out.name}{LOCK_NAME}"  # beside OUT: OUT itself is swapped at the end
    with lock:
        return _export(ds, out, train_files, test_files, config, human, ds_abs)


def _export(ds: Path, out: Path, train_files: list[Path], test_files: list[Path], config: str, human: str,
            ds_abs: Path) -> dict[str, int]:
    """:func:`export_reference` once ``out`` is locked."""
    for stale in out.parent.glob(f".{out.name}.export-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.export-tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.export-old-{os.getpid()}"
    moved = False
    try:
        tmp.mkdir()
        counts = {
            "train": _write_split(train_files, tmp / "train.jsonl", tmp / "train_images", human, ds),
            "test": _write_split(test_files, tmp / "test.jsonl", tmp / "test_images", human, ds),
        }
        meta = {"format": "reference", "dataset": str(ds_abs), "config": config, "human": human, "counts": counts}
        (tmp / MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rename(old)
            moved = True
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if moved and not out.exists():
            old.rename(out)  # put the previous export back
        raise
    if moved:
        shutil.rmtree(old, ignore_errors=True)
    return counts
