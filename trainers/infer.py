"""Inference: ask a (trained) model a question about an image and parse its chain."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.chains.format import ParsedChain, parse_chain

log = logging.getLogger("robust_r1.trainers")


@dataclass
class InferResult:
    text: str
    parsed: ParsedChain
    prompt: str
    max_pixels: int | None = None
    """The image budget the image was resized to (the model's training budget unless overridden)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prompt": self.prompt,
            "max_pixels": self.max_pixels,
            "type_pairs": [
                {"name": p.name, "intensity": p.intensity, "known": p.known} for p in self.parsed.type_pairs
            ],
            **self.parsed.as_dict(),
            "format_problems": self.parsed.problems(),
        }


class Predictor:
    """A loaded model + processor that answers questions about images (batched generation).

    Images are resized to ``max_pixels``; ``None`` (the default) takes the budget the model was
    trained with from its saved settings (``robust_r1_settings.json``), else 448 x 448, so a model
    sees at inference the image size it learned on."""

    def __init__(self, model_path: str, *, backend: str = "auto", max_pixels: int | None = None):
        from .models import load_for_inference, resolve_max_pixels

        self.max_pixels, source = resolve_max_pixels(model_path, max_pixels)
        log.info("image budget %d pixels (%s)", self.max_pixels, source)
        self.model, self.processor = load_for_inference(model_path, backend=backend)
        tok = getattr(self.processor, "tokenizer", self.processor)
        tok.padding_side = "left"  # generation appends on the right

    def generate(
        self,
        images: Sequence[Any],
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        seed: int = 0,
    ) -> list[str]:
        """One completion per (image, prompt) pair, generated as one batch."""
        return [
            text
            for text, _ in self.generate_counted(
                images, prompts, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed
            )
        ]

    def generate_counted(
        self,
        images: Sequence[Any],
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 512,
        temperature: float = 0.0,
        seed: int = 0,
        image_first: bool = True,
    ) -> list[tuple[str, int]]:
        """Like :meth:`generate`, with the number of generated tokens of each completion (up to and
        including its end-of-sequence token; padding after it is not counted). ``image_first=False``
        puts the text before the image in the user turn (the reference demo's order)."""
        import torch

        from .data import fit_pixels

        if len(images) != len(prompts):
            raise ValueError(f"generate: {len(images)} images for {len(prompts)} prompts; pass one image per prompt.")
        if not prompts:
            return []

        def turn(p: str) -> list[dict[str, Any]]:
            parts = [{"type": "image"}, {"type": "text", "text": p}]
            return [{"role": "user", "content": parts if image_first else parts[::-1]}]

        msgs = [turn(p) for p in prompts]
        texts = [self.processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in msgs]
        pix = [fit_pixels(im, self.max_pixels) for im in images]
        inputs = self.processor(text=texts, images=pix, return_tensors="pt", padding=True)
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        torch.manual_seed(seed)
        gen_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens}
        if temperature > 0:
            gen_kwargs.update(do_sample=True, temperature=temperature)
        else:
            gen_kwargs.update(do_sample=False)
        with torch.no_grad():
            out = self.model.generate(**inputs, **gen_kwargs)
        new = out[:, inputs["input_ids"].shape[1] :]
        decoded = self.processor.batch_decode(new, skip_special_tokens=True)
        return list(zip(decoded, _lengths(new, self._stop_ids())))

    def _stop_ids(self) -> set[int]:
        cfg = getattr(self.model, "generation_config", None)
        eos = getattr(cfg, "eos_token_id", None)
        ids = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])
        pad = getattr(cfg, "pad_token_id", None)
        if pad is not None:
            ids.add(pad)
        return {int(i) for i in ids}

    def ask(
        self, image: Any, question: str, *, choices: Sequence[str] = (), prompt: str | None = None, **kw
    ) -> InferResult:
        from factory.chains.writer import build_prompt

        p = prompt if prompt is not None else build_prompt(question, list(choices))
        text = self.generate([image], [p], **kw)[0]
        return InferResult(text=text, parsed=parse_chain(text), prompt=p, max_pixels=self.max_pixels)


def _lengths(new_ids: Any, stop: set[int]) -> list[int]:
    """Generated tokens per row: up to and including the first stop (EOS or pad) token."""
    out = []
    for row in new_ids.tolist():
        n = next((i + 1 for i, t in enumerate(row) if t in stop), len(row))
        out.append(n)
    return out


def infer(
    model_path: str,
    image: Any,
    question: str,
    *,
    choices: Sequence[str] = (),
    backend: str = "auto",
    max_pixels: int | None = None,
    **kw,
) -> InferResult:
    """One-shot: load ``model_path`` (model, merged model or adapter folder) and answer ``question``.
    ``max_pixels=None`` feeds the image at the model's training budget (see :class:`Predictor`)."""
    if isinstance(image, (str, Path)):
        from factory.degrade import load_image

        image = load_image(image)
    return Predictor(model_path, backend=backend, max_pixels=max_pixels).ask(image, question, choices=choices, **kw)
