"""Evaluation benchmarks: presets for the paper's benchmarks, and any dataset by mapping.

Every benchmark yields :class:`factory.sources.Sample` objects (``choices`` as a list, ``answer``
the 0-based option index as a string), so evaluation scores them with the rewards' answer
matching. Four layouts of the options are understood:

* ``list``: one column holds the options as a list (A-OKVQA, the factory's own datasets);
* ``columns``: one column per option, ``A, B, C, D, ...`` (MMBench and MMMB, VLMEvalKit TSVs);
  empty cells are dropped;
* ``inline``: the options are written in the question ("Options: A: x, B: y" as in MMStar, or
  one "A. x" per line as in RealWorldQA) and are split off it;
* ``auto``: columns when the row fills any, else inline, else an open question (VLMEvalKit TSVs
  of any benchmark).

The answer may be an index (``index``), a letter (``letter``: A = 0), the option's text
(``text``) or any of these (``auto``). Images may be encoded bytes, HF image structs, paths, or
base64 text (VLMEvalKit TSVs, read by :mod:`trainers.eval.tsv`).

Split names are used exactly as the dataset declares them (MMStar's ``val``, MMBench's ``dev``);
a split the dataset lacks is an error listing the ones it has. ``PRESET@PATH`` reads a preset from
a local copy of its repository (same files, same README). Benchmarks whose images are already
degraded (MMD-Bench, R-Bench: :mod:`trainers.eval.predegraded`) answer :meth:`Benchmark.plan`
with their own image per level; every other benchmark is degraded by the evaluation protocol.

::

    from trainers.eval.benchmarks import load_benchmark
    bench = load_benchmark("mmstar", limit=100)             # a preset (Hub, needs the network)
    bench = load_benchmark("mmstar@/data/MMStar")           # the same preset from a local copy
    bench = load_benchmark("MMStar_LOW_LEVEL_HIGH.tsv")     # a VLMEvalKit TSV file
    bench = load_benchmark("my.parquet", columns="image=img,question=q,choices=opts,answer=label")
    for s in bench: s.question, s.choices, s.answer
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

from factory.chains.answers import option_index
from factory.errors import ConfigError
from factory.sources import Sample

__all__ = [
    "ANSWER_FORMATS",
    "MAPPING_TARGETS",
    "OPTION_LAYOUTS",
    "PRESETS",
    "BadRow",
    "Benchmark",
    "BenchmarkSpec",
    "LevelImage",
    "answer_index",
    "image_cell",
    "load_benchmark",
    "parse_mapping",
    "resolve_scorer",
    "resolve_spec",
    "split_inline_options",
]

OPTION_LAYOUTS = ("list", "columns", "inline", "auto")
_ID_COLUMNS = ("id", "index", "question_id", "qid")
"""Where a question's id is looked for when the mapping names no ``id`` column (else the row number)."""
ANSWER_FORMATS = ("auto", "index", "letter", "text")
MATCH = "match"
"""The scorer of multiple-choice and short answers: the shared answer matching (:func:`scoring.score_output`)."""


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark lives and how its rows read as multiple-choice questions."""

    name: str
    dataset: str
    """Hub repo id, local file or folder, or ``demo`` (the bundled validation photos)."""
    split: str = "validation"
    """The split exactly as the dataset declares it (``val``, ``dev``, ``test``, ...)."""
    config: str | None = None
    """Hub configuration name (``datasets.load_dataset(dataset, config)``); ``None`` lets a dataset
    with one configuration use it whatever its name (MMStar's changed from ``mmstar`` to ``val``)."""
    data_files: Mapping[str, Any] | None = None
    """Files inside a Hub repo, e.g. ``{"test": "mmmb/mmmb_en.tsv"}`` (a ``.tsv`` is read as a
    VLMEvalKit TSV)."""
    columns: Mapping[str, str] = field(default_factory=dict)
    """Target → source column: ``id, image, question, choices, answer, hint, direct_answers``."""
    options: str = "list"
    """``list``, ``columns``, ``inline`` or ``auto`` (see the module docstring)."""
    option_columns: tuple[str, ...] = ("A", "B", "C", "D", "E", "F", "G", "H")
    answer: str = "auto"
    """``auto``, ``index``, ``letter`` or ``text``."""
    strip: tuple[str, ...] = ()
    """Regular expressions removed from the question (a benchmark's own answer instruction)."""
    about: str = ""
    split_fallbacks: tuple[str, ...] = ()
    """Names the same split had in earlier versions of the dataset (RealWorldQA's ``test_0412``),
    tried in order when the dataset does not declare ``split``; dropped when a split is given."""
    scoring: str = MATCH
    """How answers are scored: ``match`` (the shared answer matching) or a scorer name looked up by
    :func:`resolve_scorer` (e.g. ``judge:mmvet``)."""
    circular: bool = False
    """VLMEvalKit's circular evaluation (MMBench): rows sharing ``index % 1,000,000`` are rolls of
    one question, which counts only when every roll is right (reported beside accuracy)."""
    source: str = ""
    """Where the preset's files come from, in words (for the docs and ``run.json``)."""

    def validate(self) -> None:
        """:class:`factory.errors.ConfigError` naming the field (``options``, ``answer``) when unusable."""
        if self.options not in OPTION_LAYOUTS:
            raise ConfigError("options", f"benchmark {self.name}: options layout {self.options!r}",
                              value=self.options, fix=f"use one of {', '.join(OPTION_LAYOUTS)}")
        if self.answer not in ANSWER_FORMATS:
            raise ConfigError("answer", f"benchmark {self.name}: answer format {self.answer!r}",
                              value=self.answer, fix=f"use one of {', '.join(ANSWER_FORMATS)}")

    def describe(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "dataset": self.dataset,
            "split": self.split,
            "config": self.config,
            "data_files": dict(self.data_files) if self.data_files else None,
            "columns": dict(self.columns),
            "options": self.options,
            "answer": self.answer,
        }
        if self.scoring != MATCH:
            out["scoring"] = self.scoring
        if self.circular:
            out["circular"] = [self.name]  # the id prefixes whose rows are circular rolls
        return out


_LETTER_ONLY = r"\s*Please answer directly with only the letter of the correct option and nothing else\.?\s*"
_WORD_ONLY = r"\s*Please answer directly with a single word or number\.?\s*"

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
        source="mmstar.parquet, declared by the README as split val (configuration mmstar, later val)",
    ),
    "realworldqa": BenchmarkSpec(
        "realworldqa",
        "xai-org/RealworldQA",
        "test",
        columns={"image": "image", "question": "question", "answer": "answer"},
        options="inline",
        answer="auto",
        strip=(_LETTER_ONLY, _WORD_ONLY),
        about="RealWorldQA (765 questions; options inline, a few open questions)",
        split_fallbacks=("test_0412",),
        source="data/test-*.parquet (data/test_0412-*.parquet before the split was renamed)",
    ),
    "mmbench": BenchmarkSpec(
        "mmbench",
        "lmms-lab/MMBench_EN",
        "dev",
        columns={"id": "index", "image": "image", "question": "question", "answer": "answer", "hint": "hint"},
        options="columns",
        answer="letter",
        about="MMBench (English dev; options in columns A-D, hint prepended)",
        source="data/dev-*.parquet and data/test-*.parquet, splits dev and test",
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
        source="mmmb/mmmb_en.tsv (VLMEvalKit TSV; no README configs)",
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
        source="data/validation-*.parquet (the test split has no labels)",
    ),
}
"""The paper's benchmarks (MMMB, MMStar, RealWorldQA) plus MMBench, A-OKVQA val and the offline demo.
R-Bench (``rbench``) and MMD-Bench (``mmdbench:BASE``) are in :mod:`trainers.eval.predegraded`."""


MAPPING_TARGETS = ("id", "image", "question", "choices", "answer", "hint", "direct_answers")


def parse_mapping(text: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"image=img,question=q"`` → ``{"image": "img", "question": "q"}``; targets are checked."""
    from factory.sources import parse_columns

    return parse_columns(text, MAPPING_TARGETS)


def split_local(benchmark: str) -> tuple[str, str | None]:
    """``"mmstar@/data/MMStar"`` → ``("mmstar", "/data/MMStar")``; no ``@`` → ``(benchmark, None)``."""
    name, sep, path = benchmark.partition("@")
    if not sep:
        return benchmark, None
    if not name or not path:
        raise ConfigError("benchmark", "write PRESET@PATH (a local copy of the preset's repository)",
                          value=benchmark, fix="e.g. mmstar@/data/MMStar")
    return name, path


def resolve_spec(
    benchmark: str,
    *,
    split: str | None = None,
    columns: str | Mapping[str, str] | None = None,
    options: str | None = None,
    answer: str | None = None,
    config: str | None = None,
) -> BenchmarkSpec:
    """A preset name (``mmstar``, ...; ``mmstar@PATH`` for a local copy of its repository) or a
    dataset (Hub id, local file or folder, VLMEvalKit ``.tsv``) plus overrides."""
    name, local = split_local(benchmark)
    if name in PRESETS:
        spec = PRESETS[name]
        if local is not None:
            if not Path(local).expanduser().exists():
                raise ConfigError("benchmark", f"{local}: no such folder (a local copy of {spec.dataset})",
                                  value=benchmark, fix=f"copy the repository {spec.dataset} there, or drop @PATH")
            spec = replace(spec, dataset=str(Path(local).expanduser()))
    else:
        if local is not None:
            raise ConfigError("benchmark", f"{name!r} is not a preset; PRESET@PATH needs one of {', '.join(PRESETS)}",
                              value=benchmark, fix="or pass the path alone")
        p = Path(benchmark)
        name = p.stem if p.exists() else benchmark.rstrip("/").split("/")[-1]
        spec = BenchmarkSpec(name, benchmark)
        if p.is_file() and p.suffix.lower() == ".tsv":  # a VLMEvalKit TSV: VLMEvalKit's own columns
            spec = replace(spec, split="test", options="auto", answer="auto",
                           columns={"id": "index", "image": "image", "question": "question", "answer": "answer",
                                    "hint": "hint"}, circular=_circular_name(p.stem))
        elif p.is_file():
            spec = replace(spec, split="train")  # a single file is one split (see factory.sources.load_table)
    changes: dict[str, Any] = {}
    if split:
        changes["split"] = split
        changes["split_fallbacks"] = ()
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


def _circular_name(name: str) -> bool:
    """VLMEvalKit scores a dataset circularly when its name contains ``mmbench`` or ``ccbench``."""
    low = name.lower()
    return "mmbench" in low or "ccbench" in low


# ---------------------------------------------------------------- options and answers

_LABEL_RE = re.compile(r"(?:(?<=^)|(?<=[\s,;(]))(\()?([A-H])\s*([:.)])\s*", re.MULTILINE)
_OPTIONS_WORD_RE = re.compile(r"\s*(options|choices)\s*:?\s*$", re.IGNORECASE)
_CUE_RE = re.compile(r"(?:^|\n|(?:options|choices)\s*:?)\s*\(?$", re.IGNORECASE)


def split_inline_options(text: str) -> tuple[str, list[str]]:
    """Split options written into a question: ``"Q? Options: A: x, B: y"`` or ``"Q?\\nA. x\\nB. y"``
    → ``("Q?", ["x", "y"])``.

    Labels must run A, B, C, ... in order (at least two) and share one style (``A:``, ``A.``,
    ``A)`` or ``(A)``), so an option whose text itself starts with ``(A)`` does not start a run of
    its own. Among several runs the longest wins, then one that follows "Options:" or starts a
    line, then the last. The last option ends at the end of its line. Without such a run the
    question is returned unchanged with no options."""
    marks = list(_LABEL_RE.finditer(text))
    best: tuple[tuple[int, int, int], str, list[str]] | None = None
    for start, first in enumerate(marks):
        if first.group(2) != "A":
            continue
        style = (first.group(1) or "", first.group(3))
        chain = [first]
        for m in marks[start + 1 :]:
            if (m.group(1) or "", m.group(3)) == style and ord(m.group(2)) == ord(chain[-1].group(2)) + 1:
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
        if not all(opts):
            continue
        cue = 1 if _CUE_RE.search(text[: first.start()]) else 0
        stem = _OPTIONS_WORD_RE.sub("", text[: first.start()].rstrip("( \n\t")).strip()
        key = (len(chain), cue, start)
        if best is None or key > best[0]:
            best = (key, stem, opts)
    if best is None:
        return text.strip(), []
    return best[1], best[2]


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


class LevelImage(NamedTuple):
    """One image a pre-degraded benchmark shows at one level (:meth:`Benchmark.plan`)."""

    level: float
    sample: Sample
    """The question with this level's image (``sample.load_image()`` decodes it)."""
    extra: dict[str, Any]
    """Fields added to the prediction row: ``degradation`` and ``stage`` when the file says which
    degradation it holds, ``source`` (the file), ``variant`` (``per-degradation`` for MMD-Bench's
    per-degradation files), ``type_truth`` (``unknown`` when the degradation is not recorded)."""


def answer_index(raw: Any, choices: list[str], fmt: str = "auto") -> int | None:
    """The 0-based option ``raw`` names under ``fmt`` (``None`` when it names none): the shared
    resolver :func:`factory.chains.answers.option_index`, after dropping empty cells (``nan`` too)."""
    if _missing(raw) or isinstance(raw, bool):
        return None
    return option_index(raw, choices, fmt)


def image_cell(value: Any, base: Path | None) -> Any:
    """Image cell → something ``Sample.load_image`` reads; base64 text is decoded to bytes, and a
    bad cell of a VLMEvalKit TSV (an unresolvable reference) is raised as that row's error."""
    from factory.sources import _resolve_image

    from .tsv import ImageReferenceError

    if isinstance(value, ImageReferenceError):
        raise ValueError(str(value))
    if isinstance(value, str) and len(value) > 256 and not Path(value[:255]).suffix:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    return _resolve_image(value, base)


_image_cell = image_cell  # the former private name


def resolve_scorer(name: str, cfg: Any = None) -> Callable[..., dict[str, Any]]:
    """The scorer a benchmark names (``match``: the shared answer matching with the prompt's option
    labels; ``judge:mmvet``, ``judge:rbench-vqa``, ...: an LLM judge), from
    :func:`trainers.eval.scoring.get_scorer`: a callable ``(text, sample, level, recipe) -> dict``.

    :class:`factory.errors.ConfigError` (field ``benchmark``) for an unknown scorer, before any
    answer is generated (a judge without a key raises its own ``ConfigError``)."""
    from .scoring import get_scorer

    try:
        return get_scorer(name, cfg)
    except KeyError:
        raise ConfigError("benchmark", f"no scorer named {name!r}", value=name,
                          fix="see docs/benchmarks.md for the scorers each benchmark needs") from None


# ---------------------------------------------------------------- loading


def _tsv_file(spec: BenchmarkSpec, split: str) -> str | None:
    """The VLMEvalKit TSV this spec reads for ``split`` (a local path, downloaded from the Hub when
    the dataset is a repo id), or ``None`` when it reads no TSV."""
    p = Path(spec.dataset).expanduser()
    if p.is_file():
        return str(p) if p.suffix.lower() == ".tsv" else None
    files = dict(spec.data_files or {})
    rel = files.get(split)
    if rel is None and files:
        rel = next(iter(files.values())) if len(files) == 1 else None
    if not isinstance(rel, str) or not rel.lower().endswith(".tsv"):
        return None
    if p.is_dir():
        f = p / rel
        if not f.is_file():
            raise ValueError(f"{spec.dataset}: no {rel} in this local copy of the repository; "
                             f"copy the file there (it is {rel} in the Hub repo)")
        return str(f)
    return hub_file(spec.dataset, rel)


def hub_file(repo: str, filename: str) -> str:
    """A file of a Hub dataset repository, downloaded to (or found in) the HF cache."""
    from huggingface_hub import hf_hub_download

    try:
        return hf_hub_download(repo, filename, repo_type="dataset")
    except Exception as exc:  # noqa: BLE001 - offline, gated, missing: one clear message
        raise ValueError(
            f"{repo}: cannot fetch {filename} ({type(exc).__name__}: {exc}); it needs the network (and HF_TOKEN "
            "for gated data), or pass a local copy of the repository as PRESET@PATH"
        ) from None


class Benchmark:
    """The samples of one benchmark split, in row order (images decoded lazily)."""

    predegraded: dict[str, Any] | None = None
    """What a pre-degraded benchmark says about its images (``None``: the protocol degrades them)."""

    def __init__(self, spec: BenchmarkSpec, *, limit: int | None = None, table: Any = None):
        spec.validate()
        self.spec = spec
        self.limit = limit
        self.split = spec.split
        if spec.dataset == "demo":
            from factory.sources import DemoSource

            self._demo = DemoSource(self.split)
            self.ds = None
            return
        from factory.sources import _base_dir

        self._demo = None
        self._tsv: str | None = None
        if table is None:
            table = self._open(spec)
        self.ds = table
        self._base = Path(self._tsv).parent if self._tsv else _base_dir(spec.dataset)
        self._check_columns()

    def _open(self, spec: BenchmarkSpec) -> Any:
        """The table of the spec's split (then of its ``split_fallbacks``, for an older copy)."""
        from factory.sources import UnknownSplitError, load_table

        tsv = _tsv_file(spec, spec.split)
        if tsv is not None:
            from .tsv import read_tsv

            self._tsv = tsv
            return read_tsv(tsv)
        names = (spec.split, *spec.split_fallbacks)
        for i, split in enumerate(names):
            try:
                table = load_table(spec.dataset, split, config=spec.config, data_files=spec.data_files)
            except UnknownSplitError as exc:
                if i + 1 < len(names) and names[i + 1] in exc.available:
                    continue
                raise
            self.split = split
            return table
        raise AssertionError("unreachable")

    def _check_columns(self) -> None:
        spec = self.spec
        cols = self.ds.column_names
        need = {t: spec.columns.get(t, t) for t in ("image", "question", "answer")}
        if need["image"] not in cols and "image_path" in cols and _is_tsv_spec(spec):
            self.spec = spec = replace(spec, columns={**spec.columns, "image": "image_path"})
            need["image"] = "image_path"
        if spec.options == "list":
            need["choices"] = spec.columns.get("choices", "choices")
        missing = [f"{t} (column {c!r})" for t, c in need.items() if c not in cols]
        if spec.options == "columns" and not any(c in cols for c in spec.option_columns):
            missing.append(f"option columns {list(spec.option_columns)}")
        if missing:
            raise ValueError(
                f"{spec.dataset}: missing {', '.join(missing)}; available columns: {cols}. Map them with "
                "--columns image=COL,question=COL,answer=COL[,choices=COL,id=COL,hint=COL] and choose the "
                "options layout with --options list|columns[:A|B|C|D]|inline|auto."
            )

    def __len__(self) -> int:
        n = len(self._demo) if self._demo is not None else len(self.ds)
        return n if self.limit is None else min(n, self.limit)

    def describe(self) -> dict[str, Any]:
        return {**self.spec.describe(), "split": self.split, "rows": len(self)}

    def plan(self, sample: Sample, levels: Sequence[float]) -> list[LevelImage] | None:
        """The images a pre-degraded benchmark shows ``sample`` at ``levels`` (only the levels it
        holds); ``None`` for a benchmark the evaluation protocol degrades itself."""
        return None

    def scorer_name(self, sample: Sample) -> str:
        """The scorer of ``sample``'s answers (:func:`resolve_scorer`)."""
        return self.spec.scoring

    def scorer_names(self) -> set[str]:
        """Every scorer this benchmark's answers need (checked before generation)."""
        return {self.spec.scoring}

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
        layout = spec.options
        if layout == "auto":
            cols = [k for k in _row_option_columns(row) if not _missing(row[k])]
            if cols:
                stem, inline = split_inline_options(question)
                present = [str(row[k]).strip() for k in cols]
                if inline and [x.lower() for x in inline] == [x.lower() for x in present]:
                    question = stem  # the question repeats its option columns inline (MMStar's TSV)
                return question, present, {k.upper(): i for i, k in enumerate(cols)}
            layout = "inline"
        if layout == "inline":
            question, choices = split_inline_options(question)
            return question, choices, {}
        if layout == "columns":
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
            image=image_cell(row.get(c.get("image", "image")), self._base),
            split=self.split,
            direct_answers=[] if _missing(da) else [str(a) for a in _as_list(da, "direct answers")],
        )


def _row_option_columns(row: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in row if len(k) == 1 and "A" <= k <= "Z")


def _is_tsv_spec(spec: BenchmarkSpec) -> bool:
    if str(spec.dataset).lower().endswith(".tsv"):
        return True
    return any(isinstance(v, str) and v.lower().endswith(".tsv") for v in (spec.data_files or {}).values())


FAMILIES: dict[str, Callable[..., Benchmark]] = {}
"""Benchmark families opened by the name before ``:`` (``rbench``, ``mmdbench``): an opener
``(benchmark, *, limit, levels, only, **overrides) -> Benchmark``, registered by
:mod:`trainers.eval.predegraded` (imported with the ``trainers.eval`` package)."""


def load_benchmark(
    benchmark: str | BenchmarkSpec = "demo",
    *,
    limit: int | None = None,
    levels: Sequence[float] | None = None,
    only: Sequence[str] | None = None,
    **overrides: Any,
) -> Benchmark:
    """Open a benchmark: a preset name (``PRESET@PATH`` for a local copy), a pre-degraded family
    (``rbench``, ``mmdbench:BASE[,BASE]``; :mod:`trainers.eval.predegraded`), a
    :class:`BenchmarkSpec`, or a dataset plus overrides (``split``, ``columns``, ``options``,
    ``answer``, ``config``; see :func:`resolve_spec`). ``levels`` and ``only`` tell a pre-degraded
    benchmark which of its files the run needs."""
    if limit is not None and (isinstance(limit, bool) or limit < 0):
        raise ConfigError("limit", f"must be a number >= 0, got {limit!r}", value=limit)
    if isinstance(benchmark, str):
        family = FAMILIES.get(split_local(benchmark)[0].split(":", 1)[0])
        if family is not None:
            return family(benchmark, limit=limit, levels=levels, only=only, **overrides)
    spec = benchmark if isinstance(benchmark, BenchmarkSpec) else resolve_spec(benchmark, **overrides)
    return Benchmark(spec, limit=limit)


def lmu_data() -> Path | None:
    """VLMEvalKit's data folder (``$LMUData``, else ``~/LMUData``) when it exists."""
    p = Path(os.environ.get("LMUData") or "~/LMUData").expanduser()
    return p if p.is_dir() else None
