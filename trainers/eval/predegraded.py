"""Benchmarks whose images are already degraded: MMD-Bench and R-Bench, read as published.

The evaluation protocol degrades a clean benchmark itself (:mod:`trainers.eval.runner`). These
benchmarks ship the degraded images instead, so a run shows each question's published image at
each level and applies **no degradation of its own** (the summary says so):

* ``mmdbench:BASE[,BASE...]`` (MMD-Bench, from the CLEAR paper, arXiv 2604.04780; Hub dataset
  ``CUDAOUTOFMEMORY/MMD-Bench``): the Robust-R1 degradation code applied to six VLMEvalKit
  benchmarks, one mixed-degradation file per base and level
  (``{Base}_LOW_LEVEL_{LOW,MID,HIGH}.tsv`` at intensities 0.23 / 0.45 / 0.9, one degradation drawn
  per image and not recorded) plus one file per degradation at 0.9 (``{Base}_{method}.tsv``, e.g.
  ``MMStar_lens_blur.tsv``). Levels LOW / MID / HIGH sit at 0.23 / 0.45 / 0.9 on our intensity
  axis (the same numbers: the paper's 25 / 50 / 100 %); ``clean`` is the base benchmark's own
  VLMEvalKit file (``MMStar.tsv``) where it is available. The per-degradation files give the
  accuracy per degradation at 100 % (``variant: per-degradation`` rows, reported in the
  per-degradation table, never mixed into the level table). Suffix ``:mixed`` reads the level files
  only, ``:per-degradation`` the per-degradation files only; ``--only`` picks degradations.
* ``rbench`` (R-Bench, arXiv 2410.05474; VLMEvalKit ``R-Bench-Dis`` / ``R-Bench-Ref``, files
  ``R-bench-dis.tsv`` / ``R-bench-ref.tsv`` of the Hub dataset ``lcysyzxdxc/R-Bench``): real-world
  corruptions at three strengths. The distorted file is the benchmark, the reference file gives the
  ``clean`` level (same ``index``). A ``strength`` (or ``level``) column places rows at low / mid /
  high = 0.23 / 0.45 / 0.9 (R-Bench's own strengths placed on our axis; strength 1 = low); without
  one, every distorted row is at 1.0 ("all strengths"). A ``type`` column (MCQ / VQA / CAP, as in
  the authors' release) sends VQA and CAP answers to the judge scorers ``judge:rbench-vqa`` /
  ``judge:rbench-cap``; MCQ is scored by the shared answer matching.

Files are found, in this order, in ``PATH`` of ``NAME@PATH`` (a local copy, any sub-folder), in
VLMEvalKit's data folder (``$LMUData``, default ``~/LMUData``), or downloaded from the Hub repo.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from factory.errors import ConfigError
from factory.sources import Sample

from .benchmarks import (
    _LETTER_ONLY,
    _WORD_ONLY,
    FAMILIES,
    MATCH,
    BadRow,
    Benchmark,
    BenchmarkSpec,
    LevelImage,
    _circular_name,
    _missing,
    hub_file,
    image_cell,
    lmu_data,
    split_inline_options,
    split_local,
)

__all__ = [
    "MMDBENCH_BASES",
    "MMDBENCH_LEVELS",
    "MMDBENCH_METHODS",
    "MMDBENCH_REPO",
    "RBENCH_LEVELS",
    "RBENCH_REPO",
    "MMDBench",
    "RBench",
    "handles",
    "open_benchmark",
]

MMDBENCH_REPO = "CUDAOUTOFMEMORY/MMD-Bench"
MMDBENCH_LEVELS: dict[str, float] = {"LOW": 0.23, "MID": 0.45, "HIGH": 0.9}
"""File suffix ``_LOW_LEVEL_<NAME>`` → intensity (CLEAR's generator: 0.9 HIGH, 0.45 MID, 0.23 LOW)."""
MMDBENCH_PER_DEGRADATION_LEVEL = 0.9
MMDBENCH_METHODS = (
    "lens_blur", "lens_flare", "motion_blur", "dirty_lens", "hsv_saturation", "jpeg_compression", "block_exchange",
    "mean_shift", "scan_lines", "dark_illumination", "atmospheric_turbulence", "gaussian_noise", "color_diffusion",
    "sharpness_change", "graffiti", "watermark_damage",
)
"""The per-degradation file suffixes (CLEAR's generator); the Robust-R1 catalogue's 16 names."""

MMDBENCH_BASES: dict[str, dict[str, Any]] = {
    "mmbench": {"file": "MMBench_DEV_EN_V11", "about": "MMBench dev EN v1.1 (circular: every roll of a question)"},
    "mmvet": {"file": "MMVet", "scoring": "judge:mmvet", "about": "MM-Vet (open answers, LLM judge, 0-1 score)"},
    "mmvp": {"file": "MMVP", "about": "MMVP (two options; pairs of questions)"},
    "cvbench": {"file": "CV-Bench-2D", "about": "CV-Bench 2D"},
    "mmstar": {"file": "MMStar", "about": "MMStar"},
    "realworldqa": {"file": "RealWorldQA", "strip": (_LETTER_ONLY, _WORD_ONLY), "about": "RealWorldQA"},
}
"""``mmdbench:KEY`` → the VLMEvalKit base name of its files (the six benchmarks of the MMD-Bench
paper's table; the VLMEvalKit name itself, e.g. ``mmdbench:CV-Bench-2D``, works too)."""

RBENCH_REPO = "lcysyzxdxc/R-Bench"
RBENCH_FILES = {"dis": "R-bench-dis.tsv", "ref": "R-bench-ref.tsv"}
RBENCH_LEVELS: dict[str, float] = {"1": 0.23, "2": 0.45, "3": 0.9, "low": 0.23, "mid": 0.45, "high": 0.9}
"""R-Bench strength → our axis. Strength 1 = low is an assumption: the R-Bench notebook labels the
strengths "high mid low", but the Robust-R1 paper's MCQ scores fall from low to high only with
1 = low (see docs/benchmarks.md)."""
RBENCH_ALL_STRENGTHS = 1.0
"""Where distorted rows go when the file records no strength ("all strengths")."""
RBENCH_SCORERS = {"MCQ": MATCH, "VQA": "judge:rbench-vqa", "CAP": "judge:rbench-cap"}

_VLMEVAL_COLUMNS = {"id": "index", "image": "image", "question": "question", "answer": "answer", "hint": "hint"}
_TYPE_UNKNOWN = "unknown"


def handles(benchmark: str) -> bool:
    """Whether ``benchmark`` names a pre-degraded benchmark (``mmdbench:...``, ``rbench``)."""
    name = split_local(benchmark)[0] if "@" in benchmark else benchmark
    return name == "rbench" or name.startswith("rbench:") or name == "mmdbench" or name.startswith("mmdbench:")


def open_benchmark(
    benchmark: str,
    *,
    limit: int | None = None,
    levels: Sequence[float] | None = None,
    only: Sequence[str] | None = None,
    split: str | None = None,
    columns: Any = None,
    options: str | None = None,
    answer: str | None = None,
    config: str | None = None,
) -> Benchmark:
    """The benchmark ``benchmark`` names (see the module docstring)."""
    given = {"--split": split, "--columns": columns, "--options": options, "--answer-format": answer,
             "--config-name": config}
    extra = [k for k, v in given.items() if v]
    if extra:
        raise ConfigError("benchmark", f"{benchmark} reads its published files as they are; {', '.join(extra)} "
                          "do not apply", value=benchmark, fix=f"drop {', '.join(extra)}")
    name, local = split_local(benchmark)
    if name.startswith("mmdbench"):
        bases, _, mode = name.partition(":")[2].partition(":")
        return MMDBench(bases, mode=mode or "all", local=local, limit=limit, levels=levels, only=only)
    variant = name.partition(":")[2]
    if variant not in ("", "dis"):
        raise ConfigError("benchmark", f"unknown R-Bench variant {variant!r}", value=benchmark,
                          fix="use rbench (R-Bench-Dis, with R-Bench-Ref as the clean level)")
    return RBench(local=local, limit=limit, levels=levels)


# ---------------------------------------------------------------- where the files are


class Files:
    """The TSV files of a published benchmark: in a local folder (any depth), in ``$LMUData``, or
    in a Hub dataset repository (listed once, downloaded on first use)."""

    def __init__(self, repo: str, local: str | None):
        self.repo = repo
        self.local = Path(local).expanduser() if local else None
        if self.local is not None and not self.local.is_dir():
            raise ConfigError("benchmark", f"{local}: no such folder (a local copy of {repo})", value=local,
                              fix=f"copy the files of {repo} there, or drop @PATH")
        self._index: dict[str, str] = {}
        root = self.local if self.local is not None else lmu_data()  # a local copy is the whole truth
        if root is not None:
            for p in sorted(root.rglob("*.tsv")):
                self._index.setdefault(p.name, str(p))
        self._hub: set[str] | None = None
        self._hub_error = ""

    def _hub_files(self) -> dict[str, str]:
        if self.local is not None:
            return {}
        if self._hub is None:
            try:
                from huggingface_hub import list_repo_files

                self._hub = set(list_repo_files(self.repo, repo_type="dataset"))
            except Exception as exc:  # noqa: BLE001 - offline: only local files count
                self._hub = set()
                self._hub_error = f"{type(exc).__name__}: {str(exc)[:120]}"
        return {Path(f).name: f for f in self._hub if f.lower().endswith(".tsv")}

    def has(self, name: str) -> bool:
        return name in self._index or name in self._hub_files()

    def path(self, name: str) -> str:
        if name in self._index:
            return self._index[name]
        hub = self._hub_files()
        if name in hub:
            return hub_file(self.repo, hub[name])
        raise FileNotFoundError(name)

    def where(self) -> str:
        if self.local is not None:
            return str(self.local)
        lmu = lmu_data()
        hub = f"the Hub repo {self.repo}"
        if self._hub_error:
            hub += f" (not reachable: {self._hub_error})"
        return f"$LMUData ({lmu}) or {hub}" if lmu else hub


def _check_levels(name: str, levels: Sequence[float] | None, held: Mapping[float, str], fix: str) -> list[float]:
    """The requested levels, every one of them held; :class:`ConfigError` naming the others."""
    if levels is None:
        return sorted(held)
    want = [round(float(x), 2) for x in levels]
    missing = [x for x in want if x not in held]
    if missing:
        have = ", ".join(f"{held[x]} ({x:g})" for x in sorted(held)) or "none"
        raise ConfigError("levels", f"{name} has no images at {', '.join(f'{x:g}' for x in missing)}; it holds {have}",
                          value=",".join(f"{x:g}" for x in missing), fix=fix)
    return want


def _tsv_spec(name: str, path: str, **kw: Any) -> BenchmarkSpec:
    return BenchmarkSpec(name, path, "test", columns=dict(_VLMEVAL_COLUMNS), options="auto", answer="auto", **kw)


class _Published(Benchmark):
    """Shared machinery: a question table, images per level from other files matched by ``index``."""

    def __init__(self, spec: BenchmarkSpec, *, limit: int | None):
        self.spec = spec
        self.limit = limit
        self.split = spec.split
        self._demo = None
        self.ds = None
        self._tables: dict[str, Any] = {}

    def _table(self, path: str) -> Any:
        from .tsv import read_tsv

        if path not in self._tables:
            self._tables[path] = read_tsv(path)
        return self._tables[path]

    def _release(self) -> None:
        self._tables.clear()

    @staticmethod
    def _reader(spec: BenchmarkSpec, table: Any) -> Benchmark:
        return Benchmark(spec, table=table)


# ---------------------------------------------------------------- MMD-Bench


def _mmd_base(key: str) -> tuple[str, dict[str, Any]]:
    k = key.strip()
    if k.lower() in MMDBENCH_BASES:
        return k.lower(), MMDBENCH_BASES[k.lower()]
    for ours, info in MMDBENCH_BASES.items():
        if info["file"].lower() == k.lower():
            return ours, info
    raise ConfigError("benchmark", f"MMD-Bench has no base benchmark {key!r}", value=key,
                      fix=f"use mmdbench:{','.join(MMDBENCH_BASES)} (one or several, comma-separated)")


class MMDBench(_Published):
    """MMD-Bench (see the module docstring): one or several base benchmarks, their level files and
    per-degradation files. Ids are ``mmdbench-<base>:<index>`` (``...@<method>`` for a question
    asked on a per-degradation file)."""

    MODES = ("all", "mixed", "per-degradation")

    def __init__(
        self,
        bases: str,
        *,
        mode: str = "all",
        local: str | None = None,
        limit: int | None = None,
        levels: Sequence[float] | None = None,
        only: Sequence[str] | None = None,
    ):
        from factory.degrade import canonical_name

        if mode not in self.MODES:
            raise ConfigError("benchmark", f"unknown MMD-Bench part {mode!r}", value=mode,
                              fix="mmdbench:BASE (levels and per-degradation files), :mixed or :per-degradation")
        keys = [b for b in bases.split(",") if b.strip()]
        if not keys:
            raise ConfigError("benchmark", "name the base benchmark(s)", value="mmdbench",
                              fix=f"e.g. mmdbench:mmstar; bases: {', '.join(MMDBENCH_BASES)}")
        found = [_mmd_base(k) for k in keys]
        self.bases = [b for i, b in enumerate(found) if b[0] not in {k for k, _ in found[:i]}]
        self.mode = mode
        self.files = Files(MMDBENCH_REPO, local)
        wanted = {canonical_name(n) for n in only} if only else None
        self.methods = [m for m in MMDBENCH_METHODS if wanted is None or canonical_name(m) in wanted]
        name = "mmdbench:" + ",".join(k for k, _ in self.bases)
        super().__init__(BenchmarkSpec(name, MMDBENCH_REPO, "test", options="auto", answer="auto",
                                       about="MMD-Bench (published degraded images)"), limit=limit)
        self.levels = self._plan_levels(levels)
        self._sizes = {key: self._count(key, info) for key, info in self.bases}
        self._current: tuple[str, dict[float, Any]] | None = None
        names = {v: k for k, v in MMDBENCH_LEVELS.items()} | {0.0: "clean (base benchmark)"}
        if self.mode == "per-degradation":
            names[MMDBENCH_PER_DEGRADATION_LEVEL] = "HIGH (per-degradation files)"
        self.predegraded = {
            "source": "MMD-Bench (CLEAR, arXiv 2604.04780), " + self.files.where(),
            "applied_by_us": False,
            "levels": {f"{lv:g}": names[lv] for lv in self.levels},
            "per_degradation": [m for m in self.methods if any(self.files.has(f"{info['file']}_{m}.tsv")
                                                                for _, info in self.bases)]
            if self._per_degradation else [],
        }

    # -- which files
    def _level_file(self, info: Mapping[str, Any], level: float) -> str:
        if level == 0:
            return f"{info['file']}.tsv"
        name = next(k for k, v in MMDBENCH_LEVELS.items() if v == level)
        return f"{info['file']}_LOW_LEVEL_{name}.tsv"

    @property
    def _asks_base(self) -> bool:
        """Whether the base questions are asked on level files (or the clean file)."""
        return self.mode != "per-degradation" or 0.0 in self.levels

    @property
    def _per_degradation(self) -> bool:
        return self.mode in ("all", "per-degradation") and MMDBENCH_PER_DEGRADATION_LEVEL in self.levels

    def _plan_levels(self, levels: Sequence[float] | None) -> list[float]:
        held: dict[float, str] = {}
        for _key, info in self.bases:
            here = {0.0: "clean"} if self.files.has(f"{info['file']}.tsv") else {}
            if self.mode != "per-degradation":
                base = info["file"]
                here |= {v: k for k, v in MMDBENCH_LEVELS.items() if self.files.has(f"{base}_LOW_LEVEL_{k}.tsv")}
            if self.mode != "mixed" and any(self.files.has(f"{info['file']}_{m}.tsv") for m in self.methods):
                here.setdefault(MMDBENCH_PER_DEGRADATION_LEVEL, "HIGH (per-degradation files)")
            held = here if not held else {k: v for k, v in held.items() if k in here}
        if not held:
            wanted = ", ".join(f"{info['file']}_LOW_LEVEL_{{LOW,MID,HIGH}}.tsv" for _, info in self.bases)
            raise ConfigError("benchmark", f"no MMD-Bench files in {self.files.where()} (looked for {wanted})",
                              value=self.spec.name,
                              fix="download CUDAOUTOFMEMORY/MMD-Bench and pass mmdbench:BASE@FOLDER, or set LMUData")
        bases = ", ".join(info["file"] for _, info in self.bases)
        fix = ("e.g. --levels low,mid,high; clean needs the base benchmark's VLMEvalKit file "
               f"({', '.join(info['file'] + '.tsv' for _, info in self.bases)}) next to the MMD-Bench files "
               "or in $LMUData")
        return _check_levels(f"MMD-Bench ({bases})", levels, held, fix)

    def _question_file(self, info: Mapping[str, Any]) -> str:
        """The file the questions are read from: the base benchmark's own file when it is there
        (every MMD-Bench file is a copy of it with other images), else a level file."""
        order = [0.0] + [lv for lv in (0.23, 0.45, 0.9) if lv in self.levels] + [0.23, 0.45, 0.9]
        for lv in order:
            name = self._level_file(info, lv)
            if self.files.has(name):
                return name
        for m in self.methods:
            if self.files.has(f"{info['file']}_{m}.tsv"):
                return f"{info['file']}_{m}.tsv"
        raise ConfigError("benchmark", f"no MMD-Bench file of {info['file']} for the levels asked", value=info["file"])

    def _count(self, key: str, info: Mapping[str, Any]) -> int:
        import pandas as pd

        path = self.files.path(self._question_file(info))
        n = len(pd.read_csv(path, sep="\t", usecols=["index"], dtype=str))
        n = n if self.limit is None else min(n, self.limit)
        per = sum(self.files.has(f"{info['file']}_{m}.tsv") for m in self.methods) if self._per_degradation else 0
        return n * (int(self._asks_base) + per)

    def __len__(self) -> int:
        return sum(self._sizes.values())

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "dataset": MMDBENCH_REPO,
            "split": "test",
            "bases": {key: info["file"] for key, info in self.bases},
            "part": self.mode,
            "circular": [f"mmdbench-{key}" for key, info in self.bases if _circular_name(info["file"])],
            "scoring": sorted(self.scorer_names()),
            "predegraded": self.predegraded,
            "rows": len(self),
        }

    def _spec(self, key: str, info: Mapping[str, Any], path: str) -> BenchmarkSpec:
        return _tsv_spec(f"mmdbench-{key}", path, strip=tuple(info.get("strip", ())),
                         scoring=info.get("scoring", MATCH), circular=_circular_name(info["file"]))

    def scorer_names(self) -> set[str]:
        return {info.get("scoring", MATCH) for _, info in self.bases}

    def scorer_name(self, sample: Sample) -> str:
        key = sample.id.split(":", 1)[0].removeprefix("mmdbench-")
        return MMDBENCH_BASES.get(key, {}).get("scoring", MATCH)

    # -- samples
    def __iter__(self) -> Iterator[Sample | BadRow]:
        for key, info in self.bases:
            if self._asks_base:
                yield from self._base_samples(key, info)
            if self._per_degradation:
                yield from self._method_samples(key, info)
            self._current = None
            self._release()

    def _level_tables(self, key: str) -> dict[float, tuple[str, dict[Any, Any]]]:
        """The level files of base ``key`` by index (one base is held at a time)."""
        if self._current is not None and self._current[0] == key:
            return self._current[1]
        self._current = None
        self._release()
        info = MMDBENCH_BASES.get(key) or dict(self.bases)[key]
        tables = {}
        for lv in self.levels:
            if lv == MMDBENCH_PER_DEGRADATION_LEVEL and self.mode == "per-degradation":
                continue
            name = self._level_file(info, lv)
            if self.files.has(name):
                tables[lv] = (name, self._table(self.files.path(name)).by_index())
        self._current = (key, tables)
        return tables

    def _base_samples(self, key: str, info: Mapping[str, Any]) -> Iterator[Sample | BadRow]:
        self._level_tables(key)
        qpath = self.files.path(self._question_file(info))
        reader = self._reader(self._spec(key, info, qpath), self._table(qpath))
        for i, row in enumerate(reader.ds):
            if self.limit is not None and i >= self.limit:
                return
            try:
                yield reader.row_sample(i, row)
            except ValueError as exc:
                yield BadRow(reader._id(i, row), f"row {i}: {exc}")

    def _method_samples(self, key: str, info: Mapping[str, Any]) -> Iterator[Sample | BadRow]:
        for m in self.methods:
            name = f"{info['file']}_{m}.tsv"
            if not self.files.has(name):
                continue
            path = self.files.path(name)
            reader = self._reader(self._spec(key, info, path), self._table(path))
            for i, row in enumerate(reader.ds):
                if self.limit is not None and i >= self.limit:
                    break
                try:
                    s = reader.row_sample(i, row)
                except ValueError as exc:
                    yield BadRow(f"{reader._id(i, row)}@{m}", f"{name} row {i}: {exc}")
                    continue
                yield replace(s, id=f"{s.id}@{m}")
            self._tables.pop(path, None)

    def plan(self, sample: Sample, levels: Sequence[float]) -> list[LevelImage]:
        key = sample.id.split(":", 1)[0].removeprefix("mmdbench-")
        method = sample.id.rpartition("@")[2] if "@" in sample.id else None
        if method in MMDBENCH_METHODS:  # asked on a per-degradation file: the sample holds that file's image
            from factory.degrade import canonical_name, get

            lv = MMDBENCH_PER_DEGRADATION_LEVEL
            deg = canonical_name(method)
            file = f"{dict(self.bases)[key]['file']}_{method}.tsv"
            extra = {"degradation": deg, "stage": get(deg).stage, "source": file, "variant": "per-degradation"}
            return [LevelImage(lv, sample, extra)] if lv in levels else []
        out = []
        tables = self._level_tables(key)
        index = _index_of(sample.id)
        for lv in levels:
            if lv not in tables:
                continue
            name, rows = tables[lv]
            extra: dict[str, Any] = {"source": name}
            if lv > 0:
                extra["type_truth"] = _TYPE_UNKNOWN
            out.append(LevelImage(lv, _with_image(sample, rows, index, name), extra))
        return out


def _index_of(sample_id: str) -> Any:
    raw = sample_id.split(":", 1)[1].split("@", 1)[0]
    return int(raw) if re.fullmatch(r"-?\d+", raw) else raw


def _with_image(sample: Sample, rows: Mapping[Any, Mapping[str, Any]], index: Any, name: str) -> Sample:
    """``sample`` with the image of row ``index`` of another file of the same benchmark (its
    question must be the same: a copy of the base file), or a sample whose image fails clearly."""
    row = rows.get(index)
    if row is None:
        return replace(sample, image=_Missing(f"{name} has no row with index {index}"))
    q = row.get("question")
    if not _missing(q) and _norm(str(q)) not in _norm(sample.question) and _norm(sample.question) not in _norm(str(q)):
        return replace(sample, image=_Missing(f"{name} row {index} holds another question ({str(q)[:60]!r})"))
    try:
        return replace(sample, image=image_cell(row.get("image"), None))
    except ValueError as exc:
        return replace(sample, image=_Missing(f"{name} row {index}: {exc}"))


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()[:80]


class _Missing:
    """An image that cannot be shown: raises its reason when the runner loads it (that question
    and level are recorded in ``errors.jsonl``)."""

    def __init__(self, reason: str):
        self.reason = reason

    def __call__(self) -> Any:
        raise ValueError(self.reason)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Missing, (self.reason,))


# ---------------------------------------------------------------- R-Bench


class RBench(_Published):
    """R-Bench as VLMEvalKit registers it (see the module docstring); ids ``rbench:<index>``."""

    def __init__(self, *, local: str | None = None, limit: int | None = None, levels: Sequence[float] | None = None):
        self.files = Files(RBENCH_REPO, local)
        if not self.files.has(RBENCH_FILES["dis"]):
            raise ConfigError("benchmark", f"no {RBENCH_FILES['dis']} in {self.files.where()}", value="rbench",
                              fix="download it from lcysyzxdxc/R-Bench and pass rbench@FOLDER, or set LMUData")
        path = self.files.path(RBENCH_FILES["dis"])
        super().__init__(_tsv_spec("rbench", path, about="R-Bench-Dis (published corrupted images)"), limit=limit)
        self.table = self._table(path)
        self.reader = self._reader(self.spec, self.table)
        cols = self.table.column_names
        self.level_column = next((c for c in ("strength", "level") if c in cols), None)
        self.type_column = "type" if "type" in cols else None
        held = {self._level(r): "" for r in self.table}
        held.pop(None, None)
        names = {v: k for k, v in RBENCH_LEVELS.items() if not k.isdigit()}
        held = {lv: names.get(lv, "all strengths") for lv in held}
        self.ref = None
        if self.files.has(RBENCH_FILES["ref"]):
            self.ref = self._table(self.files.path(RBENCH_FILES["ref"])).by_index()
            held[0.0] = "clean (R-Bench-Ref)"
        fix = "e.g. --levels " + ",".join("clean" if x == 0 else f"{x:g}" for x in sorted(held))
        self.levels = _check_levels("R-Bench", levels, held, fix)
        self.predegraded = {
            "source": "R-Bench (arXiv 2410.05474), " + self.files.where(),
            "applied_by_us": False,
            "levels": {f"{k:g}": v for k, v in held.items()},
            "per_degradation": [],
        }

    def _level(self, row: Mapping[str, Any]) -> float | None:
        if self.level_column is None:
            return RBENCH_ALL_STRENGTHS
        v = row.get(self.level_column)
        if _missing(v):
            return None
        key = str(v).strip().lower()
        key = key[:-2] if key.endswith(".0") else key
        return RBENCH_LEVELS.get(key)

    def _task(self, row: Mapping[str, Any]) -> str:
        t = str(row.get(self.type_column) or "MCQ").strip().upper() if self.type_column else "MCQ"
        return t if t in RBENCH_SCORERS else "MCQ"

    def __len__(self) -> int:
        return len(self.table) if self.limit is None else min(len(self.table), self.limit)

    def describe(self) -> dict[str, Any]:
        return {"name": "rbench", "dataset": RBENCH_REPO, "split": "test", "files": dict(RBENCH_FILES),
                "scoring": sorted(self.scorer_names()), "predegraded": self.predegraded, "rows": len(self)}

    def scorer_names(self) -> set[str]:
        return {RBENCH_SCORERS[self._task(r)] for r in self.table}

    def scorer_name(self, sample: Sample) -> str:
        return self._scorers.get(sample.id, MATCH)

    def __iter__(self) -> Iterator[Sample | BadRow]:
        self._scorers: dict[str, str] = {}
        self._level_of: dict[str, float | None] = {}
        self._distortion_of: dict[str, Any] = {}
        for i, row in enumerate(self.table):
            if self.limit is not None and i >= self.limit:
                return
            sid = self.reader._id(i, row)
            try:
                s = self._sample(i, row)
            except ValueError as exc:
                yield BadRow(sid, f"row {i}: {exc}")
                continue
            self._scorers[s.id] = RBENCH_SCORERS[self._task(row)]
            self._level_of[s.id] = self._level(row)
            self._distortion_of[s.id] = None if _missing(row.get("distortion")) else row.get("distortion")
            yield s

    def _sample(self, i: int, row: Mapping[str, Any]) -> Sample:
        task = self._task(row)
        if task == "MCQ":
            if not any(len(k) == 1 and "A" <= k <= "Z" and not _missing(v) for k, v in row.items()) and not _missing(
                row.get("choice")
            ):
                # the authors' release writes the options in one cell: "A.running; B.Play football; ..."
                _, opts = split_inline_options(str(row["choice"]))
                row = {**row, **{chr(65 + j): o for j, o in enumerate(opts)}}
            return self.reader.row_sample(i, row)
        answer = "" if _missing(row.get("answer")) else str(row["answer"]).strip()
        captions: list[str] = []
        if task == "CAP":
            from .benchmarks import _as_list

            captions = [str(c) for c in _as_list(answer, "captions")]
        return Sample(
            id=self.reader._id(i, row),
            question="" if _missing(row.get("question")) else str(row["question"]).strip(),
            choices=[],
            answer=answer if task == "VQA" else "",
            answer_text=answer if task == "VQA" else " | ".join(captions),
            image=image_cell(row.get("image"), None),
            split="test",
            direct_answers=captions,
        )

    def plan(self, sample: Sample, levels: Sequence[float]) -> list[LevelImage]:
        out = []
        lv = self._level_of.get(sample.id)
        index = _index_of(sample.id)
        for want in levels:
            if want == 0 and self.ref is not None:
                out.append(LevelImage(0.0, _with_image(sample, self.ref, index, RBENCH_FILES["ref"]),
                                      {"source": RBENCH_FILES["ref"]}))
            elif lv is not None and want == lv:
                extra: dict[str, Any] = {"source": RBENCH_FILES["dis"], "type_truth": _TYPE_UNKNOWN}
                if self._distortion_of.get(sample.id) is not None:
                    extra["distortion"] = self._distortion_of[sample.id]
                out.append(LevelImage(lv, sample, extra))
        return out


FAMILIES["mmdbench"] = open_benchmark
FAMILIES["rbench"] = open_benchmark
