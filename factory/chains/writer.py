"""The chain writer: TYPE from the recipe; INFLUENCE → REASONING → CONCLUSION → length scaling
from a backend; every field validated; a failed sample is recorded with its reason, never written.

::

    from factory.chains.writer import ChainConfig, ChainRequest, write_chains
    results = write_chains([ChainRequest(...), ...], ChainConfig(backend="template"))
    results[0].ok, results[0].solution, results[0].reason
    results.usage, results.cost_usd          # openai backend: requests, cache hits, tokens, USD

``write_chains`` is synchronous (it runs the async engine, also from inside Jupyter);
``awrite_chains`` is the coroutine. Both return a :class:`BatchReport` (a list of
:class:`ChainResult` in request order) and never stop for one bad sample.

The backend (``template``, ``openai`` or any other) comes from the registry of
:mod:`factory.chains.backends` (:func:`open_backend`); this module does what is common to all:
checking the request, the target length, assembling and labelling the result, usage and cost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from factory.degrade import DEFAULT_STYLE
from factory.degrade.recipes import Recipe
from factory.errors import ConfigError

from .answers import option_index
from .backends import (
    CHAT_SETTINGS,
    ChainBackend,
    LLMError,
    SampleDeferred,
    SampleFailed,
    backend_names,
    find_backend,
    get_backend,
    run_sync,
)
from .format import format_type, render_chain
from .prompting import LENGTH, build_prompt, format_question, reload_prompts, target_words
from .validate import check_bounds, field_limits

log = logging.getLogger("robust_r1.chains")

__all__ = [
    "BatchReport",
    "ChainConfig",
    "ChainRequest",
    "ChainResult",
    "awrite_chains",
    "build_prompt",
    "format_question",
    "open_backend",
    "request_from_image",
    "target_words",
    "write_chains",
]

# Fields of ChainConfig that change how requests are sent, not what is written.
_TRANSPORT_FIELDS = (
    "api_key", "cache_dir", "concurrency", "max_retries", "backoff_base", "backoff_max", "timeout", "transport",
)  # fmt: skip


@dataclass
class ChainConfig:
    """How chains are written. Every field has a documented default."""

    backend: str = "template"
    """A registered backend (:mod:`factory.chains.backends`): ``template`` (offline, deterministic),
    ``openai`` (any OpenAI-compatible server), or one you register."""
    model: str | None = None
    """Model name for ``openai`` (e.g. ``gpt-4o``, or the name a vLLM/Ollama server serves)."""
    base_url: str | None = None
    """Server URL, e.g. ``http://localhost:8000/v1`` (vLLM); None = api.openai.com."""
    api_key: str | None = field(default=None, repr=False)
    """Normally None: the key is read from ``OPENAI_API_KEY``. Never logged, cached or printed."""
    concurrency: int = 8
    """Requests in flight at most."""
    max_retries: int = 6
    """Retries of one request on 429, 5xx, timeouts, dropped connections, malformed replies."""
    backoff_base: float = 1.0
    """First retry delay in seconds (doubled each retry, with jitter; Retry-After honoured)."""
    backoff_max: float = 60.0
    timeout: float = 120.0
    """Seconds per request."""
    temperature: float | None = 0.2
    """None: not sent (models that only accept their default)."""
    max_tokens: int | None = 1024
    """None: not sent (o-series models: pass ``{"max_completion_tokens": N}`` in ``extra_body``)."""
    extra_body: dict[str, Any] | None = None
    """Extra request fields for the server (e.g. ``{"top_k": 20}`` for vLLM); part of the cache key."""
    transport: str = "auto"
    """HTTP layer under the SDK: ``auto`` (aiohttp when installed, else httpx), ``aiohttp``, ``httpx``."""
    cache_dir: str | None = None
    """On-disk response cache; a re-run makes zero calls for work already done."""
    prompts_dir: str | None = None
    """Folder with your own copies of the ``*.j2`` templates."""
    vision: bool = True
    """Send the images (as PNG data URLs). ``False`` for text-only models."""
    image_max_side: int = 768
    """Images are downscaled so their longer side is at most this many pixels before sending."""
    length_base: float = LENGTH.base
    """``a`` of the target: words = clamp(a + b × total_intensity, lo, hi)."""
    length_per_unit: float = LENGTH.per_unit
    """``b``: extra words per unit of total intensity."""
    length_min: int = LENGTH.lo
    """``lo``."""
    length_max: int = LENGTH.hi
    """``hi``."""
    length_tolerance: float = 0.25
    """Accepted deviation of the scaled reasoning from the target word count."""
    max_regenerations: int = 2
    """Extra attempts per step after a validation failure, before the sample is recorded as failed."""
    cost_per_1k_in: float | None = None
    """USD per 1K prompt tokens (None: built-in price of known OpenAI models, else no cost)."""
    cost_per_1k_out: float | None = None
    """USD per 1K completion tokens."""
    seed: int | None = 0
    """Sent as the request ``seed`` (servers that support it answer reproducibly); None: not sent."""

    def target(self, total_intensity: float) -> int:
        return target_words(
            total_intensity,
            base=self.length_base,
            per_unit=self.length_per_unit,
            lo=self.length_min,
            hi=self.length_max,
        )

    @property
    def uses_model(self) -> bool:
        """The backend is a chat model (it takes ``model``, may see the images, runs concurrently)."""
        spec = find_backend(self.backend)
        return spec is None or spec.uses_model

    @property
    def backend_label(self) -> str:
        """The dataset's ``backend`` column: ``template``, or ``<backend>:<model>`` (``openai:gpt-4o``)."""
        return f"{self.backend}:{self.model}" if self.uses_model else self.backend

    def chat_settings(self) -> dict[str, Any]:
        """The keywords a chat backend is constructed with (``backends.CHAT_SETTINGS``)."""
        settings = {k: getattr(self, k) for k in CHAT_SETTINGS}
        settings["model"] = self.model or ""
        return settings

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change the written text (for resume keys): no key, cache or transport."""
        d = asdict(self)
        for k in _TRANSPORT_FIELDS:
            d.pop(k, None)
        return d

    def validate(self) -> None:
        """Raise :class:`factory.errors.ConfigError` naming the first unusable field."""
        if self.backend not in backend_names():
            get_backend(self.backend)  # raises, listing the registered backends
        if not 0 < self.length_tolerance < 1:
            raise ConfigError("length_tolerance", "must be in (0, 1).", value=self.length_tolerance)
        if not 1 <= self.length_min <= self.length_max:
            msg = f"need 1 <= length_min <= length_max (length_max is {self.length_max})."
            raise ConfigError("length_min", msg, value=self.length_min)
        if self.max_regenerations < 0:
            raise ConfigError("max_regenerations", "must be >= 0.", value=self.max_regenerations)
        if self.concurrency < 1:
            raise ConfigError("concurrency", "must be >= 1.", value=self.concurrency)


RESULT_FIELDS = (
    "type", "influence", "reasoning", "conclusion", "answer", "solution", "prompt", "target_words", "backend",
)  # fmt: skip
"""The chain fields of a :class:`ChainResult` (what ``robust-r1 chain --json`` prints)."""


@dataclass
class ChainRequest:
    """One sample to write a chain for."""

    sample_id: str
    question: str
    """The question as asked (options separate, in ``choices``)."""
    choices: list[str]
    """Options of a multiple-choice question; empty for open questions."""
    answer: str
    """What ``<ANSWER>`` must contain: the option index for multiple choice."""
    answer_text: str
    """The answer in words (the option text for multiple choice)."""
    recipe: Recipe
    clean_image: np.ndarray | None = None
    """RGB uint8 H×W×3; only needed by the openai backend with vision."""
    degraded_image: np.ndarray | None = None


@dataclass
class ChainResult:
    """A written chain (``ok``) or a failure with its ``reason``."""

    sample_id: str
    ok: bool
    type: str = ""
    influence: str = ""
    reasoning: str = ""
    conclusion: str = ""
    answer: str = ""
    solution: str = ""
    """The full tagged chain (SPEC format)."""
    prompt: str = ""
    """Question (with options) + the Robust-R1 instruction: the dataset's ``prompt`` column."""
    question: str = ""
    """The question as shown to the model (options appended as ``0. x 1. y``)."""
    target_words: int = 0
    backend: str = ""
    reason: str | None = None
    """Why the sample failed (``ok`` is False)."""
    retry: bool = False
    """The failure was the service's (an outage, a wrong key, rate limits after every retry), not a
    verdict on the sample: the next run retries it. False for a final reason (validation, bad input)."""

    def fields(self) -> dict[str, Any]:
        """The chain fields (what ``robust-r1 chain --json`` prints)."""
        return {k: getattr(self, k) for k in RESULT_FIELDS}


class BatchReport(list):
    """The results of a batch, in request order (a ``list`` of :class:`ChainResult`), plus usage."""

    def __init__(
        self, results: Sequence[ChainResult] = (), usage: dict[str, Any] | None = None, cost_usd: float | None = None
    ):
        super().__init__(results)
        self.usage: dict[str, Any] = dict(usage or {})
        """openai backend: requests, cached, retries, prompt_tokens, completion_tokens, errors."""
        self.cost_usd = cost_usd

    @property
    def results(self) -> list[ChainResult]:
        return list(self)

    @property
    def failed(self) -> list[ChainResult]:
        return [r for r in self if not r.ok]

    @property
    def ok(self) -> list[ChainResult]:
        return [r for r in self if r.ok]

    @property
    def deferred(self) -> list[ChainResult]:
        """Failures of the service, retried by the next run (``retry``)."""
        return [r for r in self if not r.ok and r.retry]


def _finish(req: ChainRequest, cfg: ChainConfig, infl: str, reas: str, concl: str, target: int) -> ChainResult:
    type_text = format_type(req.recipe.type_pairs())
    solution = render_chain(type_text, infl, reas, concl, req.answer)
    return ChainResult(
        sample_id=req.sample_id,
        ok=True,
        type=type_text,
        influence=infl,
        reasoning=reas,
        conclusion=concl,
        answer=str(req.answer),
        solution=solution,
        prompt=build_prompt(req.question, req.choices, cfg.prompts_dir),
        question=format_question(req.question, req.choices),
        target_words=target,
        backend=cfg.backend_label,
    )


def check_fields(cfg: ChainConfig, influence: str, reasoning: str, conclusion: str, secret: str | None = None) -> None:
    """What every backend's fields must satisfy before they are written: the length bounds of
    :func:`factory.chains.validate.field_limits` and no credential (a live secret of the
    environment, ``secret``, or a credential-shaped string). Raises :class:`SampleFailed` with a
    reason that never quotes the text."""
    from factory.secrets import find_secrets

    limits = field_limits(cfg.length_max, cfg.length_tolerance)
    for name, text in (("influence", influence), ("reasoning", reasoning), ("conclusion", conclusion)):
        if not isinstance(text, str):
            raise SampleFailed(f"{name}: the backend returned {type(text).__name__}, not text")
        reason = check_bounds(name, text, limits[name])
        if reason:
            raise SampleFailed(reason)
        kinds = find_secrets(text, [secret])
        if kinds:
            raise SampleFailed(f"{name}: contains a credential ({', '.join(kinds)}); the chain is not written")


def _check_request(req: ChainRequest) -> None:
    if not str(req.question).strip():
        raise SampleFailed("question: empty")
    if not str(req.answer).strip() or not str(req.answer_text).strip():
        raise SampleFailed("answer: empty")
    if req.choices:
        a = str(req.answer).strip()
        if not a.isdigit() or not 0 <= int(a) < len(req.choices):
            raise SampleFailed(f"answer: {req.answer!r} is not an option index 0..{len(req.choices) - 1}")


def open_backend(cfg: ChainConfig) -> ChainBackend:
    """The chain backend ``cfg.backend`` names, from the registry of :mod:`factory.chains.backends`:
    a chat backend is constructed with ``cfg.chat_settings()`` and driven by the prompted steps of
    :mod:`factory.chains.steps`; a writer backend is constructed with ``cfg``."""
    spec = get_backend(cfg.backend)
    if spec.kind == "chat":
        from .steps import ChatChainBackend

        return ChatChainBackend(cfg, spec.load()(**cfg.chat_settings()))
    return spec.load()(cfg)


async def awrite_chains(
    requests: Sequence[ChainRequest],
    config: ChainConfig | None = None,
    *,
    progress: Callable[[ChainResult], Any] | None = None,
) -> BatchReport:
    """Write chains for a batch. Results come back in request order; a failure never stops the batch.

    ``progress`` is called once per sample with its :class:`ChainResult` (in completion order).
    """
    cfg = config or ChainConfig()
    cfg.validate()
    reload_prompts()  # a batch sees the templates as they are on disk now
    build_prompt("What is shown?", ["a cat", "a dog"], cfg.prompts_dir)  # a broken instruction.j2 fails here, once

    def failed(req: ChainRequest, reason: str, retry: bool = False) -> ChainResult:
        from factory.secrets import redact

        reason = redact(reason, cfg.api_key)
        return ChainResult(sample_id=req.sample_id, ok=False, backend=cfg.backend_label, reason=reason, retry=retry)

    backend = open_backend(cfg)

    async def one(req: ChainRequest) -> ChainResult:
        try:
            _check_request(req)
            target = cfg.target(req.recipe.total_intensity)
            infl, reas, concl = await backend.write(req, target)
            check_fields(cfg, infl, reas, concl, cfg.api_key)
            res = _finish(req, cfg, infl, reas, concl, target)
        except SampleDeferred as exc:
            res = failed(req, str(exc), retry=True)
        except LLMError as exc:  # a backend that lets the service's error through
            res = failed(req, str(exc), retry=not exc.final)
        except (SampleFailed, ValueError) as exc:
            res = failed(req, str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad sample never kills the batch
            log.exception("chain for %s failed unexpectedly", req.sample_id)
            res = failed(req, f"unexpected {type(exc).__name__}: {exc}")
        if progress:
            progress(res)
        return res

    try:
        if cfg.uses_model:  # requests in flight at the same time (the client bounds them)
            results = list(await asyncio.gather(*(one(r) for r in requests)))
        else:
            results = []
            for i, req in enumerate(requests):
                if i and i % 512 == 0:
                    await asyncio.sleep(0)  # let other tasks (progress bars, servers) run during long batches
                results.append(await one(req))
    finally:
        await backend.aclose()
    usage = backend.usage
    if usage is None:
        return BatchReport(results)
    from .llm import PRICES_PER_1K

    pin, pout = cfg.cost_per_1k_in, cfg.cost_per_1k_out
    if (pin is None or pout is None) and cfg.model in PRICES_PER_1K:
        pin, pout = PRICES_PER_1K[cfg.model]
    report = BatchReport(results, usage.as_dict(), usage.cost(pin, pout))
    log.info(
        "chains: %d ok, %d failed (%d to retry); %d requests (%d retries), %d cached; %d + %d tokens%s",
        len(report.ok), len(report.failed), len(report.deferred), usage.requests, usage.retries, usage.cached,
        usage.prompt_tokens, usage.completion_tokens, "" if report.cost_usd is None else f"; ${report.cost_usd:.4f}",
    )
    return report


def write_chains(
    requests: Sequence[ChainRequest],
    config: ChainConfig | None = None,
    *,
    progress: Callable[[ChainResult], Any] | None = None,
) -> BatchReport:
    """Synchronous :func:`awrite_chains` (runs its own event loop; works inside Jupyter too)."""
    return run_sync(awrite_chains(requests, config, progress=progress))


def resolve_answer(answer: str, choices: Sequence[str]) -> tuple[str, str]:
    """``(answer, answer_text)`` from a user's answer: for multiple choice an option index, an
    option letter (A, B, ...) or the option text (the ``typed`` format of
    :func:`factory.chains.answers.option_index`); else the answer itself."""
    answer = str(answer).strip()
    if not choices:
        if not answer:
            raise ValueError("--answer: empty.")
        return answer, answer
    n = len(choices)
    idx = option_index(answer, choices, "typed")
    if idx is None and answer.isdigit():
        raise ValueError(f"--answer {answer!r}: option index out of range 0..{n - 1}.")
    if idx is None:
        raise ValueError(f"--answer {answer!r}: give the option index (0..{n - 1}), its letter or one of the choices.")
    return str(idx), str(choices[idx])


def request_from_image(
    image: Any,
    *,
    question: str,
    answer: str,
    choices: Sequence[str] = (),
    seed: int = 0,
    sample_id: str | None = None,
    style: str = DEFAULT_STYLE,
) -> ChainRequest:
    """Degrade ``image`` with the train recipe and make a request (the ``chain`` command's path).

    ``style``: the degradation style (``reference``, ``physical`` or ``mixed``; see
    ``factory.degrade``); the chain's wording follows the style each step was drawn in.
    """
    from factory import degrade

    img = degrade.to_rgb_uint8(image)
    fingerprint = int(img[:: max(1, img.shape[0] // 16)].sum())
    sid = sample_id or "chain:" + str(degrade.derive_seed(seed, img.shape, fingerprint))
    recipe = degrade.sample_recipe("train", seed, sid, style=style)
    choices = [str(c) for c in choices]
    answer_idx, answer_text = resolve_answer(answer, choices)
    return ChainRequest(
        sample_id=sid,
        question=question,
        choices=choices,
        answer=answer_idx,
        answer_text=answer_text,
        recipe=recipe,
        clean_image=img,
        degraded_image=degrade.render(img, recipe),
    )
