"""Supervised fine-tuning on the chains (the method's first stage)."""

from __future__ import annotations

import logging

from .data import load_factory_dataset, to_sft
from .models import align_trainable_dtype, load_for_training, prepare_cpu_environment, resolve_backend
from .run import RunConfig, TrainResult, run_trainer, select, size_checkpoints, trainer_kwargs

log = logging.getLogger("robust_r1.trainers")


def train_sft(run: RunConfig, *, callbacks: list | None = None) -> TrainResult:
    """SFT of ``run.settings.model`` on the ``sft`` config of ``run.dataset`` (TRL ``SFTTrainer``).

    The loss covers the assistant turn (the tagged chain) only. Returns the run's log and where
    the adapter (or model) was saved. Runs the same under ``accelerate launch`` (DDP, DeepSpeed).
    ``callbacks``: extra ``transformers.TrainerCallback`` objects (e.g. timing, as bench/gpu_check.py).
    """
    prepare_cpu_environment()  # before TRL imports Triton
    s = run.settings
    backend = resolve_backend(s.backend)  # imports Unsloth (when chosen) before TRL, so it patches TRL
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(**trainer_kwargs(s, run.output), max_length=s.max_length, completion_only_loss=True)
    with args.main_process_first(desc="SFT data"):
        ds = select(load_factory_dataset(run.dataset, run.config_name or "sft", run.split), run.limit)
        train = to_sft(ds, s.max_pixels)
    size_checkpoints(args, s, len(train))
    model, processor, backend = load_for_training(s, backend)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=processor, callbacks=callbacks)
    if backend == "hf":
        align_trainable_dtype(trainer.model, fp16=args.fp16)
    log.info("SFT: %d examples, backend %s, output %s", len(train), backend, run.output)
    return run_trainer(trainer, processor, run, backend)
