"""``FastVisionModel`` of the stand-in: the loading, LoRA and mode-switch contracts of Unsloth.

Built on transformers + PEFT (what Unsloth wraps); no 4-bit, no kernels, float32 on the CPU.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from ._record import record

# unsloth_zoo/peft_utils.py get_peft_regex: language-model layers only when
# finetune_vision_layers=False, attention and/or MLP projections.
_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
_MLP = ("gate_proj", "up_proj", "down_proj")


def _is_peft(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def _has_processor_files(folder: Path) -> bool:
    # models/loader_utils.py _resolve_checkpoint_tokenizer_name: the checkpoint's own folder is used
    # when it ships tokenizer_config.json and tokenizer files (and, for a VLM, processor files).
    has_tok = (folder / "tokenizer_config.json").is_file() and (
        (folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file()
    )
    has_proc = any((folder / f).is_file() for f in ("preprocessor_config.json", "processor_config.json"))
    return has_tok and has_proc


def _bind_saving(model) -> None:
    # save.py patch_saving_functions(model, vision=True): binds save_pretrained_merged on the model.
    import types

    model.save_pretrained_merged = types.MethodType(_save_pretrained_merged, model)


def _save_pretrained_merged(self, save_directory, tokenizer=None, save_method="merged_16bit", **kwargs):
    """save.py ``unsloth_generic_save_pretrained_merged``: ``merged_16bit`` merges the LoRA weights
    into 16-bit weights and writes a plain model (+ the tokenizer/processor); ``lora`` writes the
    adapter only. The trained model itself is left as it was (the merge happens on a copy here)."""
    import torch

    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    if save_method == "lora":
        self.save_pretrained(str(out))
    elif save_method == "merged_16bit":
        merged = copy.deepcopy(self)
        if _is_peft(merged):
            merged = merged.merge_and_unload()
        merged = merged.to(torch.float16)
        merged.save_pretrained(str(out))
    else:
        raise NotImplementedError(f"stand-in: save_method={save_method!r} is not mimicked")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    record("save_pretrained_merged", save_directory=str(out), save_method=save_method)


def _gc_modules(model):
    return [m for m in model.modules() if hasattr(m, "gradient_checkpointing")]


class FastModel:
    """``models/loader.py`` ``FastModel`` (``FastVisionModel`` is its subclass with nothing added)."""

    @staticmethod
    def from_pretrained(
        model_name: str,
        max_seq_length=None,
        dtype=None,
        load_in_4bit: bool = True,
        load_in_8bit: bool = False,
        full_finetuning: bool = False,
        use_gradient_checkpointing="unsloth",
        fast_inference: bool = False,
        random_state: int = 3407,
        **kwargs,
    ):
        """A base model folder or an adapter folder → ``(model, processor)``.

        Mimics ``FastModel.from_pretrained``: ``is_model`` when a config loads, ``is_peft`` when
        ``PeftConfig.from_pretrained`` does; for an adapter the base is
        ``peft_config.base_model_name_or_path`` and the adapter is attached with
        ``PeftModel.from_pretrained(model, model_name, is_trainable=True)``, so the result is already a
        trainable ``PeftModel`` ("Loaded adapters skip get_peft_model"). Neither → an error.
        """
        import torch
        from peft import PeftConfig, PeftModel
        from transformers import AutoModelForImageTextToText, AutoProcessor

        folder = Path(str(model_name))
        is_model = (folder / "config.json").is_file()
        try:
            peft_config = PeftConfig.from_pretrained(str(model_name))
            is_peft = True
        except Exception:  # noqa: BLE001 - as loader.py: any failure means "not an adapter"
            peft_config, is_peft = None, False
        if not is_model and not is_peft:
            raise RuntimeError(
                f"Unsloth: `{model_name}` is not a base model or a PEFT model.\n"
                "We could not locate a `config.json` or `adapter_config.json` file."
            )
        if full_finetuning:
            os.environ["UNSLOTH_ENABLE_FULL_FINETUNING"] = "1"
        base_name = peft_config.base_model_name_or_path if is_peft else str(model_name)
        model = AutoModelForImageTextToText.from_pretrained(base_name, dtype=dtype or torch.float32)
        tokenizer_name = str(model_name) if (is_peft and _has_processor_files(folder)) else base_name
        processor = AutoProcessor.from_pretrained(tokenizer_name)
        if use_gradient_checkpointing:
            # Unsloth offloads activations in its own checkpointing; transformers' is the stand-in.
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        model._standin_gradient_checkpointing = bool(use_gradient_checkpointing)
        if is_peft:
            model = PeftModel.from_pretrained(model, str(model_name), is_trainable=True)
        _bind_saving(model)
        record(
            "from_pretrained", model_name=str(model_name), is_peft=is_peft, base=base_name,
            tokenizer_name=tokenizer_name, load_in_4bit=load_in_4bit, full_finetuning=full_finetuning,
            use_gradient_checkpointing=use_gradient_checkpointing, returns_peft=_is_peft(model),
        )
        return model, processor

    @staticmethod
    def get_peft_model(
        model,
        r: int = 16,
        target_modules=None,
        lora_alpha: int = 16,
        lora_dropout: float = 0.0,
        bias: str = "none",
        finetune_vision_layers: bool = True,
        finetune_language_layers: bool = True,
        finetune_attention_modules: bool = True,
        finetune_mlp_modules: bool = True,
        use_gradient_checkpointing="unsloth",
        random_state: int = 3407,
        **kwargs,
    ):
        """``models/vision.py`` ``get_peft_model``: no effect under full fine-tuning; rank checks;
        **RuntimeError "Unsloth: You already added LoRA adapters to your model!" on a PeftModel**;
        then LoRA on the selected layers (``get_peft_regex``), seeded with ``random_state``."""
        from peft import LoraConfig, get_peft_model
        from transformers import set_seed

        if os.environ.get("UNSLOTH_ENABLE_FULL_FINETUNING", "0") == "1":
            print("Unsloth: Full finetuning is enabled, so .get_peft_model has no effect")
            return model
        set_seed(random_state)
        if type(r) is not int:
            raise TypeError(f"Unsloth: Rank of {str(r)} must be an integer.")
        if r <= 0:
            raise TypeError(f"Unsloth: Rank of {str(r)} must be larger than 0.")
        if _is_peft(model):
            record("get_peft_model", refused=True)
            raise RuntimeError("Unsloth: You already added LoRA adapters to your model!")
        if target_modules is None:
            projections = (_ATTENTION if finetune_attention_modules else ()) + (_MLP if finetune_mlp_modules else ())
            parts = ["language_model"] if finetune_language_layers else []
            parts += ["visual"] if finetune_vision_layers else []
            target_modules = rf".*(?:{'|'.join(parts)}).*\.(?:{'|'.join(projections)})"
        cfg = LoraConfig(r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, bias=bias,
                         target_modules=target_modules, task_type="CAUSAL_LM")
        gc = getattr(model, "_standin_gradient_checkpointing", False)
        model = get_peft_model(model, cfg)
        model._standin_gradient_checkpointing = gc
        _bind_saving(model)
        record("get_peft_model", refused=False, r=r, target_modules=str(target_modules),
               finetune_vision_layers=finetune_vision_layers)
        return model

    @staticmethod
    def for_inference(model):
        """``models/vision.py`` ``for_inference``: training off and gradient checkpointing off on every
        module, the KV cache back on (``restore_use_cache``)."""
        if not hasattr(model, "parameters"):
            raise TypeError("Unsloth: I think you're passing a tokenizer, not the model to for_inference!")
        model.eval()
        for m in _gc_modules(model):
            m.gradient_checkpointing = False
        for cfg in {id(c): c for c in (getattr(m, "config", None) for m in model.modules()) if c is not None}.values():
            if hasattr(cfg, "use_cache"):
                cfg.use_cache = True
        record("for_inference")
        return model

    @staticmethod
    def for_training(model, use_gradient_checkpointing=None):
        """``models/vision.py`` ``for_training``: training on, gradient checkpointing back as loaded
        (or as asked), the KV cache off (``disable_use_cache``)."""
        if not hasattr(model, "parameters"):
            raise TypeError("Unsloth: I think you're passing a tokenizer, not the model to for_training!")
        gc = getattr(model, "_standin_gradient_checkpointing", False) if use_gradient_checkpointing is None \
            else bool(use_gradient_checkpointing)
        model.train()
        for m in _gc_modules(model):  # the modules transformers' gradient_checkpointing_enable armed
            m.gradient_checkpointing = gc
        for cfg in {id(c): c for c in (getattr(m, "config", None) for m in model.modules()) if c is not None}.values():
            if hasattr(cfg, "use_cache"):
                cfg.use_cache = False
        record("for_training", gradient_checkpointing=gc)
        return model


class FastVisionModel(FastModel):
    """``models/loader.py``: ``class FastVisionModel(FastModel): pass``."""


def describe_mode(model) -> dict:
    """What a rollout runs in: training mode anywhere, gradient checkpointing active anywhere."""
    modules = list(model.modules())
    return {
        "training": any(m.training for m in modules),
        "gc_active": any(getattr(m, "gradient_checkpointing", False) and m.training for m in modules),
    }

