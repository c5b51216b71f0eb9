"""The dataset contract, in one place.

A dataset folder (a Hugging Face dataset repo) looks like this::

    DIR/README.md                                           the dataset card (factory.card)
    DIR/build.json                                          manifest: command, source, seed, recipe, counts, features
    DIR/data/sft/train-00000-of-0000N.parquet               config ``sft``: its share of train
    DIR/data/rl/train-00000-of-0000N.parquet                config ``rl``: the rest of train
    DIR/data/validation/validation-00000-of-0000N.parquet   the validation split (both configs)
    DIR/errors.jsonl                                        failed samples: id, split, stage, reason
    DIR/report/                                             plots + statistics (factory.report)
    DIR/.build/                                             resume state (never published)

This module owns that layout: the configs, splits, shard names, row features, required columns,
the error-record shape (and reading/writing ``errors.jsonl``), the manifest and the atomic write.
Build, report, card, publish, export, sources, the CLI and the trainers import it; none restates it.
It imports nothing of the project, so everything may import it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------- folders, configs, splits

DATA = "data"
"""Folder of the parquet shards."""
MANIFEST = "build.json"
ERRORS = "errors.jsonl"
REPORT = "report"
CARD = "README.md"
STATE = ".build"
"""Resume state of a build (hidden: never uploaded)."""

SPLITS: tuple[str, ...] = ("train", "validation")
"""The source splits a dataset is built from."""
CONFIGS: tuple[str, ...] = ("sft", "rl")
"""The dataset's configs: ``sft`` (supervised fine-tuning) and ``rl`` (GRPO); they share validation."""
DEFAULT_SFT_FRACTION = 0.25
"""Share of the train samples in ``sft`` (the paper's 25 % / 75 % split)."""
SPLIT_DIRS: dict[str, tuple[str, ...]] = {"train": CONFIGS, "validation": ("validation",)}
"""Source split → the ``data/`` folders its rows go to."""
DATA_DIRS: tuple[str, ...] = (*CONFIGS, "validation")
"""Every folder under ``data/``."""


def dir_split(data_dir: str) -> str:
    """The split whose shards a ``data/`` folder holds: ``validation`` or ``train``."""
    return "validation" if data_dir == "validation" else "train"


# ---------------------------------------------------------------- shards

SHARD_RE = re.compile(r"^(?P<split>train|validation)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")
"""A shard's file name: ``<split>-NNNNN-of-NNNNN.parquet`` (the Hub's naming)."""


def shard_name(data_dir: str, index: int, count: int) -> str:
    """The file name of shard ``index`` of ``count`` in ``data/<data_dir>/``."""
    return f"{dir_split(data_dir)}-{index:05d}-of-{count:05d}.parquet"


def shard_pattern(data_dir: str) -> str:
    """The glob of a folder's shards relative to the dataset root (the card's ``data_files``)."""
    return f"{DATA}/{data_dir}/{dir_split(data_dir)}-*.parquet"


def shard_files(dataset_dir: str | os.PathLike, *, keep_empty: bool = False) -> dict[str, list[Path]]:
    """``{data dir: [parquet files]}`` under ``data/`` (hidden files skipped); folders without
    shards are left out unless ``keep_empty``."""
    ds = Path(dataset_dir)
    out: dict[str, list[Path]] = {}
    for d in DATA_DIRS:
        files = sorted(p for p in (ds / DATA / d).glob("*.parquet") if not p.name.startswith("."))
        if files or keep_empty:
            out[d] = files
    return out


def config_files(dataset_dir: str | os.PathLike, config: str, split: str) -> list[Path]:
    """The shards of ``config``/``split`` of a local dataset folder (the card's ``data_files``)."""
    d = "validation" if split == "validation" else config
    return sorted(Path(dataset_dir).glob(shard_pattern(d)))


# ---------------------------------------------------------------- rows

REQUIRED_COLUMNS: tuple[str, ...] = (
    "id",
    "image",
    "question",
    "choices",
    "answer",
    "answer_text",
    "direct_answers",
    "degradations",
    "total_intensity",
    "type",
    "influence",
    "reasoning",
    "conclusion",
    "solution",
    "prompt",
    "target_words",
    "backend",
)
"""The columns of every row, in order (DESIGN.md's data contract)."""
OPTIONAL_COLUMNS: tuple[str, ...] = ("clean_image",)
"""Written with ``keep_clean`` (after ``image``)."""
IMAGE_COLUMNS: tuple[str, ...] = ("image", "clean_image")
COLUMN_MEANINGS: dict[str, str] = {
    "id": "stable id `<source>:<source id>`",
    "image": "the degraded image",
    "clean_image": "the pristine image",
    "question": "the question; for multiple choice the options follow as `0. x 1. y …`",
    "choices": "the options (empty for open questions)",
    "answer": "what `<ANSWER>` must contain (the option index for multiple choice)",
    "answer_text": "the answer in words",
    "direct_answers": "free-form answers of the annotators (VQA soft score), may be empty",
    "degradations": "one record per degradation: name, stage, intensity, params (JSON: physical parameters and seed)",
    "total_intensity": "sum of the intensities",
    "type": "the chain's TYPE field",
    "influence": "the chain's INFLUENCE field",
    "reasoning": "the chain's REASONING field",
    "conclusion": "the chain's CONCLUSION field",
    "solution": "the full tagged chain (training target)",
    "prompt": "question + the Robust-R1 instruction (what the model is shown)",
    "target_words": "reasoning length the chain was scaled to",
    "backend": "chain writer: `template` or `<backend>:<model>` (e.g. `openai:gpt-4o`)",
}
"""What each column means (the card's column table)."""


def features(keep_clean: bool = False):
    """The ``datasets.Features`` of a row: :data:`REQUIRED_COLUMNS` (+ ``clean_image``)."""
    from datasets import Features, Image, Value

    degradation = {
        "name": Value("string"),
        "stage": Value("string"),
        "intensity": Value("float64"),
        "params": Value("string"),
    }
    types: dict[str, Any] = {
        "id": Value("string"),
        "image": Image(),
        "clean_image": Image(),
        "question": Value("string"),
        "choices": [Value("string")],
        "answer": Value("string"),
        "answer_text": Value("string"),
        "direct_answers": [Value("string")],
        "degradations": [degradation],
        "total_intensity": Value("float64"),
        "type": Value("string"),
        "influence": Value("string"),
        "reasoning": Value("string"),
        "conclusion": Value("string"),
        "solution": Value("string"),
        "prompt": Value("string"),
        "target_words": Value("int32"),
        "backend": Value("string"),
    }
    names = list(REQUIRED_COLUMNS)
    if keep_clean:
        names.insert(names.index("image") + 1, "clean_image")
    return Features({n: types[n] for n in names})


# ---------------------------------------------------------------- images

MAX_IMAGE_PIXELS = 89_478_485
"""The largest image (width × height) that ``degrade``, ``build`` and ``eval`` decode: Pillow's own
decompression-bomb threshold (1024 × 1024 × 1024 // 4 // 3, e.g. 9459 × 9459). A larger image is
recorded as an error of its sample, read from its header alone (never decoded), and the batch goes
on; downscale it to use it. ``factory.sources.decode_image`` enforces it."""


# ---------------------------------------------------------------- error records

ERROR_STAGES: tuple[str, ...] = ("load", "degrade", "chain", "write")
"""Where a sample failed: the ``stage`` of an error record."""


def error_record(sample_id: str, stage: str, reason: str, split: str | None = None) -> dict[str, Any]:
    """One failed sample: ``{"id", "split", "stage", "reason"}`` (a line of ``errors.jsonl``)."""
    return {"id": sample_id, "split": split, "stage": stage, "reason": reason}


def errors_text(records: Iterable[Mapping[str, Any]]) -> str:
    """Error records as JSON lines."""
    return "".join(json.dumps(dict(r)) + "\n" for r in records)


def write_errors(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write error records to ``path`` (JSON lines, atomically)."""
    return atomic_write(path, errors_text(records))


def read_errors(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of an ``errors.jsonl`` (``[]`` when missing). A line that is not a JSON object
    reads as a record of stage ``unknown``, so a damaged file is still counted, never fatal."""
    p = Path(path)
    if not p.is_file():
        return []
    out = []
    for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        out.append(rec if isinstance(rec, dict) else error_record("", "unknown", line.strip()[:200]))
    return out


def errors_by_stage(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``{stage: count}`` of error records, sorted by stage name."""
    counts: dict[str, int] = {}
    for r in records:
        stage = str(r.get("stage", "unknown"))
        counts[stage] = counts.get(stage, 0) + 1
    return dict(sorted(counts.items()))


# ---------------------------------------------------------------- the manifest (build.json)


def read_manifest(dataset_dir: str | os.PathLike) -> dict[str, Any]:
    """``build.json`` of a dataset folder; ``ValueError`` naming the folder and the fix."""
    ds = Path(dataset_dir)
    path = ds / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{ds}: no {MANIFEST}; pass a dataset folder written by `robust-r1 build`.") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); rebuild the dataset.") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("counts"), dict):
        raise ValueError(f"{path}: has no `counts`; rebuild the dataset.")
    return manifest


def manifest_counts(manifest: Mapping[str, Any]) -> dict[str, int]:
    """Rows per ``data/`` folder from a manifest's ``counts``."""
    c = manifest["counts"]

    def get(v: Any) -> int:
        return int(v.get("train", 0)) if isinstance(v, dict) else int(v or 0)

    return {d: get(c.get(d, 0)) for d in DATA_DIRS}


# ---------------------------------------------------------------- atomic writes


def _tmp_sibling(path: Path) -> Path:
    """A hidden temporary path next to ``path``, unique per process, thread and call."""
    tag = f"{os.getpid()}.{threading.get_ident()}.{random.getrandbits(32):08x}"
    return path.with_name(f".{path.name}.{tag}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success it is renamed over ``path``.

    Whatever writes to the yielded path (pyarrow, matplotlib, PIL, ...) either produces the whole
    file at ``path`` or nothing: on an exception the temporary file is removed and ``path`` is
    left as it was (an ``OSError`` without a file name, such as a full disk, is re-raised naming
    ``path``). ``fsync`` flushes the data to disk before the rename.
    """
    path = Path(path)
    tmp = _tmp_sibling(path)
    try:
        yield tmp
        if fsync and tmp.exists():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not exc.filename and exc.errno:
            # name the file being written (a full disk, pyarrow's and PIL's errors carry no name)
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


def atomic_write(path: str | os.PathLike, data: str | bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; returns the path."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(payload)
    return path
