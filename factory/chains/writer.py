"""The chain writer: TYPE from the recipe; INFLUENCE → REASONING → CONCLUSION → length scaling
from a backend; every field validated; a failed sample is recorded with its reason, never written.

::

    from factory.chains.writer import ChainConfig, ChainRequest, write_chains
    results = write_chains([ChainRequest(...), ...], ChainConfig(backend="template"))
    results[0].ok, results[0].solution, results[0].reason
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

import numpy as np

from factory.degrade import get
from factory.degrade.recipes import Recipe

from . import template as tpl
from .format import render_chain
from .prompting import build_prompt, format_question, render_prompt, target_words
from .validate import check_conclusion, check_length, check_text, words

log = logging.getLogger("robust_r1.chains")

__all__ = ["ChainConfig", "ChainRequest", "ChainResult", "awrite_chains", "build_prompt", "format_question", "target_words", "write_chains"]


@dataclass
class ChainConfig:
    """How chains are written. Every field has a documented default."""

    backend: str = "template"
    """``template`` (offline, deterministic) or ``openai`` (any OpenAI-compatible server)."""
    model: str | None = None
    """Model name for ``openai`` (e.g. ``gpt-4o``, or the name a vLLM/Ollama server serves)."""
    base_url: str | None = None
    """Server URL, e.g. ``http://localhost:8000/v1``; None = api.openai.com."""
    api_key: str | None = None
    """Normally None: the key is read from ``OPENAI_API_KEY``."""
    concurrency: int = 8
    max_retries: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    timeout: float = 120.0
    temperature: float = 0.2
    max_tokens: int = 1024
    cache_dir: str | None = None
    """On-disk response cache; a re-run makes zero calls for work already done."""
    prompts_dir: str | None = None
    """Folder with your own copies of the ``*.j2`` templates."""
    vision: bool = True
    """Send the images (as data URLs). ``False`` for text-only models."""
    image_max_side: int = 768
    length_base: float = 25.0
    length_per_unit: float = 30.0
    length_min: int = 25
    length_max: int = 200
    length_tolerance: float = 0.25
    """Accepted deviation of the scaled reasoning from the target word count."""
    max_regenerations: int = 2
    """Extra attempts per step after a validation failure, before the sample is recorded as failed."""
    price_in_per_1m: float | None = None
    price_out_per_1m: float | None = None
    seed: int = 0

    def target(self, total_intensity: float) -> int:
        return target_words(
            total_intensity, base=self.length_base, per_unit=self.length_per_unit, lo=self.length_min, hi=self.length_max
        )

    @property
    def backend_label(self) -> str:
        return "template" if self.backend == "template" else f"openai:{self.model}"


@dataclass
class ChainRequest:
    """One sample to write a chain for."""

    sample_id: str
    question: str
    choices: list[str]
    answer: str
    """What ``<ANSWER>`` must contain: the option index for multiple choice."""
    answer_text: str
    recipe: Recipe
    clean_image: np.ndarray | None = None
    degraded_image: np.ndarray | None = None


@dataclass
class ChainResult:
    sample_id: str
    ok: bool
    type: str = ""
    influence: str = ""
    reasoning: str = ""
    conclusion: str = ""
    answer: str = ""
    solution: str = ""
    prompt: str = ""
    question: str = ""
    target_words: int = 0
    backend: str = ""
    reason: str | None = None
    """Why the sample failed (``ok`` is False)."""

    def fields(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("type", "influence", "reasoning", "conclusion", "answer", "solution", "prompt", "target_words", "backend")}


class SampleFailed(Exception):
    pass


def _degradation_context(recipe: Recipe) -> list[dict[str, Any]]:
    return [{"name": s.name, "stage": s.stage, "intensity": s.intensity, "description": get(s.name).description} for s in recipe.steps]


def _finish(req: ChainRequest, cfg: ChainConfig, infl: str, reas: str, concl: str, target: int) -> ChainResult:
    from .format import format_type

    type_text = format_type(req.recipe.type_pairs())
    solution = render_chain(type_text, infl, reas, concl, req.answer)
    return ChainResult(
        sample_id=req.sample_id,
        ok=True,
        type=type_text,
        influence=infl,
        reasoning=reas,
        conclusion=concl,
        answer=req.answer,
        solution=solution,
        prompt=build_prompt(req.question, req.choices, cfg.prompts_dir),
        question=format_question(req.question, req.choices),
        target_words=target,
        backend=cfg.backend_label,
    )


def _write_template(req: ChainRequest, cfg: ChainConfig) -> ChainResult:
    target = cfg.target(req.recipe.total_intensity)
    infl = tpl.influence(req.recipe, req.sample_id)
    reas = tpl.reasoning(req.recipe, req.sample_id, req.question, req.choices, req.answer_text, target)
    concl = tpl.conclusion(req.recipe, req.sample_id, req.answer, req.answer_text, req.choices)
    for reason in (
        check_text("influence", infl),
        check_length(reas, target, cfg.length_tolerance),
        check_conclusion(concl, req.answer_text, req.answer, req.choices),
    ):
        if reason:
            raise SampleFailed(reason)
    return _finish(req, cfg, infl, reas, concl, target)


class _LLMWriter:
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
        )
        self.system = render_prompt("system", cfg.prompts_dir)

    def _messages(self, text: str, images: Sequence[np.ndarray | None], feedback: str | None) -> list[dict[str, Any]]:
        from .llm import image_data_url

        if feedback:
            text += f"\n\nYour previous answer was rejected ({feedback}). Write it again and fix that."
        content: list[dict[str, Any]] = []
        if self.cfg.vision:
            for im in images:
                if im is not None:
                    content.append({"type": "image_url", "image_url": {"url": image_data_url(im, self.cfg.image_max_side)}})
        content.append({"type": "text", "text": text})
        return [{"role": "system", "content": self.system}, {"role": "user", "content": content}]

    async def _step(self, template: str, images, check: Callable[[str], str | None], **ctx) -> str:
        from .llm import LLMError

        prompt = render_prompt(template, self.cfg.prompts_dir, vision=self.cfg.vision, **ctx)
        feedback = None
        for _ in range(self.cfg.max_regenerations + 1):
            try:
                text = (await self.client.complete(self._messages(prompt, images, feedback))).strip()
            except LLMError as exc:
                raise SampleFailed(f"{template}: {exc}") from None
            feedback = check(text)
            if feedback is None:
                return text
        raise SampleFailed(f"{feedback} (step {template}, {self.cfg.max_regenerations + 1} attempts)")

    async def write(self, req: ChainRequest) -> ChainResult:
        cfg = self.cfg
        target = cfg.target(req.recipe.total_intensity)
        question = format_question(req.question, req.choices)
        degs = _degradation_context(req.recipe)
        deg_list = ", ".join(f"{d['name']} ({d['intensity']:.2f})" for d in degs) or "none"
        infl = await self._step(
            "influence", [req.clean_image, req.degraded_image], lambda t: check_text("influence", t),
            question=question, answer_text=req.answer_text, degradations=degs,
        )
        draft = await self._step(
            "reasoning", [req.degraded_image], lambda t: check_text("reasoning", t),
            question=question, answer_text=req.answer_text, degradation_list=deg_list, influence=infl,
        )
        concl = await self._step(
            "conclusion", [], lambda t: check_conclusion(t, req.answer_text, req.answer, req.choices),
            question=question, answer_text=req.answer_text, reasoning=draft,
        )
        tol = cfg.length_tolerance
        reas = draft
        if check_length(draft, target, tol) is not None:
            reas = await self._step(
                "length_scaling", [], lambda t: check_length(t, target, tol),
                reasoning=draft, target_words=target, min_words=int(target * (1 - tol * 0.6)),
                max_words=int(target * (1 + tol * 0.6)), longer=words(draft) < target,
                total_intensity=req.recipe.total_intensity, answer_text=req.answer_text,
            )
        return _finish(req, cfg, infl, reas, concl, target)


@dataclass
class BatchReport:
    results: list[ChainResult]
    usage: dict[str, Any] = field(default_factory=dict)
    cost_usd: float | None = None

    @property
    def failed(self) -> list[ChainResult]:
        return [r for r in self.results if not r.ok]


async def awrite_chains(
    requests: Sequence[ChainRequest],
    config: ChainConfig | None = None,
    *,
    progress: Callable[[ChainResult], Any] | None = None,
) -> BatchReport:
    """Write chains for a batch. Results come back in request order; a failure never stops the batch."""
    cfg = config or ChainConfig()
    if cfg.backend not in ("template", "openai"):
        raise ValueError(f"chain backend {cfg.backend!r}: use 'template' or 'openai'.")

    def failed(req: ChainRequest, reason: str) -> ChainResult:
        return ChainResult(sample_id=req.sample_id, ok=False, backend=cfg.backend_label, reason=reason)

    if cfg.backend == "template":
        out = []
        for req in requests:
            try:
                res = _write_template(req, cfg)
            except (SampleFailed, ValueError) as exc:
                res = failed(req, str(exc))
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
    from .llm import PRICES

    pin, pout = cfg.price_in_per_1m, cfg.price_out_per_1m
    if (pin is None or pout is None) and cfg.model in PRICES:
        pin, pout = PRICES[cfg.model]
    return BatchReport(list(results), usage.as_dict(), usage.cost(pin, pout))


def write_chains(
    requests: Sequence[ChainRequest],
    config: ChainConfig | None = None,
    *,
    progress: Callable[[ChainResult], Any] | None = None,
) -> BatchReport:
    """Synchronous :func:`awrite_chains` (runs its own event loop)."""
    coro: Awaitable[BatchReport] = awrite_chains(requests, config, progress=progress)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    # Called from inside a running loop (e.g. Jupyter): run in a worker thread.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


def request_from_image(
    image: Any,
    *,
    question: str,
    answer: str,
    choices: Sequence[str] = (),
    seed: int = 0,
    sample_id: str | None = None,
) -> ChainRequest:
    """Degrade ``image`` with the train recipe and make a request (the ``chain`` command's path)."""
    from factory import degrade

    img = degrade.to_rgb_uint8(image)
    sid = sample_id or "chain:" + str(degrade.derive_seed(seed, img.shape, int(img[:: max(1, img.shape[0] // 16)].sum())))
    recipe = degrade.sample_recipe("train", seed, sid)
    choices = list(choices)
    if choices:
        try:
            idx = int(answer)
        except ValueError:
            low = [c.lower() for c in choices]
            if answer.lower() not in low:
                raise ValueError(f"--answer {answer!r}: give the option index (0..{len(choices) - 1}) or one of the choices.") from None
            idx = low.index(answer.lower())
        if not 0 <= idx < len(choices):
            raise ValueError(f"--answer {answer!r}: option index out of range 0..{len(choices) - 1}.")
        answer_idx, answer_text = str(idx), choices[idx]
    else:
        answer_idx, answer_text = answer, answer
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

