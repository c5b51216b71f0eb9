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
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable, Sequence

import numpy as np

from factory.degrade import DEFAULT_STYLE, get
from factory.degrade.recipes import Recipe

from . import template as tpl
from .format import format_type, render_chain
from .prompting import build_prompt, format_question, reload_prompts, render_prompt, target_words
from .validate import check_conclusion, check_length, check_text, clean_reply, length_bounds, words

log = logging.getLogger("robust_r1.chains")

__all__ = [
    "BACKENDS",
    "BatchReport",
    "ChainConfig",
    "ChainRequest",
    "ChainResult",
    "awrite_chains",
    "build_prompt",
    "format_question",
    "request_from_image",
    "target_words",
    "write_chains",
]

BACKENDS = ("template", "openai")

# Fields of ChainConfig that change how requests are sent, not what is written.
_TRANSPORT_FIELDS = ("api_key", "cache_dir", "concurrency", "max_retries", "backoff_base", "backoff_max", "timeout", "transport")


@dataclass
class ChainConfig:
    """How chains are written. Every field has a documented default."""

    backend: str = "template"
    """``template`` (offline, deterministic) or ``openai`` (any OpenAI-compatible server)."""
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
    length_base: float = 25.0
    """``a`` of the target: words = clamp(a + b × total_intensity, lo, hi)."""
    length_per_unit: float = 30.0
    """``b``: extra words per unit of total intensity."""
    length_min: int = 25
    """``lo``."""
    length_max: int = 200
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
            total_intensity, base=self.length_base, per_unit=self.length_per_unit, lo=self.length_min, hi=self.length_max
        )

    @property
    def backend_label(self) -> str:
        """The dataset's ``backend`` column: ``template`` or ``openai:<model>``."""
        return "template" if self.backend == "template" else f"openai:{self.model}"

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change the written text (for resume keys): no key, cache or transport."""
        d = asdict(self)
        for k in _TRANSPORT_FIELDS:
            d.pop(k, None)
        return d

    def validate(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"chain backend {self.backend!r}: use 'template' or 'openai'.")
        if not 0 < self.length_tolerance < 1:
            raise ValueError(f"length tolerance must be in (0, 1), got {self.length_tolerance!r}.")
        if not 1 <= self.length_min <= self.length_max:
            raise ValueError(f"length bounds: need 1 <= length_min <= length_max, got {self.length_min}..{self.length_max}.")
        if self.max_regenerations < 0 or self.concurrency < 1:
            raise ValueError("max_regenerations must be >= 0 and concurrency >= 1.")


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

    def fields(self) -> dict[str, Any]:
        """The chain fields (what ``robust-r1 chain --json`` prints)."""
        return {k: getattr(self, k) for k in ("type", "influence", "reasoning", "conclusion", "answer", "solution", "prompt", "target_words", "backend")}


class BatchReport(list):
    """The results of a batch, in request order (a ``list`` of :class:`ChainResult`), plus usage."""

    def __init__(self, results: Sequence[ChainResult] = (), usage: dict[str, Any] | None = None, cost_usd: float | None = None):
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


class SampleFailed(Exception):
    pass


def _degradation_context(recipe: Recipe) -> list[dict[str, Any]]:
    return [
        {"name": s.name, "stage": s.stage, "intensity": s.intensity, "description": get(s.name).describe(s.style)}
        for s in recipe.steps
    ]


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


def _check_request(req: ChainRequest) -> None:
    if not str(req.question).strip():
        raise SampleFailed("question: empty")
    if not str(req.answer).strip() or not str(req.answer_text).strip():
        raise SampleFailed("answer: empty")
    if req.choices:
        a = str(req.answer).strip()
        if not a.isdigit() or not 0 <= int(a) < len(req.choices):
            raise SampleFailed(f"answer: {req.answer!r} is not an option index 0..{len(req.choices) - 1}")


def _write_template(req: ChainRequest, cfg: ChainConfig) -> ChainResult:
    _check_request(req)
    target = cfg.target(req.recipe.total_intensity)
    infl = tpl.influence(req.recipe, req.sample_id)
    reas = tpl.reasoning(req.recipe, req.sample_id, req.question, req.choices, req.answer_text, target)
    concl = tpl.conclusion(req.recipe, req.sample_id, str(req.answer), req.answer_text, req.choices)
    for reason in (
        check_text("influence", infl),
        check_length(reas, target, cfg.length_tolerance),
        check_conclusion(concl, req.answer_text, str(req.answer), req.choices),
    ):
        if reason:
            raise SampleFailed(reason)
    return _finish(req, cfg, infl, reas, concl, target)


class _LLMWriter:
    """The four LLM steps of one sample, with validation and bounded regeneration."""

    def __init__(self, cfg: ChainConfig):
        from .llm import ChatClient

        self.cfg = cfg
        self.client = ChatClient(
            model=cfg.model or "",
            base_url=cfg.base_url,
            api_key=cfg.api_key,
            concurrency=cfg.concurrency,
            max_retries=cfg.max_retries,
            backoff_base=cfg.backoff_base,
            backoff_max=cfg.backoff_max,
            timeout=cfg.timeout,
            cache_dir=cfg.cache_dir,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            seed=cfg.seed,
            extra_body=cfg.extra_body,
            transport=cfg.transport,
        )
        self.system = render_prompt("system", cfg.prompts_dir)
        self._preflight()

    def _preflight(self) -> None:
        """Render every step template once with sample values: a broken user template is one
        clear error before the batch, not a failure per sample."""
        ctx = {
            "question": "What is shown? 0. a cat 1. a dog", "choices": ["a cat", "a dog"], "answer": "0", "answer_text": "a cat",
            "degradations": [{"name": "lens blur", "stage": "acquisition", "intensity": 0.5, "description": "blur"}],
            "degradation_list": "lens blur (0.50)", "total_intensity": 0.5, "target_words": 40, "vision": self.cfg.vision,
            "influence": "i", "reasoning": "r", "min_words": 35, "max_words": 45, "longer": True,
        }
        for name in ("influence", "reasoning", "conclusion", "length_scaling"):
            render_prompt(name, self.cfg.prompts_dir, **ctx)

    def _messages(self, text: str, images: Sequence[str], feedback: str | None) -> list[dict[str, Any]]:
        if feedback:
            text += f"\n\nYour previous answer was rejected ({feedback}). Write it again and fix that."
        content: list[dict[str, Any]] = [{"type": "image_url", "image_url": {"url": url}} for url in images]
        content.append({"type": "text", "text": text})
        return [{"role": "system", "content": self.system}, {"role": "user", "content": content}]

    async def _step(self, template: str, images: Sequence[str], check: Callable[[str], str | None], ctx: dict[str, Any]) -> str:
        from .llm import LLMError

        prompt = render_prompt(template, self.cfg.prompts_dir, vision=bool(images), **ctx)
        feedback = None
        for _ in range(self.cfg.max_regenerations + 1):
            try:
                reply = await self.client.complete(self._messages(prompt, images, feedback))
            except LLMError as exc:
                raise SampleFailed(f"{template}: {exc}") from None
            text = clean_reply(reply.text)
            feedback = check(text)
            if feedback is None and reply.finish_reason == "length":
                feedback = f"{template}: cut off at max_tokens"
            if feedback is None:
                return text
        raise SampleFailed(f"{feedback} (step {template}, {self.cfg.max_regenerations + 1} attempts)")

    async def _images(self, req: ChainRequest) -> tuple[list[str], list[str]]:
        """Data URLs, encoded once per sample and off the event loop: (clean+degraded, degraded)."""
        from .llm import image_data_url

        if not self.cfg.vision:
            return [], []
        side = self.cfg.image_max_side

        async def encode(im: np.ndarray | None) -> str | None:
            if im is None:
                return None
            if im.shape[0] * im.shape[1] <= 128 * 128:  # cheaper than a thread hand-off
                return image_data_url(im, side)
            return await asyncio.to_thread(image_data_url, im, side)

        clean, degraded = await encode(req.clean_image), await encode(req.degraded_image)
        return [u for u in (clean, degraded) if u], [degraded] if degraded else []

    async def write(self, req: ChainRequest) -> ChainResult:
        cfg = self.cfg
        _check_request(req)
        target = cfg.target(req.recipe.total_intensity)
        degs = _degradation_context(req.recipe)
        lo, hi = length_bounds(target, cfg.length_tolerance)
        ctx: dict[str, Any] = {
            "question": format_question(req.question, req.choices),
            "choices": list(req.choices),
            "answer": str(req.answer),
            "answer_text": req.answer_text,
            "degradations": degs,
            "degradation_list": ", ".join(f"{d['name']} ({d['intensity']:.2f})" for d in degs) or "none",
            "total_intensity": req.recipe.total_intensity,
            "target_words": target,
        }
        both, degraded = await self._images(req)
        infl = await self._step("influence", both, lambda t: check_text("influence", t), ctx)
        draft = await self._step("reasoning", degraded, lambda t: check_text("reasoning", t), {**ctx, "influence": infl})
        conclude = self._step(
            "conclusion", [], lambda t: check_conclusion(t, req.answer_text, str(req.answer), req.choices),
            {**ctx, "influence": infl, "reasoning": draft},
        )
        if check_length(draft, target, cfg.length_tolerance) is None:
            return _finish(req, cfg, infl, draft, await conclude, target)
        # Length scaling needs only the draft, like the conclusion: both run at the same time.
        # Ask for the middle of the accepted band, so a model that misses a little still passes.
        narrow = cfg.length_tolerance * 0.6
        scale = self._step(
            "length_scaling", [], lambda t: check_length(t, target, cfg.length_tolerance),
            {**ctx, "influence": infl, "reasoning": draft, "min_words": max(lo, int(target * (1 - narrow))),
             "max_words": min(hi, int(target * (1 + narrow))), "longer": words(draft) < target},
        )
        concl, reas = await asyncio.gather(conclude, scale, return_exceptions=True)
        for outcome in (concl, reas):
            if isinstance(outcome, BaseException):
                raise outcome
        return _finish(req, cfg, infl, reas, concl, target)


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

    def failed(req: ChainRequest, reason: str) -> ChainResult:
        return ChainResult(sample_id=req.sample_id, ok=False, backend=cfg.backend_label, reason=reason)

    if cfg.backend == "template":
        out = []
        for i, req in enumerate(requests):
            if i and i % 512 == 0:
                await asyncio.sleep(0)  # let other tasks (progress bars, servers) run during long batches
            try:
                res = _write_template(req, cfg)
            except (SampleFailed, ValueError) as exc:
                res = failed(req, str(exc))
            except Exception as exc:  # noqa: BLE001 - one bad sample never kills the batch
                log.exception("chain for %s failed unexpectedly", req.sample_id)
                res = failed(req, f"unexpected {type(exc).__name__}: {exc}")
            out.append(res)
            if progress:
                progress(res)
        return BatchReport(out)

    writer = _LLMWriter(cfg)

    async def one(req: ChainRequest) -> ChainResult:
        try:
            res = await writer.write(req)
        except (SampleFailed, ValueError) as exc:
            res = failed(req, str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad sample never kills the batch
            log.exception("chain for %s failed unexpectedly", req.sample_id)
            res = failed(req, f"unexpected {type(exc).__name__}: {exc}")
        if progress:
            progress(res)
        return res

    try:
        results = await asyncio.gather(*(one(r) for r in requests))
    finally:
        await writer.client.aclose()
    usage = writer.client.usage
    from .llm import PRICES_PER_1K

    pin, pout = cfg.cost_per_1k_in, cfg.cost_per_1k_out
    if (pin is None or pout is None) and cfg.model in PRICES_PER_1K:
        pin, pout = PRICES_PER_1K[cfg.model]
    report = BatchReport(list(results), usage.as_dict(), usage.cost(pin, pout))
    log.info(
        "chains: %d ok, %d failed; %d requests (%d retries), %d cached; %d + %d tokens%s",
        len(report.ok), len(report.failed), usage.requests, usage.retries, usage.cached,
        usage.prompt_tokens, usage.completion_tokens, f"; ${report.cost_usd:.4f}" if report.cost_usd is not None else "",
    )
    return report


def write_chains(
    requests: Sequence[ChainRequest],
    config: ChainConfig | None = None,
    *,
    progress: Callable[[ChainResult], Any] | None = None,
) -> BatchReport:
    """Synchronous :func:`awrite_chains` (runs its own event loop; works inside Jupyter too)."""
    coro: Awaitable[BatchReport] = awrite_chains(requests, config, progress=progress)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    # Called from inside a running loop (e.g. Jupyter): run in a worker thread.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


def resolve_answer(answer: str, choices: Sequence[str]) -> tuple[str, str]:
    """``(answer, answer_text)`` from a user's answer: for multiple choice an option index, an
    option letter (A, B, ...) or the option text; else the answer itself."""
    answer = str(answer).strip()
    if not choices:
        if not answer:
            raise ValueError("--answer: empty.")
        return answer, answer
    n = len(choices)
    low = [" ".join(str(c).split()).lower() for c in choices]
    if answer.isdigit():
        idx = int(answer)
        if not 0 <= idx < n:
            raise ValueError(f"--answer {answer!r}: option index out of range 0..{n - 1}.")
    elif " ".join(answer.split()).lower() in low:
        idx = low.index(" ".join(answer.split()).lower())
    elif len(answer) == 1 and answer.isalpha() and ord(answer.upper()) - 65 < n:
        idx = ord(answer.upper()) - 65
    else:
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
    sid = sample_id or "chain:" + str(degrade.derive_seed(seed, img.shape, int(img[:: max(1, img.shape[0] // 16)].sum())))
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
