"""Model loading for training and inference, with two backends.

* ``unsloth``: ``FastVisionModel`` (4-bit QLoRA by default, Unsloth gradient checkpointing,
  vision layers frozen, LoRA on the language model). Needs a CUDA GPU; imported lazily, here only.
* ``hf``: ``AutoModelForImageTextToText`` + PEFT LoRA on the language model, or a full fine-tune of
  the language model; the vision tower and its projector (the "merger") are frozen, as in the
  paper. Runs anywhere, the CPU included.

``auto`` picks Unsloth when CUDA and the ``unsloth`` package are present, else ``hf``, and logs why.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

from .presets import TINY_MODEL, TrainSettings

log = logging.getLogger("robust_r1.trainers")

LANGUAGE_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
"""PEFT target regex: attention and MLP projections of the language model only (vision frozen)."""


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is part of the train extra
        return False


def prepare_cpu_environment() -> None:
    """TRL's log-prob kernels are Triton kernels: interpret them when no GPU is present."""
    if not cuda_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")


def resolve_backend(backend: str) -> str:
    """``auto`` → ``unsloth`` with CUDA and unsloth installed, else ``hf`` (saying which and why)."""
    if backend not in ("auto", "hf", "unsloth"):
        raise ValueError(f"backend {backend!r}: use 'auto', 'hf' or 'unsloth'.")
    has_cuda = cuda_available()
    has_unsloth = importlib.util.find_spec("unsloth") is not None
    if backend == "auto":
        chosen = "unsloth" if (has_cuda and has_unsloth) else "hf"
        why = (
            "CUDA and unsloth are available"
            if chosen == "unsloth"
            else ("no CUDA GPU" if not has_cuda else "unsloth is not installed (pip install 'robust-r1[unsloth]')")
        )
        log.info("backend auto: chose %s (%s)", chosen, why)
        return chosen
    if backend == "unsloth" and not (has_cuda and has_unsloth):
        raise ValueError(
            "backend 'unsloth' needs a CUDA GPU and `pip install 'robust-r1[unsloth]'`; "
            "use --backend hf (or auto) on this machine."
        )
    return backend


def _freeze_vision(model) -> int:
    """Freeze the vision tower and projector; return the number of frozen parameters."""
    frozen = 0
    for name, p in model.named_parameters():
        if ".visual." in f".{name}" or name.startswith("visual.") or ".vision_tower." in f".{name}":
            p.requires_grad_(False)
            frozen += p.numel()
    return frozen


def _dtype():
    import torch

    if cuda_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _load_hf(settings: TrainSettings, *, for_training: bool):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    adapter = for_training and is_adapter_dir(settings.model)
    if settings.model == TINY_MODEL:
        from .tiny import build_tiny_model

        model, processor = build_tiny_model(seed=settings.seed)
    elif adapter:  # continue training an adapter (e.g. GRPO from the SFT output)
        from peft import PeftModel

        base = AutoModelForImageTextToText.from_pretrained(_adapter_base(settings.model), dtype=_dtype())
        model = PeftModel.from_pretrained(base, settings.model, is_trainable=True)
        processor = AutoProcessor.from_pretrained(settings.model)
    else:
        kwargs: dict[str, Any] = {"dtype": _dtype()}
        if settings.load_in_4bit and cuda_available() and settings.finetune == "lora":
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=_dtype()
            )
        model = AutoModelForImageTextToText.from_pretrained(settings.model, **kwargs)
        processor = AutoProcessor.from_pretrained(settings.model)
    if not for_training:
        return model, processor
    frozen = _freeze_vision(model)
    log.info("froze %d vision/projector parameters", frozen)
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if settings.finetune == "lora" and not adapter:
        from peft import LoraConfig, get_peft_model

        cfg = LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=LANGUAGE_LORA_TARGETS,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, cfg)
    return model, processor


def _load_unsloth(settings: TrainSettings, *, for_training: bool):  # pragma: no cover - needs CUDA
    from unsloth import FastVisionModel

    model, processor = FastVisionModel.from_pretrained(
        settings.model,
        load_in_4bit=settings.load_in_4bit,
        full_finetuning=settings.finetune == "full",
        use_gradient_checkpointing="unsloth" if settings.gradient_checkpointing else False,
        fast_inference=settings.use_vllm,
    )
    if for_training and settings.finetune == "lora":
        model = FastVisionModel.get_peft_model(
            model,
            finetune_vision_layers=False,
            finetune_language_layers=True,
            finetune_attention_modules=True,
            finetune_mlp_modules=True,
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            random_state=settings.seed,
        )
    if for_training:
        FastVisionModel.for_training(model)
    else:
        FastVisionModel.for_inference(model)
    return model, processor


def load_for_training(settings: TrainSettings):
    """``(model, processor, backend)`` ready for SFT or GRPO according to ``settings``."""
    prepare_cpu_environment()
    backend = resolve_backend(settings.backend)
    if backend == "unsloth":
        model, processor = _load_unsloth(settings, for_training=True)
    else:
        model, processor = _load_hf(settings, for_training=True)
    return model, processor, backend


def is_adapter_dir(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def _adapter_base(path: str | Path) -> str:
    """Where an adapter's base model lives: ``PATH/base`` when saved alongside, else its Hub name."""
    p = Path(path)
    if (p / "base").is_dir():
        return str(p / "base")
    name = json.loads((p / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not name:
        raise ValueError(f"{p}: adapter_config.json names no base model; pass a merged model instead.")
    return name


def load_for_inference(model_path: str, *, backend: str = "auto"):
    """Load a full model, a merged model or a LoRA adapter folder (its base model is read from
    ``adapter_config.json``) for generation; ``tiny`` builds the tiny test model (seed 0).
    Returns ``(model, processor)``."""
    prepare_cpu_environment()
    chosen = resolve_backend(backend)
    path = Path(model_path)
    if chosen == "unsloth":  # pragma: no cover - needs CUDA
        return _load_unsloth(TrainSettings(model=model_path, backend="unsloth"), for_training=False)
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if model_path == TINY_MODEL and not path.exists():
        from .tiny import build_tiny_model

        model, processor = build_tiny_model(seed=0)
        return model.eval(), processor
    if is_adapter_dir(path):
        from peft import PeftModel

        base = AutoModelForImageTextToText.from_pretrained(_adapter_base(path), dtype=_dtype())
        model = PeftModel.from_pretrained(base, str(path))
        processor = AutoProcessor.from_pretrained(str(path))
        return model.eval(), processor
    looks_local = path.is_absolute() or model_path.startswith((".", "~")) or model_path.count("/") != 1
    if not path.exists() and looks_local:
        raise ValueError(f"{model_path}: no such folder; pass a local model folder or a Hub id (user/name).")
    model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=_dtype())
    processor = AutoProcessor.from_pretrained(model_path)
    return model.eval(), processor
