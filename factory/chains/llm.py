"""OpenAI-compatible chat backend: bounded concurrency, retries with backoff, an on-disk cache.

Works with OpenAI, vLLM, Ollama, LM Studio or any server speaking ``/v1/chat/completions``.
The API key comes from ``OPENAI_API_KEY`` (or the ``api_key`` argument) and is only ever handed
to the ``openai`` client: it is not part of a cache key, a cache file, a log line or an output.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("robust_r1.chains")

# USD per 1M tokens (input, output); used when the config gives no prices.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
}


def image_data_url(image: np.ndarray, max_side: int = 768) -> str:
    """A PNG data URL of an RGB uint8 image, downscaled so its longer side is <= ``max_side``."""
    from PIL import Image

    im = Image.fromarray(image)
    if max(im.size) > max_side:
        f = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.BICUBIC)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False, compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class DiskCache:
    """Responses keyed by the SHA-256 of the full request (model, messages with image data, params).

    One small JSON file per request under ``root/ab/<hash>.json``, written atomically (temporary
    file + rename), so concurrent writers and crashes never leave a broken entry.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(request: dict[str, Any]) -> str:
        blob = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self._path(key)
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.{random.getrandbits(32):08x}.tmp")
        tmp.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        tmp.replace(p)


@dataclass
class Usage:
    requests: int = 0
    cached: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def cost(self, price_in: float | None, price_out: float | None) -> float | None:
        if price_in is None or price_out is None:
            return None
        return (self.prompt_tokens * price_in + self.completion_tokens * price_out) / 1e6

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cached": self.cached,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "errors": dict(self.errors),
        }


class LLMError(RuntimeError):
    """A request failed for good (retries exhausted or a non-retryable error)."""


class ChatClient:
    """Async chat completions with a semaphore, retry/backoff (Retry-After honoured) and a cache."""

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        max_retries: int = 6,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        timeout: float = 120.0,
        cache_dir: str | Path | None = None,
        temperature: float = 0.2,
        max_tokens: int = 1024,
        seed: int = 0,
    ):
        if not model:
            raise ValueError("openai backend: --model is required (for example gpt-4o or your vLLM model name).")
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if not key and base_url is None:
            raise ValueError(
                "openai backend: set OPENAI_API_KEY in the environment (or pass --base-url to a local "
                "server that needs no key)."
            )
        self._key = key or "not-needed"
        self.model = model
        self.base_url = base_url
        self.concurrency = max(1, int(concurrency))
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.cache = DiskCache(cache_dir) if cache_dir else None
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.usage = Usage()
        self._client = None
        self._sem: asyncio.Semaphore | None = None
        self._jitter = random.Random(seed)
        self._inflight: dict[str, asyncio.Future] = {}

    def __repr__(self) -> str:  # never show the key
        return f"ChatClient(model={self.model!r}, base_url={self.base_url!r}, concurrency={self.concurrency})"

    def _http_client(self):
        """An HTTP client with TCP_NODELAY and a pool sized to the concurrency, or None (SDK default).

        Requests go out as two writes (headers, body); with Nagle's algorithm on, the body waits
        for the server's delayed ACK, adding ~40 ms to every call on a local vLLM/Ollama server.
        """
        import importlib
        import socket

        import openai

        try:
            base = next(c for c in openai.DefaultAsyncHttpxClient.__mro__ if c.__module__.split(".")[0].startswith("httpx"))
            httpx_mod = importlib.import_module(base.__module__.split(".")[0])
            limits = httpx_mod.Limits(max_connections=max(100, 2 * self.concurrency), max_keepalive_connections=max(20, self.concurrency))
            transport = httpx_mod.AsyncHTTPTransport(
                limits=limits, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            )
            return openai.DefaultAsyncHttpxClient(transport=transport, timeout=self.timeout)
        except (StopIteration, AttributeError, TypeError, ImportError):  # an SDK without these hooks
            return None

    def _ensure(self):
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=self._key,
                base_url=self.base_url,
                max_retries=0,
                timeout=self.timeout,
                http_client=self._http_client(),
            )
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def request_body(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        expo = min(self.backoff_max, self.backoff_base * (2**attempt))
        d = expo * (0.5 + self._jitter.random() / 2)  # jitter
        if retry_after is not None:
            d = max(d, min(self.backoff_max, retry_after))
        return d

    @staticmethod
    def _retry_after(exc: Exception) -> float | None:
        resp = getattr(exc, "response", None)
        headers = getattr(resp, "headers", None) or {}
        value = headers.get("retry-after") if hasattr(headers, "get") else None
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    async def complete(self, messages: list[dict[str, Any]]) -> str:
        """The assistant text for ``messages`` (from the cache when this exact request was made).

        Identical requests in flight at the same time share one call (single flight), so the
        answer to a request never depends on timing and a re-run replays the same answers.
        """
        body = self.request_body(messages)
        key = DiskCache.key(body)
        if self.cache and (hit := self.cache.get(key)) is not None:
            self.usage.cached += 1
            return hit["text"]
        if key in self._inflight:
            self.usage.cached += 1
            return await asyncio.shield(self._inflight[key])
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            text = await self._call(body, key)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            fut.set_result(text)
            return text
        finally:
            self._inflight.pop(key, None)

    async def _call(self, body: dict[str, Any], key: str) -> str:
        import openai
        from openai.types.chat import ChatCompletion

        client = self._ensure()
        assert self._sem is not None
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            async with self._sem:
                self.usage.requests += 1
                try:
                    # The SDK's documented low-level call: same auth, errors and response type as
                    # chat.completions.create, without its per-call walk over the messages
                    # (about 2 ms of CPU per request, the bottleneck at high concurrency).
                    resp = await client.post("/chat/completions", body=body, cast_to=ChatCompletion)
                except (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError) as exc:
                    last = exc
                except openai.APIStatusError as exc:
                    if exc.status_code >= 500 or exc.status_code in (408, 409, 429):
                        last = exc
                    else:
                        raise LLMError(f"{type(exc).__name__} {exc.status_code}: {exc.message}") from None
                else:
                    text = (resp.choices[0].message.content or "") if resp.choices else ""
                    if resp.usage is not None:
                        self.usage.prompt_tokens += int(resp.usage.prompt_tokens or 0)
                        self.usage.completion_tokens += int(resp.usage.completion_tokens or 0)
                    if self.cache:
                        self.cache.put(key, {"text": text, "model": self.model, "created": time.time()})
                    return text
            name = type(last).__name__
            self.usage.errors[name] = self.usage.errors.get(name, 0) + 1
            if attempt == self.max_retries:
                break
            self.usage.retries += 1
            delay = self._delay(attempt, self._retry_after(last))
            log.debug("retrying after %s in %.2fs (attempt %d)", name, delay, attempt + 1)
            await asyncio.sleep(delay)
        raise LLMError(f"gave up after {self.max_retries + 1} attempts: {type(last).__name__}")
