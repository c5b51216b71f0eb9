"""Evaluation benchmarks: presets for the paper's multiple-choice layouts, and any dataset by mapping.

Every benchmark yields :class:`factory.sources.Sample` objects (``choices`` as a list, ``answer``
the 0-based option index as a string), so evaluation scores them with the rewards' answer
matching. Three layouts of the options are understood:

* ``list``: one column holds the options as a list (A-OKVQA, the factory's own datasets);
* ``columns``: one column per option, ``A, B, C, D, ...`` (MMBench and MMMB, VLMEvalKit TSVs);
  empty cells are dropped;
* ``inline``: the options are written in the question ("Options: A: x, B: y" as in MMStar, or
  one "A. x" per line as in RealWorldQA) and are split off it.

The answer may be an index (``index``), a letter (``letter``: A = 0), the option's text
(``text``) or any of these (``auto``). Images may be encoded bytes, HF image structs, paths, or
base64 text (VLMEvalKit TSVs).

::

    from trainers.eval.benchmarks import load_benchmark
    bench = load_benchmark("mmstar", limit=100)             # a preset (Hub, needs the network)
    bench = load_benchmark("my.parquet", columns="image=img,question=q,choices=opts,answer=label")
    for s in bench: s.question, s.choices, s.answer
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from factory.chains.answers import option_index
from factory.errors import ConfigError
from factory.sources import Sample, normalize_split

__all__ = [
    "ANSWER_FORMATS",
    "MAPPING_TARGETS",
    "OPTION_LAYOUTS",
    "PRESETS",
    "BadRow",
    "Benchmark",
    "BenchmarkSpec",
    "answer_index",
    "load_benchmark",
    "parse_mapping",
    "resolve_spec",
    "split_inline_options",
]

OPTION_LAYOUTS = ("list", "columns", "inline")
_ID_COLUMNS = ("id", "index", "question_id", "qid")
"""Where a question's id is looked for when the mapping names no ``id`` column (else the row number)."""
ANSWER_FORMATS = ("auto", "index", "letter", "text")


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark lives and how its rows read as multiple-choice questions."""

    name: str
    dataset: str
    """Hub repo id, local file or folder, or ``demo`` (the bundled validation photos)."""
    split: str = "validation"
    config: str | None = None
    """Hub configuration name (``datasets.load_dataset(dataset, config)``)."""
    data_files: Mapping[str, Any] | None = None
    """Files inside a Hub repo, e.g. ``{"test": "mmmb/mmmb_en.tsv"}``."""
    columns: Mapping[str, str] = field(default_factory=dict)
    """Target → source column: ``id, image, question, choices, answer, hint, direct_answers``."""
    options: str = "list"
    """``list``, ``columns`` or ``inline`` (see the module docstring)."""
    option_columns: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G", "H")
    answer: str = "auto"
    """``auto``, ``index``, ``letter`` or ``text``."""
    strip: tuple[str, ...] = ()
    """Regular expressions removed from the question (a benchmark's own answer instruction)."""
    about: str = ""

    def validate(self) -> None:
        """:class:`factory.errors.ConfigError` naming the field (``options``, ``answer``) when unusable."""
        if self.options not in OPTION_LAYOUTS:
            raise ConfigError("options", f"benchmark {self.name}: options layout {self.options!r}",
                              value=self.options, fix=f"use one of {', '.join(OPTION_LAYOUTS)}")
        if self.answer not in ANSWER_FORMATS:
            raise ConfigError("answer", f"benchmark {self.name}: answer format {self.answer!r}",
                              value=self.answer, fix=f"use one of {', '.join(ANSWER_FORMATS)}")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dataset": self.dataset,
            "split": self.split,
            "config": self.config,
            "data_files": dict(self.data_files) if self.data_files else None,
            "columns": dict(self.columns),
            "options": self.options,
            "answer": self.answer,
        }


_LETTER_ONLY = r"\s*Please answer directly with only the letter of the correct option and nothing else\.?\s*"

PRESETS: dict[str, BenchmarkSpec] = {
    "demo": BenchmarkSpec(
        "demo", "demo", "validation", about="the bundled photos' validation questions (offline; 8 questions)"
    ),
    "mmstar": BenchmarkSpec(
        "mmstar",
        "Lin-Chen/MMStar",
        "val",
        columns={"id": "index", "image": "image", "question": "question", "answer": "answer"},
        options="inline",
        answer="letter",
        about="MMStar (1,500 questions; options inline, answer letter)",
    ),
    "realworldqa": BenchmarkSpec(
        "realworldqa",
        "xai-org/RealworldQA",
        "test",
        columns={"image": "image", "question": "question", "answer": "answer"},
        options="inline",
        answer="auto",
        strip=(_LETTER_ONLY, r"\s*Please answer directly with a single word or number\.?\s*"),
        about="RealWorldQA (765 questions; options inline, a few open questions)",
    ),
    "mmbench": BenchmarkSpec(
        "mmbench",
        "lmms-lab/MMBench_EN",
        "dev",
        columns={"id": "index", "image": "image", "question": "question", "answer": "answer", "hint": "hint"},
        options="columns",
        answer="letter",
        about="MMBench (English dev; options in columns A-D, hint prepended)",
    ),
    "mmmb": BenchmarkSpec(
        "mmmb",
        "AIDC-AI/Parrot-dataset",
        "test",
        data_files={"test": "mmmb/mmmb_en.tsv"},
        columns={"id": "index", "image": "image", "question": "question", "answer": "answer", "hint": "hint"},
        options="columns",
        answer="letter",
        about="MMMB, English (the paper's MMMB; VLMEvalKit TSV with base64 images)",
    ),
    "aokvqa": BenchmarkSpec(
        "aokvqa",
        "HuggingFaceM4/A-OKVQA",
        "validation",
        columns={"id": "question_id", "image": "image", "question": "question", "choices": "choices",
                 "answer": "correct_choice_idx", "direct_answers": "direct_answers"},
        options="list",
        answer="index",
        about="A-OKVQA validation (1,145 questions; four options)",
    ),
}
"""The paper's benchmarks (MMMB, MMStar, RealWorldQA) plus MMBench, A-OKVQA val and the offline demo."""


MAPPING_TARGETS = ("id", "image", "question", "choices", "answer", "hint", "direct_answers")


def parse_mapping(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"image=img,question=q"`` → ``{"image": "img", "question": "q"}``; targets are checked."""
    from factory.sources import parse_columns

    return parse_columns(text, MAPPING_TARGETS)


def resolve_spec(
    benchmark: str,
    *,
    split: str | None = None,
    columns: str | Mapping[str, str] | None = None,
    options: str | None = None,
    answer: str | None = None,
    config: str | None = None,
) -> BenchmarkSpec:
    """A preset name (``mmstar``, ...) or a dataset (Hub id, local file or folder) plus overrides."""
    if benchmark in PRESETS:
        spec = PRESETS[benchmark]
    else:
        name = Path(benchmark).stem if Path(benchmark).exists() else benchmark.rstrip("/").split("/")[-1]
        spec = BenchmarkSpec(name, benchmark)
        if Path(benchmark).is_file():
            spec = replace(spec, split="train")  # a single file is one split (see factory.sources.load_table)
    changes: dict[str, Any] = {}
    if split:
        changes["split"] = split
    if columns:
        changes["columns"] = {**spec.columns, **parse_mapping(columns)}
    if options:
        layout, _, cols = options.partition(":")
        changes["options"] = layout
        if cols:
            changes["option_columns"] = tuple(c.strip() for c in cols.split("|") if c.strip())
    if answer:
        changes["answer"] = answer
    if config:
        changes["config"] = config
    spec = replace(spec, **changes)
    spec.validate()
    return spec


# ---------------------------------------------------------------- options and answers

_LABEL_RE = re.compile(r"(?:(?<=^)|(?<=[\s,;(]))\(?([A-H])\s*[:.)]\s*", re.MULTILINE)
_OPTIONS_WORD_RE = re.compile(r"\s*(options|choices)\s*:?\s*$", re.IGNORECASE)


def split_inline_options(text: str) -> tuple[str, list[str]]:
    """Split options written into a question: ``"Q? Options: A: x, B: y"`` or ``"Q?\\nA. x\\nB. y"``
    → ``("Q?", ["x", "y"])``. Labels must run A, B, C, ... in order (at least two); the last
    option ends at the end of its line. Without such a run the question is returned unchanged
    with no options."""
    marks = list(_LABEL_RE.finditer(text))
    for start in range(len(marks) - 1, -1, -1):
        if marks[start].group(1) != "A":
            continue
        chain = [marks[start]]
        for m in marks[start + 1 :]:
            if ord(m.group(1)) == ord(chain[-1].group(1)) + 1:
                chain.append(m)
        if len(chain) < 2:
            continue
        opts = []
        for i, m in enumerate(chain):
            end = chain[i + 1].start() if i + 1 < len(chain) else len(text)
            body = text[m.end() : end]
            if i + 1 == len(chain):
                body = body.split("\n", 1)[0]
            opts.append(body.strip().rstrip(",;").strip())
        stem = _OPTIONS_WORD_RE.sub("", text[: chain[0].start()].rstrip("( \n\t")).strip()
        if all(opts):
            return stem, opts
    return text.strip(), []


def _missing(v: Any) -> bool:
    """Empty cells: ``None``, NaN, blank text, and the text ``nan`` (pandas-exported parquet/TSV
    files, e.g. MMBench's unused option and hint cells)."""
    if isinstance(v, str):
        return v.strip().lower() in ("", "nan")
    return v is None or (isinstance(v, float) and math.isnan(v))


def _as_list(value: Any, what: str) -> list[Any]:
    """A list cell; text holding a JSON or Python list (CSV/TSV exports) is parsed."""
    if isinstance(value, str):
        import ast

        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise ValueError(f"{what} {text[:60]!r} is text, not a list") from None
    if isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and not isinstance(value, (str, bytes))):
        return list(value.tolist() if hasattr(value, "tolist") else value)
    raise ValueError(f"{what} {value!r} is not a list")


class BadRow(NamedTuple):
    """A benchmark row that cannot be asked (recorded by evaluation, never scored)."""

    id: str
    error: str


def answer_index(raw: Any, choices: list[str], fmt: str = "auto") -> int | None:
    """The 0-based option ``raw`` names under ``fmt`` (``None`` when it names none): the shared
    resolver :func:`factory.chains.answers.option_index`, after dropping empty cells (``nan`` too)."""
    if _missing(raw) or isinstance(raw, bool):
        return None
    return option_index(raw, choices, fmt)


def _image_cell(value: Any, base: Path | None) -> Any:
    """Image cell → something ``Sample.load_image`` reads; base64 text is decoded to bytes."""
    from factory.sources import _resolve_image

    if isinstance(value, str) and len(value) > 256 and not Path(value[:255]).suffix:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    return _resolve_image(value, base)


# ---------------------------------------------------------------- loading


class Benchmark:
    """The samples of one benchmark split, in row order (images decoded lazily)."""

    def __init__(self, spec: BenchmarkSpec, *, limit: int | None = None, table: Any = None):
        spec.validate()
        self.spec = spec
        self.limit = limit
        self.split = normalize_split(spec.split)
        if spec.dataset == "demo":
            from factory.sources import DemoSource

            self._demo = DemoSource(self.split)
            self.ds = None
            return
        from factory.sources import _base_dir, load_table

        self._demo = None
        if table is None:
            table = load_table(spec.dataset, self.split, config=spec.config, data_files=spec.data_files)
        self.ds = table
        self._base = _base_dir(spec.dataset)
        cols = self.ds.column_names
        need = {t: spec.columns.get(t, t) for t in ("image", "question", "answer")}
        if spec.options == "list":
            need["choices"] = spec.columns.get("choices", "choices")
        missing = [f"{t} (column {c!r})" for t, c in need.items() if c not in cols]
        if spec.options == "columns" and not any(c in cols for c in spec.option_columns):
            missing.append(f"option columns {list(spec.option_columns)}")
        if missing:
            raise ValueError(
                f"{spec.dataset}: missing {', '.join(missing)}; available columns: {cols}. Map them with "
                "--columns image=COL,question=COL,answer=COL[,choices=COL,id=COL,hint=COL] and choose the "
                "options layout with --options list|columns[:A|B|C|D]|inline."
            )

    def __len__(self) -> int:
        n = len(self._demo) if self._demo is not None else len(self.ds)
        return n if self.limit is None else min(n, self.limit)

    def describe(self) -> dict[str, Any]:
        return {**self.spec.describe(), "split": self.split, "rows": len(self)}

    def __iter__(self) -> Iterator[Sample | BadRow]:
        """Samples in row order; a row that cannot be asked (no image column value, an answer that
        names no option, a malformed options cell) comes as a :class:`BadRow` instead."""
        if self._demo is not None:
            for i, s in enumerate(self._demo):
                if self.limit is not None and i >= self.limit:
                    return
                yield s
            return
        for i, row in enumerate(self.ds):
            if self.limit is not None and i >= self.limit:
                return
            try:
                yield self.row_sample(i, row)
            except ValueError as exc:
                yield BadRow(self._id(i, row), f"row {i}: {exc}")

    def _id(self, i: int, row: Mapping[str, Any]) -> str:
        c = self.spec.columns
        if "id" in c:
            sid = row.get(c["id"])
        else:
            sid = next((row[k] for k in _ID_COLUMNS if k in row and not _missing(row[k])), None)
        return f"{self.spec.name}:{'#' + str(i) if _missing(sid) else sid}"

    def _options(self, row: Mapping[str, Any], question: str) -> tuple[str, list[str], dict[str, int]]:
        """``(question, options, letter → index)``; the letters are the option columns' names."""
        spec, c = self.spec, self.spec.columns
        if spec.options == "inline":
            question, choices = split_inline_options(question)
            return question, choices, {}
        if spec.options == "columns":
            present = [k for k in spec.option_columns if k in row and not _missing(row[k])]
            return question, [str(row[k]).strip() for k in present], {k.upper(): i for i, k in enumerate(present)}
        raw = row.get(c.get("choices", "choices"))
        if _missing(raw):
            return question, [], {}
        choices = _as_list(raw, "options")
        empty = [i for i, x in enumerate(choices) if _missing(x)]
        if empty:
            raise ValueError(f"option {empty[0]} of {choices!r} is empty; fix the row or drop it")
        return question, [str(x).strip() for x in choices], {}

    def row_sample(self, i: int, row: Mapping[str, Any]) -> Sample:
        """The :class:`Sample` of row ``i``; ``ValueError`` naming the problem for a row that
        cannot be asked."""
        spec, c = self.spec, self.spec.columns
        question = "" if _missing(row.get(c.get("question", "question"))) else str(row[c.get("question", "question")])
        for pat in spec.strip:
            question = re.sub(pat, "\n", question).strip()
        question, choices, letters = self._options(row, question)
        hint = row.get(c.get("hint", "hint"))
        if not _missing(hint):
            question = f"{str(hint).strip()}\n{question}"
        raw = row.get(c.get("answer", "answer"))
        if choices:
            key = str(raw).strip().strip("().").upper() if isinstance(raw, str) else None
            if letters and spec.answer in ("letter", "auto") and key in letters:
                idx = letters[key]  # the column named by the letter, even when an earlier column is empty
            elif letters and spec.answer == "letter" and key and len(key) == 1:
                idx = None
            else:
                idx = answer_index(raw, choices, spec.answer)
            if idx is None:
                raise ValueError(
                    f"answer {raw!r} names none of the options {choices!r} (answer format {spec.answer}); "
                    "check --answer-format and the option columns (--options)"
                )
            answer, answer_text = str(idx), choices[idx]
        else:
            answer = answer_text = "" if _missing(raw) else str(raw).strip()
        da = row.get(c.get("direct_answers", "direct_answers"))
        return Sample(
            id=self._id(i, row),
            question=question,
            choices=choices,
            answer=answer,
            answer_text=answer_text,
            image=_image_cell(row.get(c.get("image", "image")), self._base),
            split=self.split,
            direct_answers=[] if _missing(da) else [str(a) for a in _as_list(da, "direct answers")],
        )


def load_benchmark(benchmark: str | BenchmarkSpec = "demo", *, limit: int | None = None, **overrides: Any) -> Benchmark:
    """Open a benchmark: a preset name, a :class:`BenchmarkSpec`, or a dataset plus overrides
    (``split``, ``columns``, ``options``, ``answer``, ``config``; see :func:`resolve_spec`)."""
    spec = benchmark if isinstance(benchmark, BenchmarkSpec) else resolve_spec(benchmark, **overrides)
    if limit is not None and (isinstance(limit, bool) or limit < 0):
        raise ConfigError("limit", f"must be a number >= 0, got {limit!r}", value=limit)
    return Benchmark(spec, limit=limit)
