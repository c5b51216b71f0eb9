"""Chain backends: who writes a chain's INFLUENCE, REASONING and CONCLUSION, in one registry.

Two kinds of backend share the registry:

* a **chat** backend is a chat model behind a client object (:class:`ChatBackend`: an async
  ``complete(messages) -> Reply``, ``usage`` and ``aclose()``). The chain writer runs the four
  prompted steps (influence → reasoning → conclusion → length scaling, each validated and
  regenerated when rejected) over it (:mod:`factory.chains.steps`). ``openai`` (any
  OpenAI-compatible server: OpenAI, vLLM, Ollama, LM Studio) is one.
* a **writer** backend writes the three fields itself (:class:`ChainBackend`); ``template``
  (offline, deterministic, no model) is one.

The chain writer obtains its backend only here (``ChainConfig(backend=NAME)`` →
:func:`get_backend`). Adding a chat backend is one new file with a class whose constructor takes
the chat settings as keywords (:data:`CHAT_SETTINGS`; accept ``**settings`` and ignore what you
do not use) plus one registration line::

    register_backend("mymodel", "factory.chains.mymodel:MyChat")

Targets are ``"module:attribute"`` strings, imported when the backend is first used (so
``robust-r1 --help`` never imports an SDK), or the callable itself.

Evaluation and other callers send image + text messages through a chat backend with
:func:`open_chat`, :func:`ask` and :func:`run_sync`::

    chat = open_chat("openai", model="gpt-4o", base_url=None, temperature=0.0, max_tokens=1024)

    async def run():
        try:
            return await asyncio.gather(*(ask(chat, q, [img]) for img, q in pairs), return_exceptions=True)
        finally:
            await chat.aclose()

    replies = run_sync(run())      # [Reply(text, finish_reason, cached, completion_tokens) | exception]
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from factory.errors import ConfigError, ServiceError

T = TypeVar("T")

KINDS = ("chat", "writer")
CHAT_SETTINGS = (
    "model",
    "base_url",
    "api_key",
    "concurrency",
    "max_retries",
    "backoff_base",
    "backoff_max",
    "timeout",
    "cache_dir",
    "temperature",
    "max_tokens",
    "seed",
    "extra_body",
    "transport",
)
"""The keywords a chat backend is constructed with (``ChainConfig.chat_settings()``)."""


# ---------------------------------------------------------------- what a chat backend returns


@dataclass(frozen=True)
class Reply:
    """One chat completion."""

    text: str
    finish_reason: str | None = None
    """``stop``, ``length`` (cut off at ``max_tokens``: the writer asks again), ..."""
    cached: bool = False
    completion_tokens: int | None = None
    """Tokens of the reply as the server counted them; ``None`` if not reported."""


@dataclass
class Usage:
    """Counters of one chat backend (one batch)."""

    requests: int = 0
    """Requests sent (retries included)."""
    cached: int = 0
    """Answers served from a cache or shared with an identical request in flight."""
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    """Failed attempts by kind (RateLimitError, InternalServerError, APITimeoutError, ...)."""

    def cost(self, per_1k_in: float | None, per_1k_out: float | None) -> float | None:
        """USD for the tokens used (cache hits cost nothing); None without prices."""
        if per_1k_in is None or per_1k_out is None:
            return None
        return (self.prompt_tokens * per_1k_in + self.completion_tokens * per_1k_out) / 1000.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cached": self.cached,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "errors": dict(self.errors),
        }


class LLMError(ServiceError):
    """A chat request failed for good (retries exhausted or a non-retryable error).

    By default this is the *service's* failure (connection refused, 401/403, 5xx or 429 after the
    retries, a malformed answer): no verdict on the sample, which the next run retries
    (:class:`SampleDeferred`). ``final=True`` marks a refusal of this very request (a 400: the
    request itself is bad), recorded as the sample's final reason."""

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        self.final = final


class SampleFailed(Exception):
    """A backend cannot write this sample's chain; the message is the reason recorded for it."""


class SampleDeferred(SampleFailed):
    """The sample's chain could not be written because the service failed (an outage, a wrong key,
    rate limits after every retry): not a verdict on the sample. Recorded with ``retry: true``;
    the next run of the same build retries it."""


class UnsafeReply(SampleFailed):
    """A reply that must never be stored: it contains a live secret (a server echoing the API key).
    It is discarded, never cached; the message never contains the secret."""


# ---------------------------------------------------------------- the protocols


@runtime_checkable
class ChatBackend(Protocol):
    """A chat model. Messages are OpenAI-style: ``[{"role": "system", "content": "..."},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": DATA_URL}},
    {"type": "text", "text": "..."}]}]`` (:func:`chat_messages` builds them)."""

    usage: Usage

    async def complete(self, messages: list[dict[str, Any]]) -> Reply:
        """The reply; raises :class:`LLMError` when the request failed for good."""
        ...

    async def aclose(self) -> None:
        """Release connections and flush caches (called once, after the batch)."""
        ...


class ChainBackend(Protocol):
    """Writes the three prose fields of a chain for one request."""

    usage: Usage | None
    """``None`` when the backend makes no requests."""

    async def write(self, request: Any, target_words: int) -> tuple[str, str, str]:
        """``(influence, reasoning, conclusion)`` for a ``ChainRequest`` whose reasoning must have
        about ``target_words`` words; raises :class:`SampleFailed` with the reason otherwise."""
        ...

    async def aclose(self) -> None: ...


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class Backend:
    """A registered backend."""

    name: str
    target: str | Callable[..., Any]
    """``"module:attribute"`` (imported on first use) or the callable: for a ``chat`` backend it
    is called with the :data:`CHAT_SETTINGS` keywords and returns a :class:`ChatBackend`; for a
    ``writer`` backend it is called with the ``ChainConfig`` and returns a :class:`ChainBackend`."""
    kind: str = "chat"
    description: str = ""

    @property
    def uses_model(self) -> bool:
        """A chat backend talks to a model: it takes ``model``, sees images, runs concurrently."""
        return self.kind == "chat"

    def load(self) -> Callable[..., Any]:
        if callable(self.target):
            return self.target
        module, _, attr = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


_REGISTRY: dict[str, Backend] = {}


def register_backend(
    name: str, target: str | Callable[..., Any], *, kind: str = "chat", description: str = "", replace: bool = False
) -> Backend:
    """Register a backend under ``name`` (what ``ChainConfig(backend=...)`` and ``--backend`` take)."""
    if kind not in KINDS:
        raise ConfigError("kind", f"use {' or '.join(KINDS)}.", value=kind)
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError("name", "use letters, digits, '-' and '_'.", value=name)
    if isinstance(target, str) and ":" not in target:
        raise ConfigError("target", "give 'module:attribute' or a callable.", value=target)
    if name in _REGISTRY and not replace:
        raise ConfigError("name", "is already registered (pass replace=True to replace it).", value=name)
    spec = Backend(name, target, kind, description)
    _REGISTRY[name] = spec
    return spec


def unregister_backend(name: str) -> None:
    """Remove a backend (tests, plugins that clean up after themselves)."""
    _REGISTRY.pop(name, None)


def backend_names() -> tuple[str, ...]:
    """The registered backends, in registration order."""
    return tuple(_REGISTRY)


def find_backend(name: str) -> Backend | None:
    return _REGISTRY.get(name)


def get_backend(name: str) -> Backend:
    """The backend registered as ``name``; :class:`ConfigError` (field ``backend``) otherwise."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise ConfigError("backend", "use " + " or ".join(repr(n) for n in _REGISTRY) + ".", value=name)
    return spec


def open_chat(name: str = "openai", **settings: Any) -> ChatBackend:
    """A chat backend's client, constructed with ``settings`` (:data:`CHAT_SETTINGS` keywords)."""
    spec = get_backend(name)
    if spec.kind != "chat":
        raise ConfigError("backend", "writes chains itself; it has no chat model to send messages to.", value=name)
    return spec.load()(**settings)


# ---------------------------------------------------------------- messages, sync calls


def chat_messages(
    text: str, images: Sequence[str] = (), *, system: str | None = None, image_first: bool = True
) -> list[dict[str, Any]]:
    """OpenAI-style messages: an optional system turn, then one user turn with the images (data
    URLs, see ``factory.degrade.image.image_data_url``) before the text (after it with
    ``image_first=False``, as some models were trained)."""
    content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": url}} for url in images]
    text_part = {"type": "text", "text": text}
    content = [*content, text_part] if image_first else [text_part, *content]
    head = [{"role": "system", "content": system}] if system is not None else []
    return [*head, {"role": "user", "content": content}]


async def encode_images(images: Sequence[Any], max_side: int = 768) -> list[str]:
    """Data URLs of RGB uint8 arrays (strings pass through), encoded off the event loop."""
    from factory.degrade.image import image_data_url

    out = []
    for im in images:
        if isinstance(im, str):
            out.append(im)
        elif im.shape[0] * im.shape[1] <= 128 * 128:  # cheaper than a thread hand-off
            out.append(image_data_url(im, max_side))
        else:
            out.append(await asyncio.to_thread(image_data_url, im, max_side))
    return out


async def ask(
    chat: ChatBackend,
    text: str,
    images: Sequence[Any] = (),
    *,
    system: str | None = None,
    max_side: int = 768,
    image_first: bool = True,
) -> Reply:
    """One image + text question to ``chat`` (images: RGB arrays or data URLs)."""
    urls = await encode_images(images, max_side)
    return await chat.complete(chat_messages(text, urls, system=system, image_first=image_first))


def run_sync(coro: Awaitable[T]) -> T:
    """Run a coroutine to completion from synchronous code, also inside a running event loop
    (Jupyter): then it runs on its own loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


# ---------------------------------------------------------------- the built-in backends

register_backend(
    "template",
    "factory.chains.template:TemplateBackend",
    kind="writer",
    description="offline and deterministic: chains from the recipe and the QA, no model",
)
register_backend(
    "openai",
    "factory.chains.llm:ChatClient",
    description="any OpenAI-compatible server (OpenAI, vLLM, Ollama, LM Studio); key from OPENAI_API_KEY",
)
