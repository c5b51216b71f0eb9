"""QA sources: the bundled demo set, A-OKVQA, and any HF dataset or local files by column mapping.

Every source yields :class:`Sample` objects in a fixed order. Images are decoded lazily, one
sample at a time (``Sample.load_image``), so a bad image fails that sample only.

* ``demo``: the real photos scikit-image ships with a small multiple-choice QA set written for
  them (``factory/assets/demo_qa.jsonl``: 32 questions, 26 train / 6 validation). The default.
* ``aokvqa``: A-OKVQA (``HuggingFaceM4/A-OKVQA`` on the Hub) through ``datasets.load_dataset``;
  columns ``image, question_id, question, choices, correct_choice_idx, direct_answers,
  rationales``. A local folder or parquet/jsonl file in that schema loads the same way.
* any other dataset (Hub repo id, local parquet / jsonl, a folder of them) through a column
  mapping ``--columns image=img,question=q,choices=options,answer=label,id=qid``.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

AOKVQA_REPO = "HuggingFaceM4/A-OKVQA"
AOKVQA_COLUMNS = ("image", "question_id", "question", "choices", "correct_choice_idx", "direct_answers")
TARGETS = ("id", "image", "question", "choices", "answer", "answer_text", "direct_answers")
"""What a column mapping can fill; ``image`` and ``question`` are required, plus ``answer`` or
``answer_text``."""


@dataclass
class Sample:
    id: str
    """Stable ``<source>:<source id>``."""
    question: str
    choices: list[str]
    answer: str
    """The option index (as a string) for multiple choice, else the answer text."""
    answer_text: str
    image: Any = field(repr=False)
    """PIL image, array, encoded bytes, an HF ``{"bytes", "path"}`` dict or a file path."""
    split: str = "train"
    direct_answers: list[str] = field(default_factory=list)

    def load_image(self) -> np.ndarray:
        """Decode the image to RGB uint8; ValueError naming the sample on any problem."""
        from PIL import Image, UnidentifiedImageError

        from factory.degrade import load_image, to_rgb_uint8

        img = self.image
        try:
            if isinstance(img, Mapping):
                img = img.get("bytes") or img.get("path")
            if isinstance(img, (bytes, bytearray)):
                if not img:
                    raise ValueError("image bytes are empty")
                with Image.open(io.BytesIO(img)) as im:
                    im.load()
                    return to_rgb_uint8(im, name=self.id)
            if isinstance(img, (str, Path)):
                return load_image(img)
            if img is None:
                raise ValueError("no image")
            return to_rgb_uint8(img, name=self.id)
        except UnidentifiedImageError:
            raise ValueError(f"{self.id}: not an image Pillow can read") from None
        except (OSError, SyntaxError) as exc:
            raise ValueError(f"{self.id}: unreadable image ({exc})") from None
        except ValueError as exc:
            msg = str(exc)
            raise ValueError(msg if msg.startswith(self.id) else f"{self.id}: {msg}") from None


class DemoSource:
    """The bundled photos + QA set (offline)."""

    name = "demo"

    def __init__(self, split: str = "train"):
        from importlib import resources

        self.split = split
        text = resources.files("factory").joinpath("assets/demo_qa.jsonl").read_text(encoding="utf-8")
        self._rows = [r for r in (json.loads(x) for x in text.splitlines() if x.strip()) if r["split"] == split]

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
        return {"name": "demo", "description": "scikit-image photos + bundled multiple-choice QA", "split": self.split}


def _load_hf(spec: str, split: str):
    """``datasets`` loading of a Hub repo, a local folder, or a parquet/jsonl file."""
    from datasets import Image as HFImage
    from datasets import load_dataset

    p = Path(spec)
    try:
        if p.is_file():
            kind = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}.get(p.suffix.lower())
            if kind is None:
                raise ValueError(f"{spec}: unsupported file type {p.suffix!r}; use .parquet, .jsonl or .csv.")
            ds = load_dataset(kind, data_files={split: str(p)}, split=split)
        else:
            ds = load_dataset(spec, split=split)
    except (FileNotFoundError, ConnectionError) as exc:
        raise ValueError(
            f"{spec}: cannot load split {split!r} ({exc}). Pass a Hub repo id, a local folder, or a "
            ".parquet/.jsonl file; check the split name (--split)."
        ) from None
    except ValueError as exc:
        raise ValueError(f"{spec}: cannot load split {split!r}: {exc}") from None
    # Decode images ourselves, one sample at a time, so a bad image fails only its sample.
    for col, feat in ds.features.items():
        if isinstance(feat, HFImage):
            ds = ds.cast_column(col, HFImage(decode=False))
    return ds


class AOKVQASource:
    """A-OKVQA (multiple choice; ``direct_answers`` kept for the open-answer soft score)."""

    name = "aokvqa"

    def __init__(self, spec: str = AOKVQA_REPO, split: str = "train"):
        self.spec, self.split = spec, split
        self.ds = _load_hf(spec, split)
        missing = [c for c in AOKVQA_COLUMNS if c not in self.ds.column_names]
        if missing:
            raise ValueError(
                f"{spec}: not in the A-OKVQA schema (missing {missing}; columns are {self.ds.column_names}). "
                "Use --columns image=...,question=...,choices=...,answer=... to map your columns."
            )
        self._base = Path(spec).parent if Path(spec).is_file() else Path(spec)

    def __len__(self) -> int:
        return len(self.ds)

    def __iter__(self) -> Iterator[Sample]:
        for row in self.ds:
            choices = [str(c) for c in row["choices"]]
            idx = row["correct_choice_idx"]
            if idx is None or not 0 <= int(idx) < len(choices):  # the test split has no labels
                answer, text = "", ""
            else:
                answer, text = str(int(idx)), choices[int(idx)]
            yield Sample(
                id=f"aokvqa:{row['question_id']}",
                question=str(row["question"]),
                choices=choices,
                answer=answer,
                answer_text=text,
                image=_resolve_image(row["image"], self._base),
                split=self.split,
                direct_answers=[str(a) for a in (row.get("direct_answers") or [])],
            )

    def describe(self) -> dict[str, Any]:
        return {"name": "aokvqa", "dataset": self.spec, "split": self.split}


def _resolve_image(value: Any, base: Path) -> Any:
    if isinstance(value, Mapping) and not value.get("bytes") and value.get("path"):
        value = value["path"]
    if isinstance(value, str) and not Path(value).is_absolute() and base.is_dir():
        cand = base / value
        return str(cand) if cand.exists() else value
    return value


def parse_columns(text: str | None) -> dict[str, str]:
    """``"image=img,question=q"`` → ``{"image": "img", "question": "q"}`` (target=source)."""
    out: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise ValueError(f"--columns {item!r}: expected TARGET=SOURCE, e.g. --columns image=img,question=q.")
        k, v = (x.strip() for x in item.split("=", 1))
        if k not in TARGETS:
            raise ValueError(f"--columns {k!r}: unknown target; targets are {', '.join(TARGETS)}.")
        out[k] = v
    return out


class ColumnMappedSource:
    """Any dataset whose columns map onto ``image, question, choices, answer, ...``."""

    name = "mapped"

    def __init__(self, spec: str, split: str = "train", columns: Mapping[str, str] | None = None):
        self.spec, self.split = spec, split
        self.ds = _load_hf(spec, split)
        cols = self.ds.column_names
        self.columns = {t: (columns or {}).get(t, t) for t in TARGETS}
        required = ["image", "question"]
        missing = [f"{t} (column {self.columns[t]!r})" for t in required if self.columns[t] not in cols]
        if self.columns["answer"] not in cols and self.columns["answer_text"] not in cols:
            missing.append(f"answer (column {self.columns['answer']!r}) or answer_text")
        if missing:
            raise ValueError(
                f"{spec}: missing {', '.join(missing)}; available columns: {cols}. "
                "Map them with --columns image=COL,question=COL,choices=COL,answer=COL[,id=COL]."
            )
        self._base = Path(spec).parent if Path(spec).is_file() else Path(spec)
        self._tag = Path(spec).stem if Path(spec).exists() else spec.split("/")[-1]

    def __len__(self) -> int:
        return len(self.ds)

    def __iter__(self) -> Iterator[Sample]:
        c = self.columns
        for i, row in enumerate(self.ds):
            choices = [str(x) for x in (row.get(c["choices"]) or [])]
            raw = row.get(c["answer"])
            text = row.get(c["answer_text"])
            if choices:
                if isinstance(raw, (int, np.integer)) or (isinstance(raw, str) and raw.strip().isdigit()):
                    idx = int(raw)
                elif raw is not None and str(raw) in choices:
                    idx = choices.index(str(raw))
                elif text is not None and str(text) in choices:
                    idx = choices.index(str(text))
                else:
                    idx = -1
                answer, answer_text = (str(idx), choices[idx]) if 0 <= idx < len(choices) else ("", "")
            else:
                answer = str(raw if raw is not None else text or "")
                answer_text = str(text if text is not None else answer)
            sid = row.get(c["id"], i)
            yield Sample(
                id=f"{self._tag}:{sid}",
                question=str(row.get(c["question"]) or ""),
                choices=choices,
                answer=answer,
                answer_text=answer_text,
                image=_resolve_image(row.get(c["image"]), self._base),
                split=self.split,
                direct_answers=[str(a) for a in (row.get(c["direct_answers"]) or [])],
            )

    def describe(self) -> dict[str, Any]:
        return {"name": "mapped", "dataset": self.spec, "split": self.split, "columns": self.columns}


def open_source(spec: str = "demo", split: str = "train", columns: Mapping[str, str] | str | None = None):
    """Resolve ``demo`` | ``aokvqa`` | a path | a Hub repo id (+ optional column mapping)."""
    if isinstance(columns, str):
        columns = parse_columns(columns)
    if spec == "demo":
        if split not in ("train", "validation"):
            raise ValueError(f"demo source: split {split!r} does not exist; use train or validation.")
        return DemoSource(split)
    if spec == "aokvqa":
        return AOKVQASource(AOKVQA_REPO, split) if not columns else ColumnMappedSource(AOKVQA_REPO, split, columns)
    if columns:
        return ColumnMappedSource(spec, split, columns)
    ds_cols = _load_hf(spec, split).column_names
    if all(c in ds_cols for c in AOKVQA_COLUMNS):
        return AOKVQASource(spec, split)
    return ColumnMappedSource(spec, split, None)
