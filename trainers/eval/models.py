"""The models an evaluation asks: anything with ``generate(images, prompts)``.

Three adapters: :class:`TransformersModel` (a local or Hub model or adapter, batched greedy
generation), :class:`EndpointModel` (any OpenAI-compatible vision server) and
:class:`ObjectModel` (any Python object with ``generate``, e.g. a scripted test model, whose
answers may be plain strings). :func:`open_model` opens the one an :class:`EvalConfig` names.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .config import EvalConfig

__all__ = ["EndpointModel", "Generation", "Model", "ObjectModel", "TransformersModel", "as_model", "open_model"]

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
    """A local/Hub model or adapter through :class:`trainers.infer.Predictor` (batched, greedy)."""

    def __init__(
        self,
        model: str,
        *,
        backend: str = "auto",
        batch_size: int = 8,
        max_new_tokens: int = 1024,
        max_pixels: int | None = None,
    ):
        from trainers.infer import Predictor

        self.predictor = Predictor(model, backend=backend, max_pixels=max_pixels)
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens

    def _run(self, images, prompts) -> list[Generation]:
        counted = self.predictor.generate_counted(images, prompts, max_new_tokens=self.max_new_tokens)
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


class EndpointModel:
    """Any OpenAI-compatible vision endpoint (vLLM, SGLang, Ollama, OpenAI): concurrent requests
    with retries and backoff (:class:`factory.chains.llm.ChatClient`), greedy decoding, the image
    as a lossless PNG data URL."""

    def __init__(
        self,
        model: str,
        base_url: str | None,
        *,
        concurrency: int = 8,
        max_new_tokens: int = 1024,
        max_side: int = 1024,
        seed: int = 0,
        max_retries: int = 4,
    ):
        from factory.chains.llm import ChatClient

        self.kw = dict(model=model, base_url=base_url, concurrency=concurrency, temperature=0.0,
                       max_tokens=max_new_tokens, seed=seed, max_retries=max_retries, backoff_base=0.5)
        ChatClient(**self.kw)  # fail now on a missing key or model name
        self.max_side = max_side

    def generate(self, images, prompts):
        from factory.chains.llm import ChatClient, image_data_url

        async def run() -> list[Generation | Exception]:
            client = ChatClient(**self.kw)

            async def one(im, p):
                url = await asyncio.to_thread(image_data_url, im, self.max_side)
                content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": p}]
                reply = await client.complete([{"role": "user", "content": content}])
                return Generation(reply.text, reply.completion_tokens)

            try:
                pairs = zip(images, prompts, strict=False)
                return list(await asyncio.gather(*(one(im, p) for im, p in pairs), return_exceptions=True))
            finally:
                await client.aclose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run())
        from concurrent.futures import ThreadPoolExecutor  # called from a running loop (a notebook)

        with ThreadPoolExecutor(1) as ex:
            return ex.submit(asyncio.run, run()).result()


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
    """The model ``cfg`` names: an endpoint's served model, else a transformers model."""
    if cfg.endpoint:
        return EndpointModel(
            cfg.model, cfg.endpoint, concurrency=cfg.concurrency, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed
        )
    return TransformersModel(
        cfg.model, backend=cfg.backend, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens,
        max_pixels=cfg.max_pixels,
    )
