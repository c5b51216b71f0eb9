"""Resume state of a build (``OUT/.build/``): what must not change between a crashed run and its
resume, which chunks are done, and the events of the chunks still to do.

A split is cut into fixed chunks of ``shard_size`` samples in source order. A chunk is done when
its ``chunk-NNNNNN.done`` marker exists (written last, after its shards and errors file); a re-run
removes every file of an unfinished chunk and redoes it from scratch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from factory.errors import ConfigError
from factory.layout import atomic_write

from .config import BuildConfig, chain_key
from .jobs import ChunkEnd, SampleEvent

KEY_FILE = "config.json"
"""The resume key, in ``OUT/.build/``."""


def source_key(source) -> str:
    """A source's identity, whatever the split (its ``describe()`` without ``split``)."""
    d = source.describe() if hasattr(source, "describe") else {"repr": repr(source)}
    return json.dumps({k: v for k, v in d.items() if k != "split"}, sort_keys=True, default=str)


def state_key(cfg: BuildConfig, source: str) -> dict[str, Any]:
    """What must not change between a crashed run and its resume."""
    return {
        "source": source,
        "columns": cfg.columns,
        "seed": cfg.seed,
        "limit": cfg.limit,
        "sft_fraction": cfg.sft_fraction,
        "keep_clean": cfg.keep_clean,
        "image_format": cfg.image_format,
        "shard_size": cfg.shard_size,
        "recipe": asdict(cfg.recipe),
        "style": cfg.style,
        "chain": chain_key(cfg.chain),
    }


def check_state(state: Path, key: dict[str, Any], out: Path) -> None:
    """Record ``key`` in a new state folder, or refuse to resume one built with other settings."""
    key = json.loads(json.dumps(key, default=str))
    key_path = state / KEY_FILE
    if key_path.exists():
        previous = json.loads(key_path.read_text())
        if previous != key:
            changed = sorted(k for k in set(key) | set(previous) if previous.get(k) != key.get(k))
            raise ConfigError(
                "out",
                f"holds a build with different settings ({', '.join(changed)}); run the same command to "
                "resume it, or use another output folder (or delete this one) to start over.",
                value=str(out),
            )
    else:
        atomic_write(key_path, json.dumps(key, indent=2) + "\n")


def done_chunks(d: Path) -> set[int]:
    """The chunks of the split folder ``d`` with a ``.done`` marker."""
    return {int(p.name[6:12]) for p in d.glob("chunk-*.done")}


def clear_unfinished(d: Path, done: set[int]) -> None:
    """Remove every file of a chunk without a ``.done`` marker (and stray temporaries)."""
    for p in d.iterdir():
        m = re.search(r"-(\d{6})\.", p.name)
        if p.name.endswith(".tmp") or (m and int(m.group(1)) not in done):
            p.unlink()


def events(samples: Iterable, shard: int, done: set[int]) -> Iterator[SampleEvent | ChunkEnd]:
    """A :class:`SampleEvent` per sample of the chunks to do, a :class:`ChunkEnd` after each."""
    n = 0
    for n, s in enumerate(samples, 1):
        k = (n - 1) // shard
        if k in done:
            continue
        yield SampleEvent(k, (n - 1) % shard, s)
        if n % shard == 0:
            yield ChunkEnd(k)
    if n % shard and (n - 1) // shard not in done:
        yield ChunkEnd((n - 1) // shard)
