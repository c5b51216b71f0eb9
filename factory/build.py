"""Dataset build: source → recipe → degrade → chain → row → parquet shards (Hub layout), resumable.

Output folder (a Hugging Face dataset repo)::

    OUT/README.md                                         dataset card (YAML configs + statistics)
    OUT/build.json                                        manifest: source, seed, recipe, backend, counts, command
    OUT/data/sft/train-00000-of-0000N.parquet             25 % of train (configurable)
    OUT/data/rl/train-00000-of-0000N.parquet              the other 75 %
    OUT/data/validation/validation-00000-of-0000N.parquet the source's validation split (both configs)
    OUT/errors.jsonl                                      failed samples: id, split, stage, reason
    OUT/report/                                           plots + summary (factory.report)
    OUT/.build/                                           resume state (never published)

How it survives a crash: samples are processed in fixed chunks in source order. A chunk's rows
go to temporary part files that are renamed into place, then a ``.done`` marker is written; a
re-run skips chunks with a marker and redoes the rest, so after ``kill -9`` at any moment the
same command continues and the final dataset equals an uninterrupted build. Which config (sft or
rl) a training sample lands in is a hash of (seed, id); the recipe depends on (seed, id) too;
images are degraded in worker processes but collected in order: the row hashes do not depend on
``--workers``. Memory is bounded by the chunk size, whatever the dataset size.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from factory.chains.writer import ChainConfig, ChainRequest, write_chains
from factory.degrade.recipes import TrainRecipeConfig, derive_seed

log = logging.getLogger("robust_r1.build")

SPLIT_DIRS = {"train": ("sft", "rl"), "validation": ("validation",)}
IMAGE_FORMATS = {"png": ("PNG", ".png"), "jpeg": ("JPEG", ".jpg"), "webp": ("WEBP", ".webp")}


def features(keep_clean: bool = False):
    """The ``datasets.Features`` of a row (DESIGN.md data contract + ``direct_answers``)."""
    from datasets import Features, Image, List, Value

    f = {
        "id": Value("string"),
        "image": Image(),
        "question": Value("string"),
        "choices": List(Value("string")),
        "answer": Value("string"),
        "answer_text": Value("string"),
        "direct_answers": List(Value("string")),
        "degradations": List(
            {"name": Value("string"), "stage": Value("string"), "intensity": Value("float64"), "params": Value("string")}
        ),
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
    if keep_clean:
        f = {**dict(list(f.items())[:2]), "clean_image": Image(), **dict(list(f.items())[2:])}
    return Features(f)


@dataclass
class BuildConfig:
    """Everything a build needs. The defaults build the demo dataset with the template backend."""

    source: str = "demo"
    """``demo``, ``aokvqa``, a local path or a Hub repo id."""
    out: str = "dataset"
    splits: tuple[str, ...] = ("train", "validation")
    limit: int | None = None
    """At most this many samples per split (the first ones, in source order)."""
    seed: int = 0
    workers: int = 1
    sft_fraction: float = 0.25
    keep_clean: bool = False
    image_format: str = "png"
    """``png`` (lossless, default), ``jpeg`` (quality 95) or ``webp`` (lossless)."""
    chunk_size: int = 256
    columns: dict[str, str] | None = None
    recipe: TrainRecipeConfig = field(default_factory=TrainRecipeConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    command: str | None = None
    """The command line recorded in the card (set by the CLI)."""
    report: bool = True
    """Write report/ and the card at the end."""

    def validate(self) -> None:
        if not 0.0 <= self.sft_fraction <= 1.0:
            raise ValueError(f"--sft-fraction must be in [0, 1], got {self.sft_fraction!r}.")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(f"--image-format {self.image_format!r}: use png, jpeg or webp.")
        for s in self.splits:
            if s not in SPLIT_DIRS:
                raise ValueError(f"--split {s!r}: use train and/or validation.")
        if self.workers < 1 or self.chunk_size < 1:
            raise ValueError("--workers and chunk size must be >= 1.")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"--limit must be >= 0, got {self.limit!r}.")
        self.recipe.validate()


@dataclass
class BuildSummary:
    out: Path
    counts: dict[str, int]
    errors: int
    seconds: float
    samples_per_s: float

    def lines(self) -> list[str]:
        return [
            f"dataset: {self.out}",
            "rows: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()),
            f"errors: {self.errors}" + (f" (see {self.out / 'errors.jsonl'})" if self.errors else ""),
            f"time: {self.seconds:.1f} s ({self.samples_per_s:.1f} samples/s)",
        ]


# ---------------------------------------------------------------- worker side


def _encode(img, fmt: str) -> bytes:
    from PIL import Image

    pil_fmt, _ = IMAGE_FORMATS[fmt]
    buf = io.BytesIO()
    kwargs = {"PNG": {"compress_level": 6}, "JPEG": {"quality": 95}, "WEBP": {"lossless": True}}[pil_fmt]
    Image.fromarray(img).save(buf, format=pil_fmt, **kwargs)
    return buf.getvalue()


def _degrade_job(job: tuple) -> dict[str, Any]:
    """Load, recipe, render and encode one sample (runs in a worker process)."""
    import cv2

    from factory import degrade

    cv2.setNumThreads(1)
    degrade.tune_allocator()
    sample, seed, recipe_cfg, fmt, keep_clean, want_arrays = job
    try:
        clean = sample.load_image()
    except ValueError as exc:
        return {"id": sample.id, "error": str(exc), "stage": "load"}
    try:
        recipe = degrade.sample_train(seed, sample.id, recipe_cfg)
        out = degrade.render(clean, recipe)
        return {
            "id": sample.id,
            "recipe": recipe,
            "image": _encode(out, fmt),
            "clean": _encode(clean, fmt) if keep_clean else None,
            "arrays": (clean, out) if want_arrays else None,
        }
    except Exception as exc:  # noqa: BLE001 - recorded, never fatal
        return {"id": sample.id, "error": f"{type(exc).__name__}: {exc}", "stage": "degrade"}


# ---------------------------------------------------------------- builder


def _chunks(it: Iterator, size: int, limit: int | None) -> Iterator[list]:
    batch, n = [], 0
    for x in it:
        if limit is not None and n >= limit:
            break
        batch.append(x)
        n += 1
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def config_for(seed: int, sample_id: str, sft_fraction: float) -> str:
    """``sft`` or ``rl`` for a training sample: a hash of (seed, id), stable under resume/workers."""
    u = derive_seed(seed, "config-split", sample_id) / float(2**63)
    return "sft" if u < sft_fraction else "rl"


def row_hash(row: dict[str, Any]) -> str:
    """Content hash of a row (images by their bytes)."""
    h = hashlib.sha256()
    for k in sorted(row):
        v = row[k]
        if isinstance(v, dict) and "bytes" in v:
            v = v["bytes"]
        h.update(k.encode())
        h.update(v if isinstance(v, (bytes, bytearray)) else json.dumps(v, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _state_key(cfg: BuildConfig) -> dict[str, Any]:
    """What must not change between a crashed run and its resume."""
    chain = asdict(cfg.chain)
    chain.pop("api_key", None)
    chain.pop("cache_dir", None)
    chain.pop("concurrency", None)
    return {
        "source": cfg.source,
        "columns": cfg.columns,
        "seed": cfg.seed,
        "limit": cfg.limit,
        "sft_fraction": cfg.sft_fraction,
        "keep_clean": cfg.keep_clean,
        "image_format": cfg.image_format,
        "chunk_size": cfg.chunk_size,
        "recipe": asdict(cfg.recipe),
        "chain": chain,
    }


def _write_chunk(split: str, k: int, results: list[dict], reports, cfg: BuildConfig, state: Path, feats) -> tuple[dict[str, int], int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ext = IMAGE_FORMATS[cfg.image_format][1]
    rows: dict[str, list[dict]] = {d: [] for d in SPLIT_DIRS[split]}
    errors = []
    chain_by_id = {r.sample_id: r for r in reports}
    for res in results:
        sample = res["sample"]
        if "error" in res:
            errors.append({"id": sample.id, "split": split, "stage": res["stage"], "reason": res["error"]})
            continue
        ch = chain_by_id[sample.id]
        if not ch.ok:
            errors.append({"id": sample.id, "split": split, "stage": "chain", "reason": ch.reason})
            continue
        recipe = res["recipe"]
        row = {
            "id": sample.id,
            "image": {"bytes": res["image"], "path": f"{sample.id.replace(':', '_').replace('/', '_')}{ext}"},
            "question": ch.question,
            "choices": sample.choices,
            "answer": sample.answer,
            "answer_text": sample.answer_text,
            "direct_answers": sample.direct_answers,
            "degradations": recipe.degradation_records(),
            "total_intensity": recipe.total_intensity,
            "type": ch.type,
            "influence": ch.influence,
            "reasoning": ch.reasoning,
            "conclusion": ch.conclusion,
            "solution": ch.solution,
            "prompt": ch.prompt,
            "target_words": ch.target_words,
            "backend": ch.backend,
        }
        if cfg.keep_clean:
            row["clean_image"] = {"bytes": res["clean"], "path": row["image"]["path"]}
        dest = "validation" if split == "validation" else config_for(cfg.seed, sample.id, cfg.sft_fraction)
        rows[dest].append(row)
    counts = {}
    schema = feats.arrow_schema
    for dest, rs in rows.items():
        counts[dest] = len(rs)
        if not rs:
            continue
        target = state / split / f"{dest}-{k:06d}.parquet"
        tmp = target.with_name(f".{target.name}.tmp")
        table = pa.Table.from_pylist(rs, schema=schema)
        pq.write_table(table, tmp, row_group_size=64)
        tmp.replace(target)
    err_path = state / split / f"errors-{k:06d}.jsonl"
    _atomic_write_text(err_path, "".join(json.dumps(e) + "\n" for e in errors))
    _atomic_write_text(state / split / f"chunk-{k:06d}.done", json.dumps({"counts": counts, "errors": len(errors)}))
    return counts, len(errors)


def _assemble(out: Path, state: Path, cfg: BuildConfig) -> dict[str, int]:
    """Hard-link the chunk parts into Hub-named shards (idempotent, no copy)."""
    data = out / "data"
    if data.exists():
        shutil.rmtree(data)
    totals: dict[str, int] = {}
    import pyarrow.parquet as pq

    for split in cfg.splits:
        for dest in SPLIT_DIRS[split]:
            parts = sorted((state / split).glob(f"{dest}-*.parquet"))
            name = "validation" if dest == "validation" else "train"
            target_dir = data / dest
            target_dir.mkdir(parents=True, exist_ok=True)
            n = 0
            for i, p in enumerate(parts):
                final = target_dir / f"{name}-{i:05d}-of-{len(parts):05d}.parquet"
                try:
                    os.link(p, final)
                except OSError:
                    shutil.copy2(p, final)
                n += pq.ParquetFile(p).metadata.num_rows
            totals[dest if dest != "validation" else "validation"] = n
    return totals


def build(cfg: BuildConfig, *, progress: bool = True) -> BuildSummary:
    """Build (or resume) the dataset described by ``cfg``; returns counts and timing."""
    from tqdm import tqdm

    from factory.sources import open_source

    cfg.validate()
    out = Path(cfg.out)
    state = out / ".build"
    state.mkdir(parents=True, exist_ok=True)
    key = _state_key(cfg)
    key_path = state / "config.json"
    if key_path.exists():
        previous = json.loads(key_path.read_text())
        if previous != json.loads(json.dumps(key, default=str)):
            changed = sorted(k for k in key if json.dumps(previous.get(k), default=str) != json.dumps(key[k], default=str))
            raise ValueError(
                f"{out}: holds a partial build with different settings ({', '.join(changed)}); "
                "use another --out folder or delete it to start over."
            )
    else:
        _atomic_write_text(key_path, json.dumps(key, indent=2, default=str))
    feats = features(cfg.keep_clean)
    want_arrays = cfg.chain.backend != "template" and cfg.chain.vision
    t0 = time.perf_counter()
    processed = 0
    pool = ProcessPoolExecutor(max_workers=cfg.workers) if cfg.workers > 1 else None
    try:
        for split in cfg.splits:
            source = open_source(cfg.source, split, cfg.columns)
            (state / split).mkdir(parents=True, exist_ok=True)
            total = len(source) if cfg.limit is None else min(cfg.limit, len(source))
            bar = tqdm(total=total, desc=f"build {split}", unit="sample", disable=not progress or None)
            for k, chunk in enumerate(_chunks(iter(source), cfg.chunk_size, cfg.limit)):
                if (state / split / f"chunk-{k:06d}.done").exists():
                    bar.update(len(chunk))
                    continue
                for stale in (state / split).glob(f".*-{k:06d}.*"):
                    stale.unlink()
                jobs = [(s, cfg.seed, cfg.recipe, cfg.image_format, cfg.keep_clean, want_arrays) for s in chunk]
                mapped = pool.map(_degrade_job, jobs, chunksize=4) if pool else map(_degrade_job, jobs)
                results = []
                for sample, res in zip(chunk, mapped):
                    res["sample"] = sample
                    results.append(res)
                requests = [
                    ChainRequest(
                        sample_id=r["sample"].id,
                        question=r["sample"].question,
                        choices=r["sample"].choices,
                        answer=r["sample"].answer,
                        answer_text=r["sample"].answer_text,
                        recipe=r["recipe"],
                        clean_image=r["arrays"][0] if r.get("arrays") else None,
                        degraded_image=r["arrays"][1] if r.get("arrays") else None,
                    )
                    for r in results
                    if "error" not in r
                ]
                reports = write_chains(requests, cfg.chain).results if requests else []
                for r in results:
                    r.pop("arrays", None)
                _write_chunk(split, k, results, reports, cfg, state, feats)
                processed += len(chunk)
                bar.update(len(chunk))
                bar.set_postfix(samples_per_s=f"{processed / max(1e-9, time.perf_counter() - t0):.1f}")
            bar.close()
    finally:
        if pool:
            pool.shutdown()
    counts = _assemble(out, state, cfg)
    errors = []
    for split in cfg.splits:
        for p in sorted((state / split).glob("errors-*.jsonl")):
            errors += [x for x in p.read_text().splitlines() if x.strip()]
    _atomic_write_text(out / "errors.jsonl", "".join(e + "\n" for e in errors))
    manifest = {
        "version": _version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": cfg.command or f"factory.build.build(BuildConfig(source={cfg.source!r}, seed={cfg.seed}))",
        "source": open_source(cfg.source, cfg.splits[0], cfg.columns).describe(),
        "seed": cfg.seed,
        "backend": cfg.chain.backend_label,
        "recipe": asdict(cfg.recipe),
        "chain": {k: v for k, v in key["chain"].items()},
        "sft_fraction": cfg.sft_fraction,
        "keep_clean": cfg.keep_clean,
        "image_format": cfg.image_format,
        "counts": {"sft": {"train": counts.get("sft", 0)}, "rl": {"train": counts.get("rl", 0)}, "validation": counts.get("validation", 0)},
        "errors": len(errors),
        "features": feats.to_dict(),
    }
    _atomic_write_text(out / "build.json", json.dumps(manifest, indent=2, default=str) + "\n")
    if cfg.report:
        from factory.publish import write_card
        from factory.report import make_report

        make_report(out)
        write_card(out)
    dt = time.perf_counter() - t0
    flat = {"sft": counts.get("sft", 0), "rl": counts.get("rl", 0), "validation": counts.get("validation", 0)}
    return BuildSummary(out, flat, len(errors), dt, processed / dt if dt > 0 and processed else 0.0)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("robust-r1")
    except Exception:  # noqa: BLE001 - source checkout without metadata
        return "0+unknown"


def demo(out: str | Path = "demo-output", *, seed: int = 0, workers: int = 1, progress: bool = True) -> BuildSummary:
    """The embedded default: the bundled source, template backend, report and card."""
    cfg = BuildConfig(source="demo", out=str(out), seed=seed, workers=workers, command=f"robust-r1 demo --out {out} --seed {seed}")
    return build(cfg, progress=progress)
