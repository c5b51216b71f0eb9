"""One chunk of a split: its rows stream into temporary parquet files (one per config), and
:meth:`ChunkWriter.commit` makes the chunk durable (rename, errors file, then the ``.done`` marker).

A chunk with samples whose chain failed because the LLM service did (an outage, a wrong key:
``ChainResult.retry``) is committed with a ``.retry`` marker instead of ``.done``: its rows and
errors are used by this run's dataset, and the next run redoes the whole chunk (the response cache
makes the chains already written free), so the final dataset equals an uninterrupted build.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from factory.layout import IMAGE_COLUMNS, SPLIT_DIRS, atomic_write, error_record, errors_text
from factory.secrets import find_secrets, redact

from .config import IMAGE_FORMATS, BuildConfig
from .jobs import Failure, Prepared, Result
from .rows import check_row, config_for, make_row

log = logging.getLogger("robust_r1.build")


def _write_chains(requests: list, chain_cfg) -> list:
    """The one place that talks to the chain writer (``factory.chains.writer``).

    Returns one result per request, in order, each with ``ok``, ``reason`` and the chain fields
    ``type, influence, reasoning, conclusion, answer, solution, prompt, question, target_words,
    backend``.
    """
    from factory.chains.writer import write_chains

    if not requests:
        return []
    res = write_chains(requests, chain_cfg)
    return list(getattr(res, "results", res))


def _chain_request(sample, prepared: Prepared):
    from factory.chains.writer import ChainRequest

    arrays = prepared.arrays or (None, None)
    return ChainRequest(
        sample_id=sample.id,
        question=sample.question,
        choices=list(sample.choices),
        answer=sample.answer,
        answer_text=sample.answer_text,
        recipe=prepared.recipe,
        clean_image=arrays[0],
        degraded_image=arrays[1],
    )


def chunk_files(state: Path, split: str, k: int) -> dict[str, Path]:
    """The files of chunk ``k`` in ``state/split``: its ``errors``, its ``done`` marker and the
    ``retry`` marker of a chunk left for the next run."""
    d = state / split
    return {
        "errors": d / f"errors-{k:06d}.jsonl",
        "done": d / f"chunk-{k:06d}.done",
        "retry": d / f"chunk-{k:06d}.retry",
    }


TEXT_COLUMNS = ("id", "question", "answer", "answer_text", "type", "influence", "reasoning", "conclusion",
                "solution", "prompt", "backend")
"""The text columns of a row scanned for credentials before it is written."""


class ChunkWriter:
    """Streams the rows of chunk ``k`` of ``split`` into per-config temporary parquet files."""

    def __init__(self, split: str, k: int, cfg: BuildConfig, state: Path, feats, chain_batch: int):
        self.split, self.k, self.cfg, self.state, self.dir = split, k, cfg, state, state / split
        self.schema = feats.arrow_schema
        self.chain_batch = chain_batch
        self.pending: list[tuple[int, Any, Prepared]] = []
        self.buffers: dict[str, list[tuple[int, dict]]] = {d: [] for d in SPLIT_DIRS[split]}
        self.writers: dict[str, Any] = {}
        self.counts: dict[str, int] = {d: 0 for d in SPLIT_DIRS[split]}
        self.errors: list[tuple[int, dict]] = []
        self.deferred = 0
        """Samples whose chain failed because of the service: the next run retries the chunk."""
        self.suffix = IMAGE_FORMATS[cfg.image_format]

    def error(self, i: int, sample_id: str, stage: str, reason: str, retry: bool = False) -> None:
        rec = error_record(sample_id, stage, redact(reason, self.cfg.chain.api_key), self.split)
        if retry:
            rec["retry"] = True
            self.deferred += 1
        self.errors.append((i, rec))

    def add(self, i: int, sample, res: Result) -> None:
        if isinstance(res, Failure):
            self.error(i, sample.id, res.stage, res.reason)
            return
        self.pending.append((i, sample, res))
        if len(self.pending) >= self.chain_batch:
            self._flush_chains()

    def _flush_chains(self) -> None:
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        try:
            results = _write_chains([_chain_request(s, r) for _, s, r in pending], self.cfg.chain)
        except Exception as exc:  # noqa: BLE001 - a broken batch fails its samples, not the build
            log.exception("chain writer failed on a batch of %d", len(pending))
            results = [None] * len(pending)
            reason = f"chain writer: {type(exc).__name__}: {exc}"  # not the samples' fault: retried
        for (i, sample, prepared), ch in zip(pending, results):
            if ch is None or not ch.ok:
                if ch is None:
                    self.error(i, sample.id, "chain", reason, retry=True)
                else:
                    self.error(i, sample.id, "chain", ch.reason or "failed", retry=bool(getattr(ch, "retry", False)))
                continue
            row = make_row(sample, prepared, ch, suffix=self.suffix, keep_clean=self.cfg.keep_clean)
            problem = check_row(row, prepared.recipe) or self._credentials(row)
            if problem:
                self.error(i, sample.id, "write", f"{sample.id}: {problem}")
                continue
            if self.split == "validation":
                dest = "validation"
            else:
                dest = config_for(self.cfg.seed, sample.id, self.cfg.sft_fraction)
            self.buffers[dest].append((i, row))
            if len(self.buffers[dest]) >= self.cfg.row_group_size:
                self._flush_rows(dest)

    def _credentials(self, row: dict) -> str | None:
        """A reason when a text column of ``row`` holds a live secret or a credential (never quoted)."""
        texts = [v for v in (row.get(c) for c in TEXT_COLUMNS) if isinstance(v, str)]
        if not find_secrets("\n".join(texts), [self.cfg.chain.api_key]):  # one scan per row; columns if found
            return None
        for col in TEXT_COLUMNS:
            value = row.get(col)
            if isinstance(value, str) and (kinds := find_secrets(value, [self.cfg.chain.api_key])):
                return f"column {col} contains a credential ({', '.join(kinds)}); the row is not written"
        return None

    def _table(self, items: list[tuple[int, dict]]):
        import pyarrow as pa

        try:
            return pa.Table.from_pylist([r for _, r in items], schema=self.schema)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            good = []
            for i, r in items:  # find the row(s) that do not fit the schema
                try:
                    pa.Table.from_pylist([r], schema=self.schema)
                    good.append(r)
                except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                    self.error(i, r["id"], "write", f"{r['id']}: row does not fit the schema ({exc})")
            return pa.Table.from_pylist(good, schema=self.schema)

    def _flush_rows(self, dest: str) -> None:
        import pyarrow.parquet as pq

        items, self.buffers[dest] = self.buffers[dest], []
        if not items:
            return
        table = self._table(items)
        if table.num_rows == 0:
            return
        try:
            if dest not in self.writers:
                plain = [c for c in self.schema.names if c not in IMAGE_COLUMNS]
                self.writers[dest] = pq.ParquetWriter(
                    self._tmp(dest), self.schema, compression="snappy", use_dictionary=plain, write_statistics=plain
                )
            self.writers[dest].write_table(table, row_group_size=self.cfg.row_group_size)
        except OSError as exc:  # a full disk: name the file (pyarrow does not)
            raise OSError(exc.errno, exc.strerror or str(exc), exc.filename or str(self._final(dest))) from exc
        self.counts[dest] += table.num_rows

    def _final(self, dest: str) -> Path:
        return self.dir / f"{dest}-{self.k:06d}.parquet"

    def _tmp(self, dest: str) -> Path:
        return self.dir / f".{dest}-{self.k:06d}.parquet.tmp"

    def commit(self) -> tuple[dict[str, int], list[dict]]:
        """Flush everything and make the chunk durable; returns its row counts and error records.

        The chunk is marked ``done`` unless some of its samples failed because of the service
        (:attr:`deferred`): then it is marked ``retry``, and the next run redoes it."""
        self._flush_chains()
        for dest in self.buffers:
            self._flush_rows(dest)
        for dest, w in list(self.writers.items()):
            try:
                w.close()
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror or str(exc), exc.filename or str(self._final(dest))) from exc
            del self.writers[dest]
            os.replace(self._tmp(dest), self._final(dest))
        errors = [e for _, e in sorted(self.errors, key=lambda x: x[0])]
        files = chunk_files(self.state, self.split, self.k)
        atomic_write(files["errors"], errors_text(errors))
        marker = files["retry"] if self.deferred else files["done"]
        info = {"counts": self.counts, "errors": len(errors), "retry": self.deferred}
        atomic_write(marker, json.dumps(info) + "\n")
        return self.counts, errors

    def abort(self) -> None:
        """Close and delete the chunk's temporary files (after an error: frees the disk at once)."""
        for dest, w in list(self.writers.items()):
            try:
                w.close()
            except Exception:  # noqa: BLE001 - best effort: the file is deleted next
                pass
            try:
                self._tmp(dest).unlink()
            except OSError:
                pass
        self.writers.clear()
