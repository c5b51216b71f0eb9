"""The worker side of a build: one :class:`Job` per sample, answered by a :class:`Prepared`
sample or a :class:`Failure`; and the scheduler that keeps a bounded window of jobs in flight.

:func:`process` runs in a worker process (or in the build process with ``workers=1``): check the
sample, load its image, draw its recipe from (seed, sample id), degrade, encode.
"""

from __future__ import annotations

import io
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from factory.degrade.image import encode_png
from factory.degrade.recipes import Recipe, TrainRecipeConfig


def encode_image(img, fmt: str = "png") -> bytes:
    """Encode an RGB uint8 array as ``png`` (fast lossless), ``webp`` (lossless) or ``jpeg`` (q95)."""
    if fmt == "png":
        return encode_png(img)
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "webp":
        Image.fromarray(img).save(buf, format="WEBP", lossless=True, method=0)
    elif fmt == "jpeg":
        Image.fromarray(img).save(buf, format="JPEG", quality=95)
    else:
        raise ValueError(f"image format {fmt!r}: use png, jpeg or webp.")
    return buf.getvalue()


@dataclass(frozen=True)
class Job:
    """One sample to prepare, with the build settings the worker needs."""

    sample: Any
    """A ``factory.sources.Sample``."""
    seed: int
    recipe: TrainRecipeConfig
    style: str
    """Degradation style (``factory.degrade.STYLES``)."""
    image_format: str
    keep_clean: bool
    want_arrays: bool
    """Also return the clean and degraded arrays (a chain backend that looks at the images)."""


@dataclass
class Prepared:
    """A sample ready for its chain: the recipe and the encoded images."""

    recipe: Recipe
    image: bytes
    """The degraded image, encoded."""
    clean: bytes | None = None
    """The pristine image, encoded (``keep_clean``)."""
    arrays: tuple[Any, Any] | None = None
    """``(clean, degraded)`` RGB arrays (``want_arrays``)."""


@dataclass(frozen=True)
class Failure:
    """A sample that failed: where (a ``factory.layout.ERROR_STAGES`` stage) and why."""

    stage: str
    reason: str


Result = Prepared | Failure


def init_worker(worker: bool = False) -> None:
    """Set up a process that degrades images (one OpenCV thread, the tuned allocator)."""
    import cv2

    from factory import degrade

    cv2.setNumThreads(1)
    degrade.tune_allocator()
    if worker and sys.platform.startswith("linux"):
        # End with the build process, even when it is killed with SIGKILL (no orphaned workers).
        import ctypes
        import signal

        try:
            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def process(job: Job) -> Result:
    """Check, load, recipe, render and encode one sample (runs in a worker process)."""
    from factory import degrade

    sample = job.sample
    error = getattr(sample, "error", None)
    if error:  # a row the source could not read exactly (names its row, column and value)
        return Failure("load", f"{sample.id}: {error}")
    if not str(sample.question).strip():
        return Failure("load", f"{sample.id}: empty question")
    if not str(sample.answer).strip():
        return Failure("load", f"{sample.id}: no answer label (the answer cell is empty: an unlabelled split such "
                       "as A-OKVQA test?)")
    try:
        clean = sample.load_image()
    except ValueError as exc:
        return Failure("load", str(exc))
    except Exception as exc:  # noqa: BLE001 - a strange image fails its sample only
        return Failure("load", f"{sample.id}: {type(exc).__name__}: {exc}")
    try:
        recipe = degrade.sample_train(job.seed, sample.id, job.recipe, style=job.style)
        out = degrade.render(clean, recipe)
        return Prepared(
            recipe=recipe,
            image=encode_image(out, job.image_format),
            clean=encode_image(clean, job.image_format) if job.keep_clean else None,
            arrays=(clean, out) if job.want_arrays else None,
        )
    except Exception as exc:  # noqa: BLE001 - recorded, never fatal
        return Failure("degrade", f"{sample.id}: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------- scheduling


@dataclass(frozen=True)
class SampleEvent:
    """Sample ``index`` of chunk ``chunk`` (in source order)."""

    chunk: int
    index: int
    sample: Any


@dataclass(frozen=True)
class ChunkEnd:
    """Every sample of chunk ``chunk`` has been handed out."""

    chunk: int


class Now:
    """A finished 'future' (the in-process path)."""

    def __init__(self, value: Any):
        self.value = value

    def result(self) -> Any:
        return self.value


def ordered(
    events: Iterable[SampleEvent | ChunkEnd], submit: Callable[[Any], Any], window: int
) -> Iterator[tuple[SampleEvent | ChunkEnd, Result | None]]:
    """Submit the samples, yield ``(event, result)`` in event order (``None`` for a
    :class:`ChunkEnd`), with at most ``window`` jobs in flight (bounded memory: the source is
    never read ahead further)."""
    queue: deque = deque()
    inflight = 0
    for ev in events:
        if isinstance(ev, SampleEvent):
            queue.append((ev, submit(ev.sample)))
            inflight += 1
        else:
            queue.append((ev, None))
        while inflight >= window:
            ev0, fut = queue.popleft()
            if fut is not None:
                inflight -= 1
            yield ev0, fut.result() if fut is not None else None
    while queue:
        ev0, fut = queue.popleft()
        yield ev0, fut.result() if fut is not None else None


def pool(workers: int):
    """A process pool of ``workers`` image workers, all started."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # Linux: fork (as datasets.map(num_proc=...) does), all workers started at once: fast, and a
    # script or notebook needs no ``if __name__ == "__main__"`` guard. Elsewhere: spawn.
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    ctx = mp.get_context(method)
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=init_worker, initargs=(True,))
    executor.submit(int).result()  # with fork, every worker starts now
    return executor
