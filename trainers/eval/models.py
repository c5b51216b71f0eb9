"""The models an evaluation asks: anything with ``generate(images, prompts)``.

Three adapters: :class:`TransformersModel` (a local or Hub model or adapter, batched greedy
generation), :class:`EndpointModel` (any OpenAI-compatible vision server, through the chat-backend
API of :mod:`factory.chains.backends`; it also streams, :meth:`EndpointModel.session`) and
:class:`ObjectModel` (any Python object with ``generate``, e.g. a scripted test model, whose
answers may be plain strings). :func:`open_model` opens the one an :class:`EvalConfig` names.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from trainers.presets import DEFAULT_MAX_PIXELS

from .config import PROMPTS, EvalConfig

__all__ = [
    "EndpointModel",
    "EndpointSession",
    "Generation",
    "Model",
    "ObjectModel",
    "TransformersModel",
    "as_model",
    "budget_side",
    "open_model",
]

log = logging.getLogger("robust_r1.evaluate")


@dataclass
class Generation:
    text: str
    tokens: int | None = None
    """Generated tokens (``None`` when the model does not say)."""


class Model(Protocol):
    """Anything that answers prompts about images: ``generate(images, prompts)`` returns one
    :class:`Generation` (or an exception, for that item only) per pair."""

    def generate(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[Generation | Exception]: ...


class TransformersModel:
    """A local/Hub model or adapter through :class:`trainers.infer.Predictor` (batched; greedy, or
    sampling seeded by ``seed`` when ``temperature`` > 0)."""

    def __init__(
        self,
        model: str,
        *,
        backend: str = "auto",
        batch_size: int = 8,
        max_new_tokens: int = 1024,
        max_pixels: int | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        image_first: bool = True,
    ):
        from trainers.infer import Predictor

        self.predictor = Predictor(model, backend=backend, max_pixels=max_pixels)
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.temperature, self.seed, self.image_first = temperature, seed, image_first

    def _run(self, images, prompts) -> list[Generation]:
        counted = self.predictor.generate_counted(
            images, prompts, max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed,
            image_first=self.image_first,
        )
        return [Generation(t, n) for t, n in counted]

    def generate(self, images, prompts):
        out: list[Generation | Exception] = []
        for i in range(0, len(prompts), self.batch_size):
            ims, ps = images[i : i + self.batch_size], prompts[i : i + self.batch_size]
            try:
                out += self._run(ims, ps)
            except Exception as exc:  # noqa: BLE001 - retry alone, so one bad item fails only itself
                log.warning("batch of %d failed (%s: %s); retrying one by one", len(ps), type(exc).__name__, exc)
                for im, p in zip(ims, ps, strict=False):
                    try:
                        out += self._run([im], [p])
                    except Exception as one:  # noqa: BLE001
                        out.append(one)
        return out


def budget_side(shape: Sequence[int], max_pixels: int | None) -> int:
    """The longest side that fits an image of ``shape`` into ``max_pixels`` (width × height, aspect
    kept; 0: it fits as it is). With it the factory's encoder
    (:func:`factory.degrade.image.image_data_url`) resizes and encodes in one step; the size is
    the one :func:`trainers.data.fit_pixels` gives a local model, give or take a pixel."""
    h, w = int(shape[0]), int(shape[1])
    if not max_pixels or w * h <= max_pixels:
        return 0
    longest = max(w, h)
    side = max(1, math.floor(longest * math.sqrt(max_pixels / float(w * h))))
    while side > 1 and round(w * side / longest) * round(h * side / longest) > max_pixels:
        side -= 1
    return side


class EndpointModel:
    """Any OpenAI-compatible vision endpoint (vLLM, SGLang, Ollama, OpenAI) through the chat-backend
    API (:func:`factory.chains.backends.open_chat` and :func:`~factory.chains.backends.ask`; the
    ``openai`` backend: concurrent requests, retries with backoff). The image, resized to the
    pixel budget ``max_pixels`` of a local model (:func:`budget_side`), goes as a lossless PNG data
    URL; greedy decoding unless ``temperature`` > 0 (seeded by ``seed``).

    :meth:`generate` answers a list at once; :meth:`session` streams (the runner submits each
    question as soon as its image is ready and keeps ``concurrency`` requests in flight)."""

    def __init__(
        self,
        model: str,
        base_url: str | None,
        *,
        concurrency: int = 8,
        max_new_tokens: int = 1024,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        seed: int = 0,
        temperature: float = 0.0,
        max_retries: int = 4,
        image_first: bool = True,
        backend: str = "openai",
    ):
        from factory.chains.backends import open_chat

        self.backend = backend
        self.settings: dict[str, Any] = dict(
            model=model, base_url=base_url, concurrency=concurrency, temperature=float(temperature),
            max_tokens=max_new_tokens, seed=seed, max_retries=max_retries, backoff_base=0.5,
        )
        open_chat(backend, **self.settings)  # fail now on a missing key or model name
        self.concurrency = max(1, int(concurrency))
        self.max_pixels, self.image_first = max_pixels, image_first

    def image_url(self, image: np.ndarray | str) -> str:
        """The data URL sent for ``image``: resized to the pixel budget and encoded as a lossless
        PNG in one step (a data URL passes through)."""
        if isinstance(image, str):
            return image
        from factory.degrade.image import image_data_url

        im = np.asarray(image)
        return image_data_url(im, budget_side(im.shape, self.max_pixels))

    def open_chat(self) -> Any:
        from factory.chains.backends import open_chat

        return open_chat(self.backend, **self.settings)

    async def ask(self, chat: Any, image: np.ndarray | str, prompt: str, executor: Any = None) -> Generation:
        """One question: the image encoded off the event loop (a data URL is sent as it is), then
        the request."""
        from factory.chains.backends import ask

        url = image if isinstance(image, str) else await asyncio.get_running_loop().run_in_executor(
            executor, self.image_url, image
        )
        reply = await ask(chat, prompt, [url], image_first=self.image_first)
        return Generation(reply.text, reply.completion_tokens)

    def generate(self, images, prompts):
        from factory.chains.backends import run_sync

        async def run() -> list[Generation | Exception]:
            chat = self.open_chat()
            try:
                pairs = zip(images, prompts, strict=False)
                return list(await asyncio.gather(*(self.ask(chat, im, p) for im, p in pairs), return_exceptions=True))
            finally:
                await chat.aclose()

        return run_sync(run())

    def session(self) -> EndpointSession:
        """A streaming session: ``submit(image, prompt)`` returns a future; close it when done."""
        return EndpointSession(self)


class EndpointSession:
    """One chat client on an event loop in a background thread: :meth:`submit` hands a question to
    it and returns a :class:`concurrent.futures.Future` of its :class:`Generation` at once, so the
    caller prepares the next image while requests are in flight. Images are resized and encoded by
    a thread pool (``encoders`` threads, default one per core within [2, 8]; that work releases the
    GIL), never on the event loop."""

    def __init__(self, model: EndpointModel, encoders: int | None = None):
        import os
        from concurrent.futures import ThreadPoolExecutor

        # resizing and PNG encoding release the GIL: one encoder per core, within [2, 8]
        encoders = encoders or max(2, min(8, os.cpu_count() or 2))
        self.model = model
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="eval-endpoint", daemon=True)
        self._thread.start()
        self._encoders = ThreadPoolExecutor(encoders, thread_name_prefix="eval-encode")
        self._chat = model.open_chat()
        self._closed = False

    def submit(self, image: np.ndarray | str, prompt: str) -> Future:
        """Ask ``prompt`` about ``image``; the future holds the :class:`Generation` (or the error).

        The image is encoded by an encoder thread, which then hands the request to the event loop:
        one thread hand-off per question, and the loop never waits for an encoder."""
        if self._closed:
            raise RuntimeError("the endpoint session is closed")
        out: Future = Future()
        out.set_running_or_notify_cancel()

        def encoded(done: Future) -> None:  # runs in the encoder thread
            try:
                url = done.result()
                inner = asyncio.run_coroutine_threadsafe(self.model.ask(self._chat, url, prompt), self._loop)
            except BaseException as exc:  # noqa: BLE001 - the encoding (or a closed loop) fails this question
                out.set_exception(exc)
                return
            inner.add_done_callback(lambda f: _settle(out, f))

        self._encoders.submit(self.model.image_url, image).add_done_callback(encoded)
        return out

    def close(self) -> None:
        """Close the chat client (waiting for what is in flight), stop the loop and the encoders."""
        if self._closed:
            return
        self._closed = True

        async def shutdown() -> None:  # requests still in flight (an interrupted run) are cancelled
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._chat.aclose()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=60)
            self._loop.close()
            self._encoders.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> EndpointSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _settle(out: Future, done: Future) -> None:
    """Copy the outcome of ``done`` into ``out``."""
    if done.cancelled():
        out.set_exception(RuntimeError("the request was cancelled (the session closed)"))
    elif done.exception() is not None:
        out.set_exception(done.exception())
    else:
        out.set_result(done.result())


class ObjectModel:
    """Any Python object with ``generate(images, prompts)``: its answers may be :class:`Generation`
    objects, plain strings, anything with a ``text`` (and ``tokens``) attribute, or exceptions
    (that item failed); anything else fails its item with a ``TypeError``."""

    def __init__(self, obj: Any) -> None:
        if not callable(getattr(obj, "generate", None)):
            raise TypeError(f"{type(obj).__name__} has no generate(images, prompts) method; it cannot be evaluated.")
        self.obj = obj

    @staticmethod
    def _one(g: Any) -> Generation | Exception:
        if isinstance(g, (Generation, BaseException)):
            return g
        if isinstance(g, str):
            return Generation(g)
        if hasattr(g, "text"):
            return Generation(g.text, getattr(g, "tokens", None))
        return TypeError(f"the model answered with a {type(g).__name__}, not a text or Generation")

    def generate(self, images, prompts):
        return [self._one(g) for g in self.obj.generate(images, prompts)]


def as_model(model: Any) -> Model:
    """``model`` as a :data:`Model`: the adapters as they are, any other object through :class:`ObjectModel`."""
    if isinstance(model, (TransformersModel, EndpointModel, ObjectModel)):
        return model
    return ObjectModel(model)


def open_model(cfg: EvalConfig) -> Model:
    """The model ``cfg`` names: an endpoint's served model, else a transformers model (the image
    budget, decoding and image/text order as ``cfg`` and its prompt kind say)."""
    image_first = PROMPTS[cfg.prompt].image_first if cfg.prompt in PROMPTS else True
    if cfg.endpoint:
        return EndpointModel(
            cfg.model, cfg.endpoint, concurrency=cfg.concurrency, max_new_tokens=cfg.max_new_tokens,
            max_pixels=cfg.max_pixels, seed=cfg.seed, temperature=cfg.temperature, image_first=image_first,
        )
    return TransformersModel(
        cfg.model, backend=cfg.backend, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
        max_pixels=cfg.max_pixels or DEFAULT_MAX_PIXELS, temperature=cfg.temperature, seed=cfg.seed,
        image_first=image_first,
    )
