"""The stand-in's TRL patch, applied at ``import unsloth``.

Mimics ``unsloth/models/rl.py``:

* ``_patch_trl_rl_trainers_impl`` builds ``Unsloth<Name>Trainer`` classes and rebinds
  ``trl.<Name>Trainer``, ``trl.trainer.<Name>Trainer`` and ``trl.trainer.<file>.<Name>Trainer`` to
  them (``exec(f"trl.{RLTrainer_name} = created_module.Unsloth{RLTrainer_name}")``). Code that did
  ``from trl import GRPOTrainer`` *before* the import keeps TRL's own class.
* The generated ``__init__``'s precision block: a float16 model with ``bf16=True`` (or a bfloat16 one
  with ``fp16=True``) raises ``TypeError``; TRL's cast of a quantized model's trainable weights to
  bf16 (``if _is_quantized_model:``) is stripped (``.replace("if _is_quantized_model:", "if False:")``).
* ``PatchRL``: ``unwrap_model_for_generation`` in every ``trl.trainer.*_trainer`` module is replaced
  by ``unsloth_unwrap_model_for_generation``, which calls ``FastLanguageModel.for_inference(model)``
  before generating and ``for_training`` after.
"""

from __future__ import annotations

import contextlib

from ._record import record
from .models import FastVisionModel, describe_mode


def _check_precision(model, args) -> None:
    import torch

    cfg = getattr(model, "config", None)
    dtype = getattr(cfg, "dtype", None) or getattr(cfg, "torch_dtype", None)
    dtype = dtype or model.get_input_embeddings().weight.dtype
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if dtype == torch.float16 and getattr(args, "bf16", False):
        raise TypeError("Unsloth: Model is in float16 precision but you want to use bfloat16 precision. "
                        "Set fp16 to `True` and bf16 to `False`")
    if dtype == torch.bfloat16 and getattr(args, "fp16", False):
        raise TypeError("Unsloth: Model is in bfloat16 precision but you want to use float16 precision. "
                        "Set fp16 to `False` and bf16 to `True`")


def _patched(trainer_cls):
    class Patched(trainer_cls):
        def __init__(self, *a, **kw):
            model, args = kw.get("model", a[0] if a else None), kw.get("args")
            if model is not None and args is not None and not isinstance(model, str):
                _check_precision(model, args)
            super().__init__(*a, **kw)
            record("trainer_init", cls=type(self).__name__, fp16=bool(self.args.fp16), bf16=bool(self.args.bf16),
                   trainable_dtypes=sorted({str(p.dtype) for p in self.model.parameters() if p.requires_grad}))

    Patched.__name__ = Patched.__qualname__ = f"Unsloth{trainer_cls.__name__}"
    return Patched


def _unwrap_with_inference(original):
    @contextlib.contextmanager
    def unsloth_unwrap_model_for_generation(model, *args, **kwargs):
        with original(model, *args, **kwargs) as unwrapped:
            FastVisionModel.for_inference(unwrapped)
            generate = unwrapped.generate

            def generate_recorded(*g_args, **g_kwargs):
                record("generate", **describe_mode(unwrapped))
                return generate(*g_args, **g_kwargs)

            unwrapped.generate = generate_recorded
            try:
                yield unwrapped
            finally:
                del unwrapped.generate  # the instance attribute; the class's generate is back
                FastVisionModel.for_training(unwrapped)

    unsloth_unwrap_model_for_generation._standin = True
    return unsloth_unwrap_model_for_generation


def patch_trl() -> None:
    import trl
    import trl.trainer
    import trl.trainer.grpo_trainer as grpo_module
    import trl.trainer.sft_trainer as sft_module

    if getattr(trl, "__UNSLOTH_STANDIN_PATCHED__", False):
        return
    for name, module in (("SFTTrainer", sft_module), ("GRPOTrainer", grpo_module)):
        patched = _patched(getattr(module, name))
        setattr(trl, name, patched)
        setattr(trl.trainer, name, patched)
        setattr(module, name, patched)
    if not getattr(grpo_module.unwrap_model_for_generation, "_standin", False):
        grpo_module.unwrap_model_for_generation = _unwrap_with_inference(grpo_module.unwrap_model_for_generation)
    trl.__UNSLOTH_STANDIN_PATCHED__ = True
    record("patched_trl", trainers=["SFTTrainer", "GRPOTrainer"])
