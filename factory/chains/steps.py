"""The prompted steps of a chat backend: influence → reasoning → conclusion → length scaling.

:class:`ChatChainBackend` turns any :class:`~factory.chains.backends.ChatBackend` into a chain
backend: each step renders its prompt (``prompts/<step>.j2``), asks the model, cleans and
validates the reply, and asks again with the reason when it is rejected (at most
``max_regenerations`` times). The conclusion and the length scaling need only the reasoning
draft, so they run at the same time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from .backends import ChatBackend, LLMError, SampleDeferred, SampleFailed, chat_messages, encode_images
from .prompting import format_question, render_prompt
from .validate import (
    DRAFT_FACTOR,
    check_conclusion,
    check_length,
    check_text,
    clean_reply,
    field_limits,
    length_bounds,
    words,
)

STEPS = ("influence", "reasoning", "conclusion", "length_scaling")
"""The step templates, in order."""


def degradation_context(recipe: Any) -> list[dict[str, Any]]:
    """The recipe's degradations as the step templates see them."""
    from factory.degrade import get

    return [
        {"name": s.name, "stage": s.stage, "intensity": s.intensity, "description": get(s.name).describe(s.style)}
        for s in recipe.steps
    ]


class ChatChainBackend:
    """The four LLM steps of one sample over ``chat``, with validation and bounded regeneration."""

    def __init__(self, cfg: Any, chat: ChatBackend):
        self.cfg = cfg
        self.client = chat
        self.system = render_prompt("system", cfg.prompts_dir)
        self._preflight()

    @property
    def usage(self):
        return self.client.usage

    async def aclose(self) -> None:
        await self.client.aclose()

    def _preflight(self) -> None:
        """Render every step template once with sample values: a broken user template is one
        clear error before the batch, not a failure per sample."""
        ctx = {
            "question": "What is shown? 0. a cat 1. a dog",
            "choices": ["a cat", "a dog"],
            "answer": "0",
            "answer_text": "a cat",
            "degradations": [{"name": "lens blur", "stage": "acquisition", "intensity": 0.5, "description": "blur"}],
            "degradation_list": "lens blur (0.50)",
            "total_intensity": 0.5,
            "target_words": 40,
            "vision": self.cfg.vision,
            "influence": "i",
            "reasoning": "r",
            "min_words": 35,
            "max_words": 45,
            "longer": True,
        }
        for name in STEPS:
            render_prompt(name, self.cfg.prompts_dir, **ctx)

    async def _step(
        self, template: str, images: Sequence[str], check: Callable[[str], str | None], ctx: dict[str, Any]
    ) -> str:
        prompt = render_prompt(template, self.cfg.prompts_dir, vision=bool(images), **ctx)
        feedback = None
        for _ in range(self.cfg.max_regenerations + 1):
            text = prompt
            if feedback:
                text += f"\n\nYour previous answer was rejected ({feedback}). Write it again and fix that."
            try:
                reply = await self.client.complete(chat_messages(text, images, system=self.system))
            except LLMError as exc:  # the service failed: the next run retries, unless the request is at fault
                raise (SampleFailed if exc.final else SampleDeferred)(f"{template}: {exc}") from None
            except SampleFailed as exc:  # e.g. an unsafe reply (never stored)
                raise type(exc)(f"{template}: {exc}") from None
            text = clean_reply(reply.text)
            feedback = check(text)
            if feedback is None and reply.finish_reason == "length":
                feedback = f"{template}: cut off at max_tokens"
            if feedback is None:
                return text
        raise SampleFailed(f"{feedback} (step {template}, {self.cfg.max_regenerations + 1} attempts)")

    async def _images(self, req: Any) -> tuple[list[str], list[str]]:
        """Data URLs, encoded once per sample and off the event loop: (clean+degraded, degraded)."""
        if not self.cfg.vision:
            return [], []
        present = [im for im in (req.clean_image, req.degraded_image) if im is not None]
        urls = await encode_images(present, self.cfg.image_max_side)
        degraded = [urls[-1]] if req.degraded_image is not None else []
        return urls, degraded

    async def write(self, req: Any, target: int) -> tuple[str, str, str]:
        cfg = self.cfg
        degs = degradation_context(req.recipe)
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
        limit = field_limits(cfg.length_max, cfg.length_tolerance)
        infl = await self._step(
            "influence", both, lambda t: check_text("influence", t, limit["influence"]), ctx
        )
        draft = await self._step(
            "reasoning",
            degraded,
            lambda t: check_text("reasoning", t, DRAFT_FACTOR * limit["reasoning"]),  # rescaled below if long
            {**ctx, "influence": infl},
        )
        conclude = self._step(
            "conclusion",
            [],
            lambda t: check_text("conclusion", t, limit["conclusion"])
            or check_conclusion(t, req.answer_text, str(req.answer), req.choices),
            {**ctx, "influence": infl, "reasoning": draft},
        )
        if check_length(draft, target, cfg.length_tolerance) is None:
            return infl, draft, await conclude
        # Length scaling needs only the draft, like the conclusion: both run at the same time.
        # Ask for the middle of the accepted band, so a model that misses a little still passes.
        narrow = cfg.length_tolerance * 0.6
        scale = self._step(
            "length_scaling",
            [],
            lambda t: check_length(t, target, cfg.length_tolerance),
            {
                **ctx,
                "influence": infl,
                "reasoning": draft,
                "min_words": max(lo, int(target * (1 - narrow))),
                "max_words": min(hi, int(target * (1 + narrow))),
                "longer": words(draft) < target,
            },
        )
        concl, reas = await asyncio.gather(conclude, scale, return_exceptions=True)
        for outcome in (concl, reas):
            if isinstance(outcome, BaseException):
                raise outcome
        return infl, reas, concl
