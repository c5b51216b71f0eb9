"""The ``openai`` chat backend (:mod:`factory.chains.backends`): bounded concurrency, retries, a cache.

Works with OpenAI, vLLM, Ollama, LM Studio or any server speaking ``/v1/chat/completions``,
through the official ``openai.AsyncOpenAI`` client (imported lazily).

* **Concurrency**: at most ``concurrency`` requests in flight; identical requests in flight at
  the same time share one call.
* **Retries**: 429, 408/409/425, 5xx, timeouts, dropped connections and malformed responses
  are retried with exponential backoff and full jitter; ``Retry-After`` / ``retry-after-ms``
  are honoured, and a 429 pauses *every* request of the client until the server's delay has
  passed, so a rate limit is not hammered by the other workers. 401/403/404 stop the client:
  every later request fails at once with the same reason (no wasted calls).
* **Cache**: one JSON file per request, keyed by the SHA-256 of the full request body (model,
  messages including the image data, parameters), written atomically off the event loop. A
  re-run makes zero calls for work already done.
* **Secrets**: the API key comes from ``OPENAI_API_KEY`` (or the ``api_key`` argument) and is
  only handed to the ``openai`` client: it is in no cache key, cache file, log line, repr or
  error message. A reply that contains a live secret (a server echoing the key) is discarded, never
  cached, and fails its request with :class:`~factory.chains.backends.UnsafeReply`; the server URL
  is shown without credentials.
* **Outages**: a request that fails for good because of the service (connection refused,
  401/403/404, 5xx/429/timeouts after the retries, malformed answers) raises an ``LLMError`` that
  is not ``final``: the build retries its sample on the next run. A 400 (this request is refused)
  is ``final``.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from factory.degrade.image import image_data_url  # noqa: F401 - re-exported (factory.chains.llm.image_data_url)
from factory.errors import ConfigError
from factory.layout import atomic_write
from factory.secrets import live_secrets, redact, redact_url

from .backends import LLMError, Reply, UnsafeReply, Usage  # noqa: F401 - re-exported (factory.chains.llm.Reply, ...)

log = logging.getLogger("robust_r1.chains")

# USD per 1K tokens (input, output) of some OpenAI models, used when the config gives no
# prices. Prices change: pass cost_per_1k_in / cost_per_1k_out for exact numbers.
PRICES_PER_1K: dict[str, tuple[float, float]] = {
    "gpt-4o": (0.0025, 0.010),
    "gpt-4o-2024-08-06": (0.0025, 0.010),
    "gpt-4o-2024-11-20": (0.0025, 0.010),
    "gpt-4o-mini": (0.00015, 0.0006),
    "gpt-4.1": (0.002, 0.008),
    "gpt-4.1-mini": (0.0004, 0.0016),
    "gpt-4.1-nano": (0.0001, 0.0004),
}

RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
FATAL_STATUS = {
    401: "check OPENAI_API_KEY",
    403: "the key has no access to this model or endpoint",
    404: "check --model and --base-url",
}
TRANSPORTS = ("auto", "aiohttp", "httpx")


def request_blob(request: dict[str, Any]) -> bytes:
    """Canonical JSON of a request body (sorted keys, no spaces): hashed for the cache, and sent."""
    return json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class DiskCache:
    """Responses keyed by the SHA-256 of the full request (model, messages with image data, params).

    One small JSON file per request under ``root/ab/<hash>.json``, written atomically (temporary
    file + rename), so concurrent writers (threads or processes) and crashes never leave a broken
    entry; a corrupt file reads as a miss. Entries hold the response text, the model, the finish
    reason and the token usage: never the request headers, so never the API key.

    The keys on disk are listed once (first lookup), so a miss costs no system call; entries that
    another process writes later are not seen by this instance (at worst a duplicate request).
    :meth:`put_later` hands the write to a background thread (a file creation costs ~0.5 ms of
    system calls); :meth:`flush` waits for those writes.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            msg = f"cannot create the cache folder ({exc.strerror})."
            raise ConfigError("cache_dir", msg, value=str(root)) from None
        self._dirs: set[str] = set()
        self._index: set[str] | None = None
        self._pending: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._queue: Any = None
        self._thread: threading.Thread | None = None
        self._write_error: str | None = None

    @staticmethod
    def key(request: dict[str, Any] | bytes) -> str:
        blob = request if isinstance(request, bytes) else request_blob(request)
        return hashlib.sha256(blob).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def _scan(self) -> set[str]:
        keys: set[str] = set()
        try:
            subs = [e for e in os.scandir(self.root) if e.is_dir() and len(e.name) == 2]
        except OSError:
            return keys
        for sub in subs:
            self._dirs.add(sub.name)
            try:
                names = (e.name for e in os.scandir(sub.path))
                keys.update(n[:-5] for n in names if n.endswith(".json") and not n.startswith("."))
            except OSError:
                continue
        return keys

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            if key in self._pending:
                return self._pending[key]
            if self._index is None:
                self._index = self._scan()
            if key not in self._index:
                return None
        try:
            with open(self._path(key), encoding="utf-8") as fh:
                value = json.load(fh)
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) and isinstance(value.get("text"), str) else None

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Write one entry now (atomically); an entry holding a live secret is never written."""
        text = value.get("text")
        if isinstance(text, str) and any(s in text for s in live_secrets()):
            log.warning("chain cache: an answer holding a live secret was not cached")
            return
        p = self._path(key)
        sub = key[:2]
        if sub not in self._dirs:
            p.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(sub)
        atomic_write(p, json.dumps(value, ensure_ascii=False), fsync=False)
        with self._lock:
            if self._index is not None:
                self._index.add(key)

    def put_later(self, key: str, value: dict[str, Any]) -> None:
        """Queue one entry for the background writer (visible to :meth:`get` at once)."""
        import queue

        with self._lock:
            self._pending[key] = value
            if self._thread is None or not self._thread.is_alive():
                self._queue = queue.Queue()
                self._thread = threading.Thread(
                    target=self._writer, args=(self._queue,), name="chain-cache-writer", daemon=True
                )
                self._thread.start()
            self._queue.put(key)

    def _writer(self, q: Any) -> None:
        while True:
            key = q.get()
            try:
                if key is None:
                    return
                with self._lock:
                    value = self._pending.get(key)
                if value is not None:
                    try:
                        self.put(key, value)
                    except OSError as exc:
                        if self._write_error is None:
                            self._write_error = f"{type(exc).__name__}: {exc.strerror or exc}"
                            msg = "chain cache %s: cannot write (%s); answers are not cached"
                            log.warning(msg, self.root, self._write_error)
                    with self._lock:
                        self._pending.pop(key, None)
            finally:
                q.task_done()

    def flush(self) -> None:
        """Wait until every queued entry is on disk (and stop the writer thread)."""
        with self._lock:
            q, t = self._queue, self._thread
            self._queue = self._thread = None
        if q is not None and t is not None:
            q.put(None)
            q.join()
            t.join(timeout=30)

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("??/*.json"))


class MalformedResponse(Exception):
    """The server answered 2xx with something that is not a chat completion."""


def _scrub(text: str, secret: str | None) -> str:
    """``text`` without the key, live secrets of the environment and credential-shaped strings."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return redact(text, secret)


UNSAFE_REPLY = (
    "the reply contains a live secret (does the server echo the API key?); it was discarded and not cached"
)


class ChatClient:
    """Async chat completions with a semaphore, retry/backoff (Retry-After honoured) and a cache.

    The ``openai`` backend of :mod:`factory.chains.backends` (a ``ChatBackend``): construct it
    with ``open_chat("openai", model=..., ...)``; its keywords are ``backends.CHAT_SETTINGS``.
    """

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
        retry_after_max: float = 300.0,
        timeout: float = 120.0,
        cache_dir: str | Path | None = None,
        temperature: float | None = 0.2,
        max_tokens: int | None = 1024,
        seed: int | None = 0,
        extra_body: dict[str, Any] | None = None,
        transport: str = "auto",
    ):
        if not model:
            raise ValueError(
                "openai backend: --model is required (for example gpt-4o, or the name your vLLM/Ollama server serves)."
            )
        if transport not in TRANSPORTS:
            raise ValueError(f"openai backend: transport {transport!r}: use one of {', '.join(TRANSPORTS)}.")
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
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.retry_after_max = float(retry_after_max)
        self.timeout = float(timeout)
        self.cache = DiskCache(cache_dir) if cache_dir else None
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.seed = seed
        self.extra_body = dict(extra_body or {})
        self.transport = transport
        self.usage = Usage()
        self._client: Any = None
        self._sem: asyncio.Semaphore | None = None
        self._jitter = random.Random(0 if seed is None else seed)
        self._inflight: dict[str, asyncio.Future] = {}
        self._not_before = 0.0  # loop time before which no request goes out (after a 429)
        self._fatal: str | None = None
        self._raw_content: bool | None = None

    def __repr__(self) -> str:  # never show the key, nor credentials in the URL
        url = redact_url(self.base_url)
        return f"ChatClient(model={self.model!r}, base_url={url!r}, concurrency={self.concurrency})"

    def _leaks(self, text: str) -> bool:
        """Whether ``text`` holds the API key or another live secret of the environment."""
        key = self._key if self._key != "not-needed" else None
        return any(s in text for s in live_secrets([key]))

    # ------------------------------------------------------------------ client setup

    def _limits(self, httpx_mod: Any) -> Any:
        n = max(self.concurrency, 1)
        return httpx_mod.Limits(max_connections=n + 4, max_keepalive_connections=n + 4)

    def _http_client(self) -> Any:
        """The HTTP client under the SDK: aiohttp when installed (much less CPU per request than
        httpx's pool at high concurrency), else httpx with TCP_NODELAY; None = the SDK default."""
        import importlib
        import socket

        import openai

        try:
            mro = openai.DefaultAsyncHttpxClient.__mro__
            base = next(c for c in mro if c.__module__.split(".")[0].startswith("httpx"))
            httpx_mod = importlib.import_module(base.__module__.split(".")[0])
        except (StopIteration, AttributeError, ImportError):  # an SDK without these hooks
            return None
        if self.transport in ("auto", "aiohttp") and hasattr(openai, "DefaultAioHttpClient"):
            try:
                import aiohttp  # noqa: F401

                return openai.DefaultAioHttpClient(timeout=self.timeout, limits=self._limits(httpx_mod))
            except (ImportError, RuntimeError, TypeError):
                if self.transport == "aiohttp":
                    raise ValueError("openai backend: transport 'aiohttp' needs `pip install aiohttp`.") from None
        try:
            # Requests go out as two writes (headers, body); with Nagle's algorithm on, the body
            # waits for the server's delayed ACK: ~40 ms more per call on a local server.
            transport = httpx_mod.AsyncHTTPTransport(
                limits=self._limits(httpx_mod), socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            )
            return openai.DefaultAsyncHttpxClient(transport=transport, timeout=self.timeout)
        except (AttributeError, TypeError):
            return None

    def _ensure(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                api_key=self._key,
                base_url=self.base_url,
                max_retries=0,  # retries are ours (jitter, Retry-After, shared pause, cache)
                timeout=self.timeout,
                http_client=self._http_client(),
            )
            self._sem = asyncio.Semaphore(self.concurrency)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client and wait for the cache writes."""
        if self.cache is not None:
            await asyncio.to_thread(self.cache.flush)
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    # ------------------------------------------------------------------ requests

    def request_body(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        # None leaves a parameter out (e.g. o-series models reject temperature and max_tokens:
        # set both to None and pass {"max_completion_tokens": N} in extra_body).
        for name, value in (("temperature", self.temperature), ("max_tokens", self.max_tokens), ("seed", self.seed)):
            if value is not None:
                body[name] = value
        body.update(self.extra_body)
        return body

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        expo = min(self.backoff_max, self.backoff_base * (2**attempt))
        d = expo * (0.5 + self._jitter.random() / 2)  # "equal jitter": never zero, never in lockstep
        if retry_after is not None:
            d = max(d, min(self.retry_after_max, retry_after))
        return d

    @staticmethod
    def _retry_after(exc: BaseException) -> float | None:
        """Seconds asked by ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
        resp = getattr(exc, "response", None)
        headers = getattr(resp, "headers", None)
        if headers is None or not hasattr(headers, "get"):
            return None
        ms = headers.get("retry-after-ms")
        if ms is not None:
            try:
                return max(0.0, float(ms) / 1000.0)
            except ValueError:
                pass
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
            return max(0.0, when.timestamp() - time.time())

    async def complete(self, messages: list[dict[str, Any]]) -> Reply:
        """The reply to ``messages`` (from the cache when this exact request was made before).

        Identical requests in flight at the same time share one call (single flight), so the
        answer to a request never depends on timing and a re-run replays the same answers.
        """
        body = self.request_body(messages)
        blob = request_blob(body)
        key = DiskCache.key(blob)
        if self.cache is not None and (hit := self.cache.get(key)) is not None and not self._leaks(hit["text"]):
            self.usage.cached += 1
            ct = (hit.get("usage") or {}).get("completion_tokens")
            return Reply(hit["text"], hit.get("finish_reason"), cached=True, completion_tokens=ct)
        if key in self._inflight:
            self.usage.cached += 1
            reply = await asyncio.shield(self._inflight[key])
            return Reply(reply.text, reply.finish_reason, cached=True, completion_tokens=reply.completion_tokens)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            reply = await self._call(blob, key)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: the waiters re-raise it themselves
            raise
        else:
            fut.set_result(reply)
            return reply
        finally:
            self._inflight.pop(key, None)

    async def _wait_pause(self) -> None:
        loop = asyncio.get_running_loop()
        while (wait := self._not_before - loop.time()) > 0:
            await asyncio.sleep(wait)

    async def _post(self, client: Any, blob: bytes) -> dict[str, Any]:
        # The SDK's documented low-level call: same auth, errors and retries-off behaviour as
        # chat.completions.create, without its per-call walk over the messages (~2 ms of CPU a
        # call at high concurrency). The body goes out as the canonical JSON already hashed for
        # the cache (SDKs without ``content=`` get the dict); the response is parsed as plain
        # JSON, not into pydantic models.
        if self._raw_content is None:
            import inspect

            self._raw_content = "content" in inspect.signature(client.post).parameters
        if self._raw_content:
            resp = await client.post(
                "/chat/completions",
                content=blob,
                cast_to=str,
                options={"headers": {"Content-Type": "application/json"}},
            )
        else:  # pragma: no cover - older openai 1.x
            resp = await client.post("/chat/completions", body=json.loads(blob), cast_to=str)
        try:
            data = json.loads(resp)
        except (TypeError, ValueError):
            raise MalformedResponse("response is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list) or not data["choices"]:
            raise MalformedResponse("response has no choices")
        return data

    async def _call(self, blob: bytes, key: str) -> Reply:
        import openai

        client = self._ensure()
        assert self._sem is not None
        last: BaseException | None = None
        loop = asyncio.get_running_loop()
        for attempt in range(self.max_retries + 1):
            if self._fatal:
                raise LLMError(self._fatal)
            await self._wait_pause()
            retry_after = None
            async with self._sem:
                if self._fatal:
                    raise LLMError(self._fatal)
                self.usage.requests += 1
                try:
                    data = await self._post(client, blob)
                    choice = data["choices"][0] if isinstance(data["choices"][0], dict) else {}
                    message = choice.get("message") or {}
                    text = message.get("content")
                    if text is not None and not isinstance(text, str):
                        raise MalformedResponse("message content is not text")
                    text = text or ""
                    finish = choice.get("finish_reason")
                    if self._leaks(text):  # never cached, never returned
                        log.warning("chat request: %s", UNSAFE_REPLY)
                        raise UnsafeReply(UNSAFE_REPLY)
                except (
                    openai.RateLimitError,
                    openai.APITimeoutError,
                    openai.APIConnectionError,
                    openai.InternalServerError,
                    MalformedResponse,
                ) as exc:
                    last = exc
                    retry_after = self._retry_after(exc)
                except openai.APIStatusError as exc:
                    code = exc.status_code
                    if code >= 500 or code in RETRYABLE_STATUS:
                        last = exc
                        retry_after = self._retry_after(exc)
                    else:
                        msg = _scrub(f"{type(exc).__name__} {code}: {exc.message}", self._key)
                        if code in FATAL_STATUS:
                            self._fatal = f"{msg} ({FATAL_STATUS[code]}); stopped sending requests"
                            log.error("chain writer: %s", self._fatal)
                            raise LLMError(self._fatal) from None
                        raise LLMError(msg, final=code == 400) from None
                else:
                    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
                    reported = usage.get("completion_tokens")
                    pt, ct = int(usage.get("prompt_tokens") or 0), int(reported or 0)
                    self.usage.prompt_tokens += pt
                    self.usage.completion_tokens += ct
                    if self.cache is not None:
                        self.cache.put_later(key, {
                            "text": text, "finish_reason": finish, "model": data.get("model") or self.model,
                            "usage": {"prompt_tokens": pt, "completion_tokens": ct}, "created": time.time(),
                        })
                    return Reply(text, finish, completion_tokens=None if reported is None else ct)
            name = type(last).__name__
            self.usage.errors[name] = self.usage.errors.get(name, 0) + 1
            if attempt == self.max_retries:
                break
            self.usage.retries += 1
            delay = self._delay(attempt, retry_after)
            if isinstance(last, openai.RateLimitError) or getattr(last, "status_code", None) == 429:
                # A rate limit applies to the whole client: everybody waits.
                self._not_before = max(self._not_before, loop.time() + delay)
            log.debug("chat request: %s, retry %d in %.2f s", name, attempt + 1, delay)
            await asyncio.sleep(delay)
        detail = _scrub(str(last), self._key)[:200] if last is not None else ""
        detail = f" ({detail})" if detail else ""
        raise LLMError(f"gave up after {self.max_retries + 1} attempts: {type(last).__name__}{detail}")
