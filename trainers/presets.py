"""Training presets: one dataclass, three named presets, overrides from YAML or ``key=value``.

* ``t4``: Qwen2.5-VL-3B-Instruct, 4-bit LoRA r=16 through Unsloth, sized for a 15 GB T4
  (GRPO: 4 generations, completions <= 1024 tokens: the longest chains measure ~840 tokens,
  ``bench/chain_tokens.py``; a checkpoint at least every 25 GRPO steps).
* ``paper``: the paper's settings (full fine-tune of the language model, frozen vision,
  GRPO 8 generations, beta 0.04, lr 1e-6, completions <= 2048, temperature 1).
* ``tiny``: a tiny Qwen2.5-VL built locally (no download) for CPU runs and tests.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

TINY_MODEL = "tiny"
"""Model name that makes :func:`trainers.models.load_model` build the tiny Qwen2.5-VL offline."""

DEFAULT_MAX_PIXELS = 448 * 448
"""The default image budget in pixels (448 x 448) of training, inference and evaluation."""


def _reward_weights() -> dict[str, float]:
    from .rewards.registry import default_weights  # read when settings are made: registered rewards count

    return default_weights()


@dataclass
class TrainSettings:
    """Everything a training run needs besides the data. Every field has a documented default."""

    model: str = "Qwen/Qwen2.5-VL-3B-Instruct"
    """Hub id or local path; ``tiny`` builds the tiny test model."""
    backend: str = "auto"
    """``unsloth``, ``hf`` or ``auto`` (Unsloth when CUDA and unsloth are present)."""
    load_in_4bit: bool = True
    """QLoRA (Unsloth / bitsandbytes). Ignored on the CPU."""
    finetune: str = "lora"
    """``lora`` (LoRA on the language model) or ``full`` (language model fully trained)."""
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Images are resized (aspect kept) to at most this many pixels, so image tokens never get truncated."""
    gradient_checkpointing: bool = True
    seed: int = 0
    # optimisation
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1
    per_device_batch_size: int = 2
    gradient_accumulation_steps: int = 4
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    logging_steps: int = 1
    save_steps: int = 200
    """At most this many steps between checkpoints; runs save about every tenth of their length
    (``trainers.run.sized_save_steps``)."""
    max_length: int | None = None
    """SFT sequence cap in tokens (``None``: no truncation, the safe default for images)."""
    # GRPO
    num_generations: int = 4
    max_completion_length: int = 768
    beta: float = 0.04
    temperature: float = 1.0
    reward_weights: dict[str, float] = field(default_factory=_reward_weights)
    """Every reward of :data:`trainers.rewards.registry.REGISTRY` at its default weight: the paper's
    r_deg + r_len plus the reference run's accuracy and format, unweighted."""
    degradation_mode: str = "matched"
    use_vllm: bool = False
    """Unsloth fast generation with vLLM for GRPO (needs vllm installed)."""

    def replace(self, **changes: Any) -> TrainSettings:
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(
                f"unknown training setting(s) {unknown}; valid keys: {sorted(f.name for f in fields(self))}."
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "t4": {
        "common": dict(
            model="Qwen/Qwen2.5-VL-3B-Instruct", backend="auto", load_in_4bit=True, finetune="lora",
            lora_r=16, lora_alpha=16, max_pixels=DEFAULT_MAX_PIXELS, gradient_checkpointing=True,
        ),
        "sft": dict(learning_rate=2e-4, per_device_batch_size=2, gradient_accumulation_steps=4, epochs=1.0),
        "grpo": dict(
            learning_rate=5e-6, per_device_batch_size=4, gradient_accumulation_steps=2, num_generations=4,
            max_completion_length=1024, beta=0.04, temperature=1.0, save_steps=25,
        ),
    },
    "paper": {
        "common": dict(
            model="Qwen/Qwen2.5-VL-3B-Instruct", backend="hf", load_in_4bit=False, finetune="full",
            max_pixels=1280 * 28 * 28, gradient_checkpointing=True,
        ),
        "sft": dict(learning_rate=1e-5, per_device_batch_size=2, gradient_accumulation_steps=8, epochs=1.0),
        "grpo": dict(
            learning_rate=1e-6, per_device_batch_size=8, gradient_accumulation_steps=2, num_generations=8,
            max_completion_length=2048, beta=0.04, temperature=1.0, epochs=1.0,
        ),
    },
    "tiny": {
        "common": dict(
            model=TINY_MODEL, backend="hf", load_in_4bit=False, finetune="lora", lora_r=8, lora_alpha=16,
            max_pixels=56 * 56, gradient_checkpointing=False, logging_steps=1, save_steps=2,
        ),
        "sft": dict(learning_rate=5e-3, per_device_batch_size=2, gradient_accumulation_steps=1, max_steps=4),
        "grpo": dict(
            learning_rate=1e-4, per_device_batch_size=2, gradient_accumulation_steps=1, num_generations=2,
            max_completion_length=24, beta=0.04, temperature=1.0, max_steps=2,
        ),
    },
}


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["lora_r=32", "reward_weights={\\"length\\": 0.5}"]`` → dict (values parsed as JSON when possible)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. --set lora_r=32.")
        k, v = item.split("=", 1)
        out[k.strip()] = _parse_value(v.strip())
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: no such settings file.")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a mapping of setting: value, got {type(data).__name__}.")
    return data


def settings_for(
    preset: str, stage: str, *, yaml_path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TrainSettings:
    """Settings of ``preset`` for ``stage`` (``sft`` or ``grpo``), then YAML, then overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}.")
    if stage not in ("sft", "grpo"):
        raise ValueError(f"unknown stage {stage!r}; use 'sft' or 'grpo'.")
    s = TrainSettings().replace(**PRESETS[preset]["common"]).replace(**PRESETS[preset][stage])
    if yaml_path:
        s = s.replace(**load_yaml(yaml_path))
    if overrides:
        s = s.replace(**overrides)
    if s.finetune not in ("lora", "full"):
        raise ValueError(f"finetune={s.finetune!r}: use 'lora' or 'full'.")
    if s.backend not in ("auto", "hf", "unsloth"):
        raise ValueError(f"backend={s.backend!r}: use 'auto', 'hf' or 'unsloth'.")
    return s
