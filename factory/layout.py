"""The dataset contract, in one place.

Configs, splits, shard names, features, required columns, the error-record shape and the atomic
write live here; build, report, card, publish, export, the trainers and evaluation import them.
(The contract constants move here from their former homes; the atomic write is first.)
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
from pathlib import Path
from typing import Iterator


def _tmp_sibling(path: Path) -> Path:
    """A hidden temporary path next to ``path``, unique per process, thread and call."""
    tag = f"{os.getpid()}.{threading.get_ident()}.{random.getrandbits(32):08x}"
    return path.with_name(f".{path.name}.{tag}.tmp")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success it is renamed over ``path``.

    Whatever writes to the yielded path (pyarrow, matplotlib, PIL, ...) either produces the whole
    file at ``path`` or nothing: on an exception the temporary file is removed and ``path`` is
    left as it was. ``fsync`` flushes the data to disk before the rename.
    """
    path = Path(path)
    tmp = _tmp_sibling(path)
    try:
        yield tmp
        if fsync and tmp.exists():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: str | os.PathLike, data: str | bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; returns the path."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(payload)
    return path
