"""Dataset build: source → recipe → degrade → chain → row → parquet shards (Hub layout), resumable.

The output folder is the dataset layout of :mod:`factory.layout` (a Hugging Face dataset repo:
``data/{sft,rl,validation}/`` shards, ``build.json``, ``errors.jsonl``, ``report/``, the card
``README.md``, and the resume state ``.build/``, never published).

The package, one responsibility per module:

* :mod:`~factory.build.config`: :class:`BuildConfig`, :class:`BuildSummary`, ``api_command``;
* :mod:`~factory.build.jobs`: the worker side (:class:`~factory.build.jobs.Job` → ``Prepared`` or
  ``Failure``) and the bounded in-order scheduler;
* :mod:`~factory.build.rows`: the row of a sample, its contract check, the sft/rl assignment;
* :mod:`~factory.build.chunk`: one chunk streamed to parquet and committed;
* :mod:`~factory.build.state`: the resume key and the chunk bookkeeping;
* :mod:`~factory.build.runner`: :func:`build`; :mod:`~factory.build.embedded`: :func:`demo` (the embedded default).

How it survives a crash: a split is cut into fixed chunks of ``shard_size`` samples in source
order. The rows of a chunk are streamed into temporary parquet files (one per config), which are
renamed into place when the chunk is complete; then its errors file and a ``.done`` marker are
written. A re-run skips chunks with a marker and redoes the others from scratch, so after
``kill -9`` at any moment the same command continues, and the final dataset holds every sample
exactly once and equals an uninterrupted build. The final step hard-links the chunk files into
the ``-NNNNN-of-NNNNN`` shard names (no copy, no rewrite).

Why it is deterministic: the recipe depends on (seed, sample id), the config a training sample
lands in (sft or rl) on a hash of (seed, id), images are degraded in worker processes but
collected in source order, and PNG encoding is deterministic: the row hashes do not depend on
``--workers``.

Why memory stays flat: samples stream from the source through a bounded window of in-flight
jobs to a parquet writer that flushes every ``row_group_size`` rows; nothing holds a split.
"""

from __future__ import annotations

from factory.degrade.image import encode_png
from factory.layout import ERROR_STAGES as STAGES
from factory.layout import SPLIT_DIRS, features

from .config import IMAGE_FORMATS, BuildConfig, BuildSummary, api_command, parse_limit
from .embedded import demo
from .jobs import encode_image
from .rows import config_for, row_hash
from .runner import build

__all__ = [
    "IMAGE_FORMATS",
    "SPLIT_DIRS",
    "STAGES",
    "BuildConfig",
    "BuildSummary",
    "api_command",
    "build",
    "config_for",
    "demo",
    "encode_image",
    "encode_png",
    "features",
    "parse_limit",
    "row_hash",
]
