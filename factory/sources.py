"""QA sources: the bundled demo set, A-OKVQA, and any HF dataset or local files by column mapping.

Every source yields :class:`Sample` objects in a fixed order (the order of its rows) and has
``len()``, ``split`` and ``describe()``. Images are decoded lazily, one sample at a time
(:meth:`Sample.load_image`, usually in a worker process), so a bad image fails that sample only.

* ``demo``: real photos scikit-image ships with a multiple-choice QA set written for them
  (``factory/assets/demo_qa.jsonl``: 42 questions, 34 train / 8 validation). The default,
  fully offline.
* ``aokvqa``: A-OKVQA (``HuggingFaceM4/A-OKVQA`` on the Hub) through ``datasets.load_dataset``;
  columns ``image, question_id, question, choices, correct_choice_idx, direct_answers,
  rationales``. A local parquet/jsonl file or folder in that schema is recognised and loads the
  same way.
* anything else (a Hub repo id, a local parquet / jsonl / csv file, a folder of them, an HF
  ``imagefolder`` with ``metadata.jsonl``) through a column mapping
  ``--columns image=img,question=q,choices=options,answer=label,id=qid``.

::

    from factory.sources import open_source
    for s in open_source("demo", "train"):
        s.id, s.question, s.choices, s.answer, s.answer_text, s.load_image().shape
"""

from __future__ import annotations

import ast
import io
import json
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from factory.errors import ConfigError, InputError
from factory.layout import MAX_IMAGE_PIXELS, SPLITS

AOKVQA_REPO = "HuggingFaceM4/A-OKVQA"
AOKVQA_COLUMNS = ("image", "question_id", "question", "choices", "correct_choice_idx", "direct_answers")
"""The A-OKVQA columns a source must have to be read as A-OKVQA (``rationales`` is optional)."""
TARGETS = ("id", "image", "question", "choices", "answer", "answer_text", "direct_answers")
"""What a column mapping can fill; ``image`` and ``question`` are required, plus ``answer`` or
``answer_text``."""
_SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "validation"}
_TABULAR = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
_COLUMNS_HELP = "--columns image=COL,question=COL,choices=COL,answer=COL[,answer_text=COL,id=COL,direct_answers=COL]"
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


# ---------------------------------------------------------------- decoding an image, with one pixel limit


def decode_image(data: Any, name: str | None = None) -> np.ndarray:
    """RGB uint8 pixels of encoded image bytes or an image file (EXIF orientation applied).

    The one decoder of the factory's inputs (``degrade``, ``build``, ``chain``, ``eval``). Raises
    :class:`~factory.errors.InputError` naming the image (``name``, else the path) and the fix: a
    missing, empty or unreadable (permission denied) file, a URL (only local files and bytes are
    read), not an image, an image larger than :data:`factory.layout.MAX_IMAGE_PIXELS` (checked
    from the header, before anything is decoded: a decompression bomb costs nothing), truncated
    or corrupt data.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    from factory.degrade import to_rgb_uint8

    fh = None
    if isinstance(data, (bytes, bytearray, memoryview)):
        payload = bytes(data)
        label = name or "image bytes"
        if not payload:
            raise InputError(f"{label}: image is empty (0 bytes); re-download or remove it.")
        source: Any = io.BytesIO(payload)
    elif isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        label = name or text
        if _URL_RE.match(text):
            raise InputError(
                f"{label}: {text} is a URL; images are read from local files or bytes only: download it first."
            )
        try:
            if os.path.isdir(text):
                raise InputError(f"{label}: is a folder, not an image file.")
            if os.stat(text).st_size == 0:
                raise InputError(f"{label}: file is empty (0 bytes); re-download or remove it.")
            fh = source = open(text, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise InputError(f"{label}: no such file.") from None
        except PermissionError:
            raise InputError(f"{label}: permission denied; make it readable (chmod a+r) or remove it.") from None
    else:
        raise InputError(f"{name or 'image'}: expected encoded bytes or a file path, got {type(data).__name__}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise InputError(_too_large(label, f"{w}x{h} = {w * h:,} pixels"))
                im.load()
                return to_rgb_uint8(ImageOps.exif_transpose(im), name=label)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{label}: not an image Pillow can read; check the file type.") from None
    except Image.DecompressionBombError as exc:  # over twice the limit: Pillow refuses it in open()
        m = re.search(r"\((\d+) pixels\)", str(exc))
        raise InputError(_too_large(label, f"{int(m.group(1)):,} pixels" if m else str(exc))) from None
    except PermissionError:
        raise InputError(f"{label}: permission denied; make it readable (chmod a+r) or remove it.") from None
    except (OSError, SyntaxError, EOFError) as exc:  # truncated / corrupt data
        raise InputError(f"{label}: unreadable image ({exc}); the file is truncated or corrupt.") from None
    except ValueError as exc:
        msg = str(exc)
        raise InputError(msg if msg.startswith(label) else f"{label}: {msg}") from None
    finally:
        if fh is not None:
            fh.close()


def _too_large(label: str, size: str) -> str:
    return (
        f"{label}: image too large ({size}; the limit is {MAX_IMAGE_PIXELS:,} pixels, "
        "factory.layout.MAX_IMAGE_PIXELS: a decompression bomb?); downscale it or remove it."
    )


# ---------------------------------------------------------------- reading cells exactly


class CellError(InputError):
    """A cell whose value cannot be read exactly: names the column, the value and the fix (the
    source adds the row)."""

    def __init__(self, column: str, value: Any, problem: str, fix: str | None = None):
        self.column, self.value = column, value
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        super().__init__(f"column {column!r}: {shown} {problem}" + (f"; {fix}" if fix else ""))


def _kind(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def read_text(value: Any, column: str) -> str | None:
    """A cell as text, exactly: ``None`` stays ``None``; UTF-8 bytes are decoded; an integer (or an
    integral float, as pandas stores integers next to missing values) is written in digits, another
    finite float by ``repr``. NaN, infinities, booleans, lists, mappings and bytes that are not
    UTF-8 raise :class:`CellError`."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CellError(column, bytes(value), f"is not UTF-8 text (byte {exc.start})",
                            "re-encode the data as UTF-8") from None
    if isinstance(value, (bool, np.bool_)):
        raise CellError(column, value, "is a boolean, not text", "store it as text")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            raise CellError(column, value, "is NaN (a missing value?)", "fill the cell or drop the row")
        if not math.isfinite(v):
            raise CellError(column, value, "is infinite", "fill the cell with a real value or drop the row")
        return str(int(v)) if v.is_integer() else repr(v)
    raise CellError(column, value, f"is {_kind(value)}, not a single value",
                    "map this target to a column holding one value per row")


def read_choices(value: Any, column: str) -> tuple[list[str], bool]:
    """The options of a cell and whether the cell was an explicit empty list. A list (or array)
    of texts; text holding a JSON or Python list literal (``["a", "b"]``, as CSV files store
    lists). Any other text, an empty or missing option, or another type raises :class:`CellError`."""
    if value is None:
        return [], False
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes, bytearray)):
        text = read_text(value, column) or ""
        if not text.strip():
            return [], False
        parsed: Any = None
        if text.lstrip().startswith(("[", "(")):
            try:
                parsed = json.loads(text)
            except ValueError:
                try:
                    parsed = ast.literal_eval(text)
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    parsed = None
        if not isinstance(parsed, (list, tuple)):
            raise CellError(column, value, "is text, not a list of options",
                            'map choices to a list column, or store the options as a list like ["a", "b"]')
        value = parsed
    if not isinstance(value, (list, tuple)):
        raise CellError(column, value, f"is {_kind(value)}, not a list of options", "map choices to a list column")
    out = []
    for k, item in enumerate(value):
        text = read_text(item, f"{column}[{k}]")
        if text is None or not text.strip():
            raise CellError(column, value, f"has an empty option (option {k})", "fill it or drop the row")
        out.append(text)
    return out, not out


def _index(value: Any, column: str, n: int) -> int:
    """An option index from a number or a digit string; out of range raises :class:`CellError`."""
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            raise CellError(column, value, "is NaN (a missing label?)", "fill the label or drop the row")
        if not v.is_integer():
            raise CellError(column, value, "is not a whole number, so not an option index")
        idx = int(v)
    else:
        idx = int(value)
    if not 0 <= idx < n:
        raise CellError(column, value, f"is out of range: the row has {n} choices (indices 0..{n - 1})",
                        "check the label, or whether it counts from 1")
    return idx


def read_answer(
    raw: Any, text: Any, choices: list[str], empty_choices: bool, columns: Mapping[str, str]
) -> tuple[str, str]:
    """``(answer, answer_text)`` of a row, read exactly (see docs/dataset.md, "Column mapping").

    With choices: ``raw`` is an option index (an integer, an integral float, a digit string) or an
    option's text, ``text`` an option's text; both, when given, must agree. Without choices it is
    an open question: the answer is ``raw`` (else ``text``) as text. ``("", "")`` when both cells are
    empty (an unlabelled row). Anything that cannot be read exactly raises :class:`CellError`."""
    ca, ct = columns["answer"], columns["answer_text"]
    for value, col in ((raw, ca), (text, ct)):
        if isinstance(value, (list, tuple, np.ndarray, Mapping)):
            raise CellError(col, value, f"is {_kind(value)}, not one answer",
                            "map answer to a column of single answers (lists of accepted answers go to "
                            "direct_answers)")
        if isinstance(value, (bool, np.bool_)):
            raise CellError(col, value, "is a boolean, not an answer", "store the answer as text or an option index")
    words = read_text(text, ct)
    if choices:
        n = len(choices)
        stripped = [c.strip() for c in choices]
        idx: int | None = None
        if raw is not None:
            if isinstance(raw, (int, np.integer, float, np.floating)):
                idx = _index(raw, ca, n)
            else:
                s = (read_text(raw, ca) or "").strip()
                if re.fullmatch(r"[+-]?\d+", s):
                    idx = _index(int(s), ca, n)
                    if s in stripped and stripped.index(s) != idx:
                        raise CellError(ca, raw, f"is both option index {idx} ({choices[idx]!r}) and the text of "
                                        f"option {stripped.index(s)}", "map answer_text=COL to say which is meant")
                elif s in stripped:
                    idx = stripped.index(s)
                else:
                    raise CellError(ca, raw, f"is neither an option index (0..{n - 1}) nor one of the choices "
                                    f"{choices!r:.120}")
        if words is not None:
            w = words.strip()
            if w not in stripped:
                raise CellError(ct, text, f"is not one of the choices {choices!r:.120}")
            if idx is None:
                idx = stripped.index(w)
            elif stripped[idx] != w:
                raise CellError(ct, text, f"disagrees with {ca!r}, which names option {idx} ({choices[idx]!r})")
        if idx is None:
            return "", ""
        return str(idx), choices[idx]
    if empty_choices and isinstance(raw, (int, np.integer, float, np.floating)):
        raise CellError(ca, raw, "is an option index, but the row's choices are empty",
                        "give the choices, or store an open question's answer as text")
    answer = read_text(raw, ca)
    if answer is None:
        answer = words
    if answer is None:
        return "", ""
    return answer, words if words is not None else answer


@dataclass
class Sample:
    """One question about one image, as a source yields it."""

    id: str
    """Stable ``<source>:<source id>``."""
    question: str
    choices: list[str]
    """The options of a multiple-choice question; empty for an open question."""
    answer: str
    """The option index (as a string) for multiple choice, else the answer text; ``""`` if unknown."""
    answer_text: str
    """The answer in words (``choices[int(answer)]`` for multiple choice)."""
    image: Any = field(repr=False)
    """A PIL image, an array, encoded bytes, an HF ``{"bytes", "path"}`` dict, a file path, or a
    picklable zero-argument callable returning one of these (decoded lazily by ``load_image``)."""
    split: str = "train"
    direct_answers: list[str] = field(default_factory=list)
    """Free-form reference answers (A-OKVQA's ten annotator answers); empty when unknown."""
    error: str | None = None
    """Why the source row could not be read exactly (a cell naming its row, column and value, a
    duplicate id); the build records it and skips the sample."""

    def load_image(self) -> np.ndarray:
        """Decode the image to RGB uint8 (EXIF orientation applied; :func:`decode_image`, with the
        one pixel limit); ``ValueError`` naming the sample on any problem (empty, truncated, not an
        image, too large, unsupported mode, missing or unreadable file, a URL)."""
        from factory.degrade import to_rgb_uint8

        img = self.image
        try:
            if callable(img):
                img = img()
            if isinstance(img, Mapping):
                img = img.get("bytes") or img.get("path")
            if isinstance(img, (bytes, bytearray, memoryview, str, os.PathLike)):
                return decode_image(img, name=self.id if isinstance(img, (bytes, bytearray, memoryview)) else None)
            if img is None:
                raise ValueError("the row has no image")
            return to_rgb_uint8(img, name=self.id)
        except ValueError as exc:
            msg = str(exc)
            raise InputError(msg if msg.startswith(self.id) else f"{self.id}: {msg}") from None


def normalize_split(split: str) -> str:
    """``val``/``dev``/``eval`` → ``validation``; other names are kept. The factory's own split
    names (train / validation); a dataset's declared split names are never rewritten with it
    (:func:`load_table`)."""
    return _SPLIT_ALIASES.get(split, split)


# ---------------------------------------------------------------- the bundled demo set


def demo_rows() -> list[dict[str, Any]]:
    """The bundled QA set: ``{"id", "photo", "question", "choices", "answer", "split"}`` rows."""
    from importlib import resources

    text = resources.files("factory").joinpath("assets/demo_qa.jsonl").read_text(encoding="utf-8")
    return [json.loads(x) for x in text.splitlines() if x.strip()]


class DemoSource:
    """The bundled photos (``factory.photos``: RGB, grayscale and RGBA) + the demo QA set; offline."""

    name = "demo"

    def __init__(self, split: str = "train"):
        split = normalize_split(split)
        if split not in SPLITS:
            raise ValueError(f"demo source: split {split!r} does not exist; use train or validation.")
        self.split = split
        self._rows = [r for r in demo_rows() if r["split"] == split]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Sample]:
        from factory.photos import photo

        for r in self._rows:
            idx = int(r["answer"])
            yield Sample(
                id=f"demo:{r['id']}",
                question=r["question"],
                choices=list(r["choices"]),
                answer=str(idx),
                answer_text=r["choices"][idx],
                image=photo(r["photo"]),
                split=self.split,
            )

    def describe(self) -> dict[str, Any]:
        return {"name": "demo", "dataset": "scikit-image photos + factory/assets/demo_qa.jsonl", "split": self.split}


# ---------------------------------------------------------------- loading through `datasets`


def _split_of(path: Path) -> str | None:
    """The split a data file's name or folder says it holds (``train``, ``validation``, ``test``)."""
    for part in reversed(path.parts):
        for tok in re.split(r"[^a-z]+", part.lower()):
            tok = normalize_split(tok)
            if tok in ("train", "validation", "test"):
                return tok
    return None


def _local_data_files(folder: Path) -> tuple[str, dict[str, list[str]]] | None:
    """Tabular files under ``folder`` grouped by split (None for an imagefolder or no table)."""
    if any((folder / f"metadata{ext}").is_file() for ext in (".jsonl", ".csv", ".parquet")):
        return None  # an HF imagefolder: `datasets` pairs the images with metadata itself
    for ext in (".parquet", ".jsonl", ".json", ".csv"):
        found = folder.rglob(f"*{ext}")
        files = sorted(p for p in found if not any(x.startswith(".") for x in p.relative_to(folder).parts))
        if files:
            groups: dict[str, list[str]] = {}
            for f in files:
                groups.setdefault(_split_of(f.relative_to(folder)) or "train", []).append(str(f))
            return _TABULAR[ext], groups
    return None


def _check_exists(spec: str) -> None:
    """A spec that can only be a local path (not ``owner/name``) must exist."""
    p = Path(spec).expanduser()
    looks_local = p.is_absolute() or spec.startswith((".", "~")) or spec.count("/") > 1 or bool(p.suffix)
    if looks_local and not p.exists():
        raise ValueError(
            f"{spec}: no such file or folder; pass demo, aokvqa, a Hub repo id (owner/name), a local folder, "
            "or a .parquet/.jsonl/.csv file."
        )


def source_splits(spec: Any) -> list[str]:
    """The splits a source spec offers (without loading the data where possible)."""
    if not isinstance(spec, str):
        if callable(spec) and not hasattr(spec, "describe"):
            return list(SPLITS)  # a factory ``split -> source``: try both
        return [getattr(spec, "split", "train")]
    if spec == "demo":
        return list(SPLITS)
    _check_exists(spec)
    p = Path(spec)
    if p.is_file():
        return ["train"]
    if p.is_dir() and not hub_layout(p):
        found = _local_data_files(p)
        if found is not None:
            return sorted(found[1])
    from datasets import load_dataset_builder

    try:
        builder = load_dataset_builder(AOKVQA_REPO if spec == "aokvqa" else str(p) if p.is_dir() else spec)
        return [str(s) for s in (builder.config.data_files or {})]
    except Exception as exc:  # noqa: BLE001 - offline, no such repo, ...
        raise ValueError(f"{spec}: cannot list its splits ({type(exc).__name__}: {exc}).") from None


class UnknownSplitError(ValueError):
    """A split the dataset does not declare; ``available`` lists the ones it does."""

    def __init__(self, message: str, *, split: str, available: list[str]):
        super().__init__(message)
        self.split = split
        self.available = available


def hub_layout(folder: Path) -> bool:
    """Whether a local folder is a copy of a Hub dataset repository whose README declares its
    layout (YAML ``configs`` or ``dataset_info``): it is then read exactly as the Hub reads it."""
    readme = folder / "README.md"
    if not readme.is_file():
        return False
    text = readme.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return False
    head = text[3:].split("\n---", 1)[0]
    return bool(re.search(r"^(configs|dataset_info)\s*:", head, re.MULTILINE))


_UNKNOWN_SPLIT_RE = re.compile(r"Unknown split \"?([^\"]*)\"?\.\s*Should be one of (\[.*?\])")


def _split_error(spec: str, split: str, exc: Exception, config: str | None) -> UnknownSplitError | None:
    """The clear error for a split the dataset does not declare (``None`` for other errors)."""
    import ast

    m = _UNKNOWN_SPLIT_RE.search(str(exc))
    if not m:
        return None
    try:
        available = [str(x) for x in ast.literal_eval(m.group(2))]
    except (ValueError, SyntaxError):
        available = []
    where = f" (configuration {config!r})" if config else ""
    return UnknownSplitError(
        f"{spec}: no split {split!r}{where}; the dataset declares {', '.join(map(repr, available)) or 'none'}. "
        "Split names are used exactly as the dataset declares them: pass --split with one of these.",
        split=split,
        available=available,
    )


def load_table(spec: str, split: str, *, config: str | None = None, data_files: Any = None):
    """A ``datasets.Dataset`` for one split of a Hub repo, a local folder, or a parquet/jsonl/csv
    file, with image columns left undecoded (``{"bytes", "path"}``: decoded per sample later).

    The split name is used exactly as the dataset declares it (``val`` stays ``val``); a split it
    does not declare raises :class:`UnknownSplitError` listing the ones it does. A local folder
    whose README declares configs (a copy of a Hub repository) is read exactly like the Hub repo;
    in any other folder, file names containing train / validation (or val, dev) / test choose the
    split (there ``val`` and ``validation`` name the same files).

    ``config`` (a Hub dataset's configuration name) and ``data_files`` (files inside a Hub repo,
    e.g. ``{"test": "mmmb/mmmb_en.tsv"}``) are passed to ``datasets.load_dataset`` for Hub repos."""
    from datasets import Image as HFImage
    from datasets import load_dataset

    _check_exists(spec)
    p = Path(spec)
    try:
        if p.is_file():
            kind = _TABULAR.get(p.suffix.lower())
            if kind is None:
                raise ValueError(f"{spec}: unsupported file type {p.suffix!r}; use .parquet, .jsonl, .json or .csv.")
            if normalize_split(split) != "train":
                raise ValueError(
                    f"{spec}: a single file is the train split; for a {split} split pass a folder holding "
                    f"train and {split} files (e.g. train.parquet and {split}.parquet), or build --split train."
                )
            ds = load_dataset(kind, data_files={"train": str(p)}, split="train")
        elif p.is_dir() and not hub_layout(p) and (found := _local_data_files(p)) is not None:
            kind, groups = found
            key = split if split in groups else normalize_split(split)
            if key not in groups:
                raise UnknownSplitError(
                    f"{spec}: no {split} files (found splits: {', '.join(sorted(groups))}); file names "
                    "containing train / validation (or val, dev) / test choose the split.",
                    split=split,
                    available=sorted(groups),
                )
            ds = load_dataset(kind, data_files={key: groups[key]}, split=key)
        else:
            extra: dict[str, Any] = {}
            if config:
                extra["name"] = config
            if data_files:
                extra["data_files"] = data_files
            ds = load_dataset(str(p) if p.is_dir() else spec, split=split, **extra)
    except UnknownSplitError:
        raise
    except ValueError as exc:
        known = _split_error(spec, split, exc, config)
        if known is not None:
            raise known from None
        msg = str(exc)
        raise ValueError(msg if msg.startswith(spec) else f"{spec}: cannot load split {split!r}: {msg}") from None
    except Exception as exc:  # noqa: BLE001 - not found, offline, bad files: one clear message
        known = _split_error(spec, split, exc, config)
        if known is not None:
            raise known from None
        where = "local path" if p.exists() else "Hub repo id (needs the network, and HF_TOKEN for gated data)"
        raise ValueError(
            f"{spec}: cannot load split {split!r} as a {where} ({type(exc).__name__}: {exc}). Pass demo, "
            "aokvqa, a Hub repo id, a local folder, or a .parquet/.jsonl/.csv file; check --split."
        ) from None
    for col, feat in ds.features.items():
        if isinstance(feat, HFImage) and feat.decode:
            ds = ds.cast_column(col, HFImage(decode=False))
    return ds


def _resolve_image(value: Any, base: Path | None) -> Any:
    """An image cell → something :meth:`Sample.load_image` reads (relative paths resolved; a URL
    is kept as it is, and refused with a clear message when the image is loaded)."""
    if isinstance(value, Mapping) and not value.get("bytes") and value.get("path"):
        value = value["path"]
    if isinstance(value, str) and base is not None and not _URL_RE.match(value) and not Path(value).is_absolute():
        return str(base / value)
    return value


def _answers(value: Any, column: str = "direct_answers") -> list[str]:
    """Free-form answers of a cell: a list of texts, text holding a JSON list, or one text."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, bytes, bytearray)):
        text = read_text(value, column) or ""
        try:
            parsed = json.loads(text)
        except ValueError:
            return [text] if text else []
        value = parsed if isinstance(parsed, list) else [text]
    if not isinstance(value, (list, tuple)):
        raise CellError(column, value, f"is {_kind(value)}, not a list of answers", "map it to a list column")
    out = []
    for k, a in enumerate(value):
        t = read_text(a, f"{column}[{k}]")
        if t is not None:
            out.append(t)
    return out


class _IdCheck:
    """Remembers the ids a source yielded; a repeated id is an error of the later row."""

    def __init__(self) -> None:
        self.first: dict[str, int] = {}

    def problem(self, sample_id: str, row: int) -> str | None:
        first = self.first.setdefault(sample_id, row)
        if first == row:
            return None
        return (f"duplicate id {sample_id!r} (first at row {first}); only the first row is used: "
                "map a unique id column with --columns id=COL")


def _bad_row(spec: str, tag: str, row: int, split: str, exc: CellError, sample_id: str | None = None) -> Sample:
    """The stand-in of a row that cannot be read exactly: recorded by the build, never written."""
    return Sample(id=sample_id or f"{tag}:{row}", question="", choices=[], answer="", answer_text="", image=None,
                  split=split, error=f"{spec} row {row}, {exc}")


def _base_dir(spec: str) -> Path | None:
    p = Path(spec)
    return p.parent if p.is_file() else p if p.is_dir() else None


def _read_rows(
    spec: str,
    tag: str,
    split: str,
    rows: Iterable[dict[str, Any]],
    sample_id: Callable[[int, dict[str, Any]], str],
    sample: Callable[[dict[str, Any], str], Sample],
) -> Iterator[Sample]:
    """Rows -> samples. ``sample_id(i, row)`` then ``sample(row, sid)`` read a row; a
    :class:`CellError` yields an error sample naming the row, and a repeated id marks the later row."""
    ids = _IdCheck()
    for i, row in enumerate(rows):
        sid = None
        try:
            sid = sample_id(i, row)
            out = sample(row, sid)
        except CellError as exc:
            if sid is not None:
                ids.problem(sid, i)  # a later row with this id is still a duplicate
            yield _bad_row(spec, tag, i, split, exc, sid)
            continue
        dup = ids.problem(out.id, i)
        if dup:
            out.error = f"{spec} row {i}: {dup}"
        yield out


class AOKVQASource:
    """A-OKVQA: multiple choice (``answer`` = ``str(correct_choice_idx)``, ``answer_text`` =
    ``choices[idx]``); ``direct_answers`` kept for the open-answer score. The test split has no
    labels: its samples get ``answer == ""`` (the build records them as errors)."""

    name = "aokvqa"

    def __init__(self, name_or_path: str = AOKVQA_REPO, split: str = "train", *, table: Any = None):
        self.spec, self.split = name_or_path, normalize_split(split)
        self.ds = load_table(name_or_path, self.split) if table is None else table
        missing = [c for c in AOKVQA_COLUMNS if c not in self.ds.column_names]
        if missing:
            raise ValueError(
                f"{name_or_path}: not in the A-OKVQA schema (missing {missing}; available columns: "
                f"{self.ds.column_names}). Map your columns instead: {_COLUMNS_HELP}."
            )
        self._base = _base_dir(name_or_path)

    def __len__(self) -> int:
        return len(self.ds)

    def __iter__(self) -> Iterator[Sample]:
        return _read_rows(self.spec, "aokvqa", self.split, self.ds, self._sample_id, self._sample)

    @staticmethod
    def _sample_id(i: int, row: dict[str, Any]) -> str:
        qid = read_text(row["question_id"], "question_id")
        return f"aokvqa:{i if qid is None else qid}"

    def _sample(self, row: dict[str, Any], sid: str) -> Sample:
        choices, empty = read_choices(row["choices"], "choices")
        columns = {"answer": "correct_choice_idx", "answer_text": "correct_choice_idx"}
        answer, text = read_answer(row["correct_choice_idx"], None, choices, empty, columns)
        return Sample(
            id=sid,
            question=read_text(row["question"], "question") or "",
            choices=choices,
            answer=answer,
            answer_text=text,
            image=_resolve_image(row["image"], self._base),
            split=self.split,
            direct_answers=_answers(row.get("direct_answers")),
        )

    def describe(self) -> dict[str, Any]:
        return {"name": "aokvqa", "dataset": self.spec, "split": self.split}


def parse_columns(text: str | Mapping[str, str] | None, targets: tuple[str, ...] = TARGETS) -> dict[str, str]:
    """``"image=img,question=q"`` → ``{"image": "img", "question": "q"}`` (TARGET=SOURCE; every
    TARGET must be one of ``targets``)."""
    if isinstance(text, Mapping):
        items = [f"{k}={v}" for k, v in text.items()]
    else:
        items = (text or "").split(",")
    out: dict[str, str] = {}
    for item in items:
        if not item.strip():
            continue
        if "=" not in item:
            raise ConfigError("columns", "expected TARGET=SOURCE pairs, e.g. image=img,question=q.", value=item.strip())
        k, v = (x.strip() for x in item.split("=", 1))
        if k not in targets:
            raise ConfigError("columns", f"unknown target {k!r}; targets are {', '.join(targets)}.", value=item.strip())
        if not v:
            raise ConfigError("columns", "name the source column after '='.", value=item.strip())
        out[k] = v
    return out


class ColumnMappedSource:
    """Any dataset whose columns map onto ``image, question, choices, answer, ...``.

    Unmapped targets default to a column of the same name. The image column may hold encoded
    bytes, an HF Image struct, a PIL image, an array, or a path (relative to the data file's
    folder). ``answer`` may be an option index, an option's text, or (open questions) the answer.
    """

    name = "mapped"

    def __init__(
        self,
        path_or_repo: str,
        split: str = "train",
        columns: Mapping[str, str] | str | None = None,
        *,
        table: Any = None,
    ):
        self.spec, self.split = path_or_repo, normalize_split(split)
        self.ds = load_table(path_or_repo, self.split) if table is None else table
        cols = self.ds.column_names
        given = parse_columns(columns)
        self.columns = {t: given.get(t, t) for t in TARGETS}
        bad = [f"{t}={c}" for t, c in given.items() if c not in cols]
        missing = [f"{t} (column {self.columns[t]!r})" for t in ("image", "question") if self.columns[t] not in cols]
        if self.columns["answer"] not in cols and self.columns["answer_text"] not in cols:
            missing.append(f"answer (column {self.columns['answer']!r}) or answer_text")
        if bad or missing:
            what = f"mapped columns not found: {', '.join(bad)}" if bad else f"missing {', '.join(missing)}"
            raise ValueError(f"{path_or_repo}: {what}; available columns: {cols}. Map them with {_COLUMNS_HELP}.")
        self._base = _base_dir(path_or_repo)
        p = Path(path_or_repo)
        self._tag = (p.stem if p.is_file() else p.name) if p.exists() else path_or_repo.rstrip("/").split("/")[-1]

    def __len__(self) -> int:
        return len(self.ds)

    def __iter__(self) -> Iterator[Sample]:
        """One :class:`Sample` per row, every cell read exactly (:func:`read_text`,
        :func:`read_choices`, :func:`read_answer`). A row that cannot be (a NaN label, an index out
        of range, options that are not a list, bytes that are not UTF-8, a repeated id, ...) yields
        a sample whose ``error`` names the row, the column, the value and the fix."""
        return _read_rows(self.spec, self._tag, self.split, self.ds, self._sample_id, self._sample)

    def _sample_id(self, i: int, row: dict[str, Any]) -> str:
        raw_id = read_text(row.get(self.columns["id"]), self.columns["id"])
        return f"{self._tag}:{i if raw_id is None else raw_id}"

    def _sample(self, row: dict[str, Any], sid: str) -> Sample:
        c = self.columns
        choices, empty = read_choices(row.get(c["choices"]), c["choices"])
        answer, answer_text = read_answer(row.get(c["answer"]), row.get(c["answer_text"]), choices, empty, c)
        return Sample(
            id=sid,
            question=read_text(row.get(c["question"]), c["question"]) or "",
            choices=choices,
            answer=answer,
            answer_text=answer_text,
            image=_resolve_image(row.get(c["image"]), self._base),
            split=self.split,
            direct_answers=_answers(row.get(c["direct_answers"]), c["direct_answers"]),
        )

    def describe(self) -> dict[str, Any]:
        return {"name": "mapped", "dataset": self.spec, "split": self.split, "columns": self.columns}


def open_source(spec: Any = "demo", split: str = "train", columns: Mapping[str, str] | str | None = None):
    """Resolve ``demo`` | ``aokvqa`` | a local path | a Hub repo id (+ optional column mapping).

    Without a mapping, data in the A-OKVQA schema is read as A-OKVQA, anything else with the
    default column names (``image, question, choices, answer, ...``). A source object (anything
    yielding :class:`Sample` with ``len()`` and ``describe()``) is returned as is; a callable is
    called with the split (``lambda split: MySource(split)``).
    """
    if callable(spec) and not isinstance(spec, str):
        return spec(split)
    if not isinstance(spec, str):
        if hasattr(spec, "__iter__") and hasattr(spec, "describe"):
            return spec
        raise ValueError(f"source {spec!r}: pass demo, aokvqa, a path, a Hub repo id, or a source object.")
    columns = parse_columns(columns) or None
    if spec == "demo":
        if columns:
            raise ValueError("--columns maps the columns of a dataset; the demo source needs none (drop --columns).")
        return DemoSource(split)
    if spec == "aokvqa":
        return ColumnMappedSource(AOKVQA_REPO, split, columns) if columns else AOKVQASource(AOKVQA_REPO, split)
    if columns:
        return ColumnMappedSource(spec, split, columns)
    table = load_table(spec, split)  # load once, then decide the schema
    if all(c in table.column_names for c in AOKVQA_COLUMNS):
        return AOKVQASource(spec, split, table=table)
    return ColumnMappedSource(spec, split, None, table=table)

