"""Model loading for training and inference, with two backends.

* ``unsloth``: ``FastVisionModel`` (4-bit QLoRA by default, Unsloth gradient checkpointing,
  vision layers frozen, LoRA on the language model). Unsloth patches TRL's trainers and parts of
  transformers and PEFT *when it is imported*, so :func:`resolve_backend` imports it before
  anything imports ``trl``, ``transformers`` or ``peft`` (and warns when something already did).
  An adapter folder (e.g. the SFT output) is loaded by Unsloth as a trainable ``PeftModel`` and
  is trained further as it is, never wrapped in a second adapter.
* ``hf``: ``AutoModelForImageTextToText`` + PEFT LoRA on the language model, or a full fine-tune of
  the language model; the vision tower and its projector (the "merger") are frozen, as in the
  paper. Runs anywhere, the CPU included, and never imports Unsloth.

``auto`` picks Unsloth when CUDA and the ``unsloth`` package are present, else ``hf``, and logs why.
``unsloth`` is accepted whenever ``import unsloth`` succeeds.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from factory.errors import ConfigError

from .presets import DEFAULT_MAX_PIXELS, TINY_MODEL, TrainSettings

log = logging.getLogger("robust_r1.trainers")

LANGUAGE_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
"""PEFT target regex: attention and MLP projections of the language model only (vision frozen)."""

UNSLOTH_PATCHES = ("trl", "transformers", "peft")
"""What Unsloth patches at import time (unsloth/_gpu_init.py, ``critical_modules``)."""

SETTINGS_FILE = "robust_r1_settings.json"
"""Written next to every trained model by :func:`trainers.run.save_outputs`: the run's settings."""


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is part of the train extra
        return False


def bf16_supported() -> bool:
    """bf16 autocast on this GPU (Ampere and newer); ``False`` on a T4 and on the CPU."""
    if not cuda_available():
        return False
    import torch

    return bool(torch.cuda.is_bf16_supported())


def prepare_cpu_environment() -> None:
    """TRL's log-prob kernels are Triton kernels: interpret them when no GPU is present."""
    if not cuda_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")


def import_unsloth():
    """Import ``unsloth`` now, so that it patches TRL, transformers and PEFT before they are used.

    Unsloth replaces ``trl.SFTTrainer``/``trl.GRPOTrainer`` and patches transformers/PEFT at
    import; a module imported before it keeps the unpatched code (Unsloth then only warns). This
    is called by :func:`resolve_backend` before the trainers import ``trl``. Raises ``ValueError``
    naming the reason when the import fails (the real package needs a CUDA GPU).
    """
    if "unsloth" not in sys.modules:
        early = [m for m in UNSLOTH_PATCHES if m in sys.modules]
        if early:
            log.warning(
                "%s imported before unsloth: Unsloth cannot patch what is already loaded. Import "
                "`unsloth` (or run the training) first, e.g. restart the runtime and run the cells in order.",
                ", ".join(early),
            )
    try:
        import unsloth
    except Exception as exc:  # noqa: BLE001 - ImportError, or the package's own refusal without a GPU
        raise ValueError(
            f"backend 'unsloth': `import unsloth` failed ({type(exc).__name__}: {exc}). Unsloth needs a CUDA GPU "
            "and `pip install 'robust-r1[unsloth]'`; use --backend hf (or auto) on this machine."
        ) from None
    return unsloth


def resolve_backend(backend: str) -> str:
    """``auto`` → ``unsloth`` with CUDA and unsloth installed, else ``hf`` (saying which and why).

    When the answer is ``unsloth`` the package is imported here, before TRL (see
    :func:`import_unsloth`); ``hf`` never imports it.
    """
    if backend not in ("auto", "hf", "unsloth"):
        raise ValueError(f"backend {backend!r}: use 'auto', 'hf' or 'unsloth'.")
    if backend == "hf":
        return "hf"
    if backend == "auto":
        has_cuda = cuda_available()
        has_unsloth = importlib.util.find_spec("unsloth") is not None
        if not (has_cuda and has_unsloth):
            why = "no CUDA GPU" if not has_cuda else "unsloth is not installed (pip install 'robust-r1[unsloth]')"
            log.info("backend auto: chose hf (%s)", why)
            return "hf"
        import_unsloth()
        log.info("backend auto: chose unsloth (CUDA and unsloth are available)")
        return "unsloth"
    import_unsloth()
    return "unsloth"


def has_adapters(model) -> bool:
    """Whether ``model`` already carries PEFT adapters (a ``PeftModel``, as Unsloth and
    ``PeftModel.from_pretrained`` return for an adapter folder)."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is part of the train extra
        return False
    return isinstance(model, PeftModel) or bool(getattr(model, "peft_config", None))


def align_trainable_dtype(model, *, fp16: bool) -> int:
    """With fp16 mixed precision, put trainable parameters back in float32; returns how many moved.

    TRL casts the trainable (LoRA) weights of a quantized model to bf16 (``_is_quantized_model`` in
    ``GRPOTrainer``/``SFTTrainer.__init__``). The fp16 grad scaler cannot unscale bf16 (or fp16)
    gradients ("_amp_foreach_non_finite_check_and_unscale_cuda" not implemented for 'BFloat16'),
    so on a GPU without bf16 (a T4) the master weights must be float32, as autocast expects.
    Unsloth strips that cast in its patched trainers; this does the same for the ``hf`` backend.
    """
    if not fp16:
        return 0
    import torch

    moved = 0
    for p in model.parameters():
        if p.requires_grad and p.dtype in (torch.bfloat16, torch.float16):
            p.data = p.data.float()
            moved += 1
    if moved:
        log.info("fp16 mixed precision: %d trainable tensors moved to float32 for the grad scaler", moved)
    return moved


@contextlib.contextmanager
def generation_mode(model) -> Iterator[Any]:
    """Eval mode for the duration (rollouts of GRPO): no dropout, and the KV cache always kept.

    A decoder layer in training mode with gradient checkpointing on drops ``use_cache`` and its
    ``past_key_values`` (transformers' ``GradientCheckpointingLayer``), so each new token would be
    generated without its context. TRL 1.15 switches checkpointing off while it generates
    (``_unwrap_model_for_generation``) but leaves the policy in training mode, dropout included;
    in eval mode neither can happen, whatever turned checkpointing on. The previous train/eval state
    is restored after. (Unsloth's patched trainers use ``FastVisionModel.for_inference``.)
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _freeze_vision(model) -> int:
    """Freeze the vision tower and projector; return the number of frozen parameters."""
    frozen = 0
    for name, p in model.named_parameters():
        if ".visual." in f".{name}" or name.startswith("visual.") or ".vision_tower." in f".{name}":
            p.requires_grad_(False)
            frozen += p.numel()
    return frozen


def _dtype(*, full_finetune: bool = False):
    """Weights' dtype: bf16 on Ampere+, fp16 on older GPUs (float32 for a full fine-tune there,
    since the fp16 grad scaler needs float32 master weights), float32 on the CPU."""
    import torch

    if not cuda_available():
        return torch.float32
    if bf16_supported():
        return torch.bfloat16
    return torch.float32 if full_finetune else torch.float16


def _device_map() -> dict[str, int] | None:
    """A 4-bit model is placed on this process's GPU (``LOCAL_RANK`` under ``accelerate launch``)."""
    if not cuda_available():
        return None
    return {"": int(os.environ.get("LOCAL_RANK", "0"))}


def _load_hf(settings: TrainSettings, *, for_training: bool):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    adapter = for_training and is_adapter_dir(settings.model)
    full = settings.finetune == "full"
    if settings.model == TINY_MODEL:
        from .tiny import build_tiny_model

        model, processor = build_tiny_model(seed=settings.seed)
    elif adapter:  # continue training an adapter (e.g. GRPO from the SFT output)
        from peft import PeftModel

        base = AutoModelForImageTextToText.from_pretrained(_adapter_base(settings.model), dtype=_dtype())
        model = PeftModel.from_pretrained(base, settings.model, is_trainable=True)
        processor = AutoProcessor.from_pretrained(settings.model)
    else:
        kwargs: dict[str, Any] = {"dtype": _dtype(full_finetune=full)}
        if settings.load_in_4bit and cuda_available() and settings.finetune == "lora":
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=_dtype()
            )
            kwargs["device_map"] = _device_map()
        model = AutoModelForImageTextToText.from_pretrained(settings.model, **kwargs)
        processor = AutoProcessor.from_pretrained(settings.model)
    if not for_training:
        return model, processor
    frozen = _freeze_vision(model)
    log.info("froze %d vision/projector parameters", frozen)
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if settings.finetune == "lora" and not has_adapters(model):
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


def tiny_model_dir(seed: int = 0) -> Path:
    """The tiny Qwen2.5-VL saved in a folder (built once per seed, atomically), for loaders that
    take a path only (Unsloth's ``FastVisionModel.from_pretrained``)."""
    from .tiny import build_tiny_model

    root = Path(os.environ.get("ROBUST_R1_TINY_DIR") or Path(tempfile.gettempdir()) / "robust-r1-tiny")
    final = root / f"seed-{seed}"
    if (final / "config.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".seed-{seed}.", dir=root))
    build_tiny_model(tmp, seed=seed)
    try:
        os.replace(tmp, final)
    except OSError:  # another process (a DDP rank) finished first: use its copy
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _load_unsloth(settings: TrainSettings, *, for_training: bool):
    """``FastVisionModel.from_pretrained`` on a model or an adapter folder, LoRA added only when the
    loaded model has none (Unsloth's ``get_peft_model`` raises "You already added LoRA adapters"
    on a ``PeftModel``, which is what it returns for an adapter folder, already trainable)."""
    import_unsloth()
    from unsloth import FastVisionModel

    source = str(tiny_model_dir(settings.seed)) if settings.model == TINY_MODEL else settings.model
    kwargs: dict[str, Any] = {
        "load_in_4bit": settings.load_in_4bit,
        "use_gradient_checkpointing": "unsloth" if (for_training and settings.gradient_checkpointing) else False,
    }
    if for_training:
        kwargs.update(full_finetuning=settings.finetune == "full", fast_inference=settings.use_vllm,
                      random_state=settings.seed)
    try:
        model, processor = FastVisionModel.from_pretrained(source, **kwargs)
    except NotImplementedError as exc:  # Unsloth's CPU backend has no vision models
        raise ValueError(f"Unsloth cannot load {source} on this machine ({exc}); use --backend hf.") from None
    if for_training and settings.finetune == "lora":
        if has_adapters(model):
            log.info("%s is an adapter folder: training its LoRA adapter further (no second adapter)", source)
        else:
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


def load_for_training(settings: TrainSettings, backend: str | None = None):
    """``(model, processor, backend)`` ready for SFT or GRPO according to ``settings``.

    ``backend`` is the already resolved backend (the trainers resolve it first, so that Unsloth is
    imported before TRL); ``None`` resolves ``settings.backend`` here."""
    prepare_cpu_environment()
    backend = backend or resolve_backend(settings.backend)
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


def saved_settings(model_path: str | Path) -> dict[str, Any] | None:
    """The training settings saved with a model (``SETTINGS_FILE`` in its folder, or in the Hub
    repo it was pushed to); ``None`` when there are none (a base model, ``tiny``, no network)."""
    path = Path(str(model_path)).expanduser()
    text = None
    if (path / SETTINGS_FILE).is_file():
        text = (path / SETTINGS_FILE).read_text(encoding="utf-8")
    elif not path.exists() and str(model_path).count("/") == 1 and not str(model_path).startswith((".", "/", "~")):
        try:  # a Hub id: `--push-to-hub` uploads the settings with the model
            from huggingface_hub import hf_hub_download

            text = Path(hf_hub_download(str(model_path), SETTINGS_FILE)).read_text(encoding="utf-8")
        except Exception:  # noqa: BLE001 - no such file, no network, a private repo: no saved settings
            return None
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        log.warning("%s: %s is not JSON; ignoring it", model_path, SETTINGS_FILE)
        return None
    return data if isinstance(data, dict) else None


def resolve_max_pixels(model_path: str | Path, override: int | None = None) -> tuple[int, str]:
    """The image budget to feed ``model_path`` and where it came from: ``override`` (a flag), else
    the ``max_pixels`` it was trained with (its saved settings), else the default (448²)."""
    if override is not None:
        if int(override) < 28 * 28:
            raise ConfigError("max_pixels", "give at least 784 (28 x 28) pixels.", value=override)
        return int(override), "the --max-pixels flag"
    saved = (saved_settings(model_path) or {}).get("max_pixels")
    if isinstance(saved, int) and saved > 0:
        return saved, f"{SETTINGS_FILE} of {model_path}"
    return DEFAULT_MAX_PIXELS, "the default"


def load_for_inference(model_path: str, *, backend: str = "auto"):
    """Load a full model, a merged model or a LoRA adapter folder (its base model is read from
    ``adapter_config.json``) for generation; ``tiny`` builds the tiny test model (seed 0).
    Returns ``(model, processor)``."""
    prepare_cpu_environment()
    chosen = resolve_backend(backend)
    path = Path(model_path)
    if chosen == "unsloth":
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
