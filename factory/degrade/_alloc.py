"""Allocator tuning for image workloads (glibc only; a no-op elsewhere).

Every op allocates a few full-size arrays. glibc serves blocks above its mmap threshold with
fresh ``mmap`` pages, and each first touch of a page is a page fault. On ordinary Linux that
costs little, but on virtual machines that hand pages out lazily (Firecracker-style micro-VMs,
some CI runners) a 640×480 float image can spend several milliseconds faulting in. Keeping such
blocks on the heap (and not trimming the heap back after each free) removes that cost.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LIMIT = 32 * 1024 * 1024  # glibc's largest accepted mmap threshold on 64-bit (HEAP_MAX / 2)


@functools.lru_cache(maxsize=1)
def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds to 32 MiB for this process. Returns whether it did.

    Called by the CLI and the benchmarks; call it yourself at the start of a long-running job
    that degrades many images. Memory freed by the engine is then reused instead of returned to
    the operating system, so the resident size stays at its peak (tens of MiB per worker).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, _LIMIT)) and bool(mallopt(_M_TRIM_THRESHOLD, 2 * _LIMIT))
    log.debug("glibc allocator tuned: %s", ok)
    return ok
