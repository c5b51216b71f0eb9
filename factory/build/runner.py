"""The build itself: open the sources, process the unfinished chunks of every split, assemble the
Hub-named shards, write ``errors.jsonl``, ``build.json``, then ``report/`` and the card."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from factory.errors import ConfigError
from factory.layout import (
    DATA,
    DATA_DIRS,
    ERROR_STAGES,
    ERRORS,
    MANIFEST,
    SPLIT_DIRS,
    STATE,
    atomic_write,
    features,
    read_errors,
    shard_name,
    write_errors,
)
from factory.lock import OutputLock
from factory.secrets import redact

from .chunk import ChunkWriter
from .config import BuildConfig, BuildSummary, api_command
from .jobs import Job, Now, SampleEvent, init_worker, ordered, pool, process
from .state import check_state, clear_unfinished, done_chunks, events, source_key, state_key

log = logging.getLogger("robust_r1.build")

COMPLETE = "complete"
"""Marker of a split whose chunks are all done (``OUT/.build/<split>/complete``)."""


def _use_system_allocator():
    """Rows are large (an image each): serve arrow's buffers from glibc's heap, tuned to keep freed
    memory (``degrade.tune_allocator``), instead of an allocator that returns it to the OS after
    each row group; on VMs with costly page faults that halves the time of the main process.
    Returns the previous pool (restored after the build), or None if nothing changed."""
    import pyarrow as pa

    from factory import degrade

    if not degrade.tune_allocator():
        return None
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    return previous


def _mark_complete(d: Path, total: int, n_chunks: int) -> None:
    atomic_write(d / COMPLETE, json.dumps({"samples": total, "chunks": n_chunks}) + "\n")


def _build_split(split, source, cfg: BuildConfig, state: Path, feats, submit, window: int, progress: bool) -> int:
    """Process the unfinished chunks of one split (a chunk marked ``retry`` by the last run is
    unfinished); returns the number of samples processed."""
    from itertools import islice

    from tqdm import tqdm

    d = state / split
    d.mkdir(parents=True, exist_ok=True)
    done = done_chunks(d)
    clear_unfinished(d, done)
    limit = cfg.limit_for(split)
    total = len(source) if limit is None else min(limit, len(source))
    n_chunks = -(-total // cfg.shard_size)
    skipped = sum(min(cfg.shard_size, total - k * cfg.shard_size) for k in done if k < n_chunks)
    if len(done) >= n_chunks:
        _mark_complete(d, total, n_chunks)
        return 0
    if skipped:
        log.info("%s: resuming, %d of %d chunks already done", split, len(done), n_chunks)
    llm = cfg.chain.uses_model
    chain_batch = max(cfg.row_group_size, 4 * cfg.chain.concurrency) if llm else cfg.row_group_size
    job = functools.partial(
        Job,
        seed=cfg.seed,
        recipe=cfg.recipe,
        style=cfg.style,
        image_format=cfg.image_format,
        keep_clean=cfg.keep_clean,
        want_arrays=llm and cfg.chain.vision,
    )
    samples = islice(iter(source), total)
    bar = tqdm(
        total=total,
        initial=skipped,
        desc=f"build {split}",
        unit="sample",
        dynamic_ncols=True,
        disable=None if progress else True,
    )
    processed = errors = 0
    writer: ChunkWriter | None = None
    try:
        for ev, res in ordered(events(samples, cfg.shard_size, done), lambda s: submit(job(s)), window):
            if isinstance(ev, SampleEvent):
                if writer is None:
                    writer = ChunkWriter(split, ev.chunk, cfg, state, feats, chain_batch)
                writer.add(ev.index, ev.sample, res)
                processed += 1
                bar.update(1)
            else:
                if writer is not None:
                    _, errs = writer.commit()
                    errors += len(errs)
                    bar.set_postfix(errors=errors, refresh=False)
                writer = None
    except BaseException:
        if writer is not None:
            writer.abort()  # frees the disk now (a re-run would delete the files anyway)
        raise
    finally:
        bar.close()
    _mark_complete(d, total, n_chunks)
    return processed


def _assemble(out: Path, state: Path) -> dict[str, int]:
    """Hard-link the chunk files of every complete split into Hub-named shards (no copy)."""
    import pyarrow.parquet as pq

    data = out / DATA
    tmp = out / f".{DATA}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    totals = {d: 0 for d in DATA_DIRS}
    for split, dests in SPLIT_DIRS.items():
        if not (state / split / COMPLETE).exists():
            continue
        for dest in dests:
            parts = sorted((state / split).glob(f"{dest}-*.parquet"))
            for i, p in enumerate(parts):
                final = tmp / dest / shard_name(dest, i, len(parts))
                final.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(p, final)
                except OSError:  # a filesystem without hard links
                    shutil.copy2(p, final)
                totals[dest] += pq.ParquetFile(p).metadata.num_rows
    if data.exists():
        shutil.rmtree(data)
    if tmp.exists():
        os.replace(tmp, data)
    return totals


def _scrub(value, secret: str | None):
    """``value`` (JSON data) with every string redacted of secrets (:func:`factory.secrets.redact`)."""
    if isinstance(value, str):
        return redact(value, secret)
    if isinstance(value, dict):
        return {k: _scrub(v, secret) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, secret) for v in value]
    return value


def _preflight(chain) -> None:
    """Construct the chain backend once before anything is written: a missing key or model, a
    bad transport or cache folder is one clear error now, not a failure per sample."""
    if not chain.uses_model:
        return
    from dataclasses import replace

    from factory.chains.backends import run_sync
    from factory.chains.writer import open_backend

    backend = open_backend(replace(chain, cache_dir=None))  # creates nothing on disk
    run_sync(backend.aclose())


def _collect_errors(state: Path) -> list[dict]:
    errors: list[dict] = []
    for split in SPLIT_DIRS:
        if (state / split / COMPLETE).exists():
            for p in sorted((state / split).glob("errors-*.jsonl")):
                errors += read_errors(p)
    return errors


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("robust-r1")
    except Exception:  # noqa: BLE001 - a source checkout without metadata
        return "0+unknown"


def _finish_report(out: Path) -> None:
    """report/ then the card (skipped, with a warning, if their dependencies are missing)."""
    try:
        from factory.report import make_report
    except ImportError as exc:
        log.warning("no report written (%s)", exc)
    else:
        make_report(out)
    try:
        from factory.card import CardEdited, write_card
    except ImportError as exc:
        log.warning("no dataset card written (%s)", exc)
    else:
        try:
            write_card(out)
        except CardEdited as exc:  # hand-written text is kept, and the user told
            log.warning("dataset card not refreshed: %s", exc)


def build(cfg: BuildConfig, *, progress: bool = True) -> BuildSummary:
    """Build (or resume) the dataset described by ``cfg``; returns counts and timing.

    Order of the final steps: shards (hard links, atomic swap of ``data/``), ``errors.jsonl``,
    ``build.json``, then ``report/`` and the card ``README.md``.

    One writer per output folder: the folder is locked (``factory.lock.OutputLock``) and a second
    build into it raises :class:`factory.lock.FolderBusy` naming the first. Samples whose chain
    failed because the LLM service did are left for the next run (``BuildSummary.retry``).
    """
    from factory.sources import normalize_split, open_source, source_splits

    cfg.validate()
    if cfg.splits is None:
        have = [normalize_split(s) for s in source_splits(cfg.source)]
        splits = tuple(s for s in SPLIT_DIRS if s in have)
        if not splits:
            raise ConfigError(
                "splits", f"{cfg.source}: no train or validation split (found {have}); name the splits to build."
            )
    else:
        splits = cfg.splits
    sources = {split: open_source(cfg.source, split, cfg.columns) for split in splits}  # fail before writing
    _preflight(cfg.chain)
    out = Path(cfg.out)
    with OutputLock(out, "build", command=redact(cfg.command or api_command(cfg), cfg.chain.api_key)):
        return _build_locked(cfg, sources, out, progress)


def _build_locked(cfg: BuildConfig, sources: dict, out: Path, progress: bool) -> BuildSummary:
    """:func:`build` once the output folder is locked."""
    import cv2

    state = out / STATE
    state.mkdir(parents=True, exist_ok=True)
    key = state_key(cfg, source_key(next(iter(sources.values()))))
    check_state(state, key, out)
    feats = features(cfg.keep_clean)
    t0 = time.perf_counter()
    processed = 0
    executor = pool(cfg.workers) if cfg.workers > 1 else None
    threads = cv2.getNumThreads()
    memory_pool = _use_system_allocator()
    if executor is None:
        init_worker()
        submit, window = (lambda job: Now(process(job))), 1
    else:
        submit, window = (lambda job: executor.submit(process, job)), 8 * cfg.workers
    described: list[dict] = []
    try:
        for split, source in sources.items():
            described.append(source.describe())
            processed += _build_split(split, source, cfg, state, feats, submit, window, progress)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        else:
            cv2.setNumThreads(threads)
        if memory_pool is not None:
            import pyarrow as pa

            pa.set_memory_pool(memory_pool)
    counts = _assemble(out, state)
    errors = _collect_errors(state)
    write_errors(out / ERRORS, errors)
    retry = [e for e in errors if e.get("retry")]
    source_info = {k: v for k, v in (described[0] if described else {}).items() if k != "split"}
    source_info["splits"] = [s for s in SPLIT_DIRS if (state / s / COMPLETE).exists()]
    manifest = {
        "version": _version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": cfg.command or api_command(cfg),  # credentials removed below, with the rest
        "source": source_info,
        "seed": cfg.seed,
        "backend": cfg.chain.backend_label,
        "recipe": asdict(cfg.recipe),
        "style": cfg.style,
        "chain": key["chain"],
        "sft_fraction": cfg.sft_fraction,
        "keep_clean": cfg.keep_clean,
        "image_format": cfg.image_format,
        "limit": cfg.limit,
        "shard_size": cfg.shard_size,
        "counts": {**{c: {"train": counts[c]} for c in SPLIT_DIRS["train"]}, "validation": counts["validation"]},
        "errors": len(errors),
        "error_stages": {s: sum(e["stage"] == s for e in errors) for s in ERROR_STAGES},
        "retry": len(retry),
        "features": feats.to_dict(),
    }
    manifest = _scrub(json.loads(json.dumps(manifest, default=str)), cfg.chain.api_key)
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    t_rows = time.perf_counter() - t0
    if cfg.report:
        _finish_report(out)
    return BuildSummary(
        out=out,
        counts=counts,
        errors=len(errors),
        seconds=time.perf_counter() - t0,
        processed=processed,
        samples_per_s=processed / t_rows if t_rows > 0 else 0.0,
        error_stages={k: v for k, v in manifest["error_stages"].items() if v},
        report_seconds=time.perf_counter() - t0 - t_rows,
        retry=len(retry),
        retry_reason=retry[0]["reason"] if retry else None,
    )
