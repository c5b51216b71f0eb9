"""What SFT and GRPO runs share: the run description, trainer arguments, resume, save/merge/push."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.layout import atomic_write

from .models import SETTINGS_FILE, bf16_supported, cuda_available
from .presets import TINY_MODEL, TrainSettings

log = logging.getLogger("robust_r1.trainers")


@dataclass
class RunConfig:
    """One training run: data, output folder and settings (see :mod:`trainers.presets`)."""

    dataset: str
    """A factory dataset folder or Hub repo (configs ``sft`` / ``rl``)."""
    output: str
    settings: TrainSettings
    config_name: str | None = None
    """Dataset config; default ``sft`` for SFT and ``rl`` for GRPO."""
    split: str = "train"
    limit: int | None = None
    """Use only the first N rows (smoke runs)."""
    resume: bool = True
    """Continue from the newest checkpoint in ``output`` when there is one."""
    merge: bool = False
    """Also write a merged 16-bit model to ``output/merged``."""
    push_to_hub: str | None = None
    """Upload model (merged if ``merge``) and processor to this repo id (token: HF_TOKEN or login)."""


@dataclass
class TrainResult:
    output: Path
    backend: str
    global_step: int
    log_history: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: str | None = None
    merged: Path | None = None
    world_size: int = 1
    """Processes that trained together (``accelerate launch``)."""
    main_process: bool = True
    """``False`` on the other processes of a multi-process run (only the main one saves and reports)."""

    def metric(self, key: str) -> list[float]:
        """Every logged value of ``key`` in order (e.g. ``loss`` or ``rewards/r_deg/mean``)."""
        return [float(h[key]) for h in self.log_history if key in h]


def trainer_kwargs(s: TrainSettings, output: str | Path) -> dict[str, Any]:
    """Arguments common to ``SFTConfig`` and ``GRPOConfig``.

    Precision follows the GPU: bf16 mixed precision on Ampere and newer, fp16 on older GPUs (a T4),
    none on the CPU. ``save_steps`` is the preset's; :func:`sized_save_steps` sizes it to the run
    once the number of steps is known. Under ``accelerate launch`` (DDP) every process gets the same
    arguments; the Trainer splits the batches.
    """
    gpu = cuda_available()
    bf16 = bf16_supported()
    return dict(
        output_dir=str(output),
        learning_rate=s.learning_rate,
        num_train_epochs=s.epochs,
        max_steps=s.max_steps,
        per_device_train_batch_size=s.per_device_batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        warmup_steps=0 if s.max_steps > 0 and s.max_steps < 20 else math.ceil(max(0, s.warmup_ratio) * 100),
        weight_decay=s.weight_decay,
        logging_steps=s.logging_steps,
        save_strategy="steps",
        save_steps=s.save_steps,
        save_total_limit=2,
        report_to="none",
        seed=s.seed,
        bf16=bf16,
        fp16=bool(gpu and not bf16),
        use_cpu=not gpu,
        gradient_checkpointing=False,  # enabled on the model by trainers.models (or by Unsloth)
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # the frozen vision tower has no gradients by design
    )


def planned_steps(s: TrainSettings, samples_per_epoch: int, world_size: int = 1) -> int:
    """Optimiser steps the run will take: ``max_steps``, else the epochs over ``samples_per_epoch``
    (SFT: rows; GRPO: prompts x generations) at ``per_device_batch_size x accumulation x processes``."""
    if s.max_steps > 0:
        return s.max_steps
    per_step = max(1, s.per_device_batch_size * s.gradient_accumulation_steps * max(1, world_size))
    return max(1, math.ceil(math.ceil(samples_per_epoch / per_step) * s.epochs))


def sized_save_steps(s: TrainSettings, total_steps: int) -> int:
    """A checkpoint about every tenth of the run, and at least every ``s.save_steps`` steps, so a
    disconnect (a Colab runtime going away) loses little: 100 GRPO steps save every 10."""
    return max(1, min(int(s.save_steps), math.ceil(total_steps / 10)))


def size_checkpoints(args, s: TrainSettings, samples_per_epoch: int) -> int:
    """Set ``args.save_steps`` for this run (see :func:`sized_save_steps`); returns the step count."""
    total = planned_steps(s, samples_per_epoch, getattr(args, "world_size", 1))
    args.save_steps = sized_save_steps(s, total)
    log.info("about %d steps; a checkpoint every %d steps in %s", total, args.save_steps, args.output_dir)
    return total


def last_checkpoint(output: str | Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    p = Path(output)
    return get_last_checkpoint(str(p)) if p.is_dir() else None


def save_outputs(trainer, processor, run: RunConfig, backend: str) -> Path | None:
    """Save the adapter (or model) and processor; optionally merge and push. Returns the merged dir.

    Called on every process: ``trainer.save_model`` gathers a sharded (DeepSpeed ZeRO-3) model and
    writes once; everything else is written by the main process only."""
    out = Path(run.output)
    model = trainer.model
    trainer.save_model(str(out))
    if not trainer.is_world_process_zero():
        return None
    processor.save_pretrained(str(out))
    if (out / "adapter_config.json").is_file() and not (out / "base").is_dir():
        # A base that lives on no hub (the tiny model, or one saved beside an SFT adapter) is kept
        # next to the adapter so the folder is self-contained.
        if run.settings.model == TINY_MODEL:
            from .tiny import build_tiny_model

            build_tiny_model(out / "base", seed=run.settings.seed)
        elif (Path(run.settings.model) / "base").is_dir():
            import shutil

            shutil.copytree(Path(run.settings.model) / "base", out / "base")
    settings_json = json.dumps(run.settings.to_dict(), indent=2) + "\n"
    atomic_write(out / SETTINGS_FILE, settings_json)
    merged_dir = None
    if run.merge:
        merged_dir = out / "merged"
        if backend == "unsloth":
            model.save_pretrained_merged(str(merged_dir), processor, save_method="merged_16bit")
        else:
            import torch

            merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
            merged = merged.to(torch.bfloat16)
            merged.save_pretrained(str(merged_dir))
            processor.save_pretrained(str(merged_dir))
        atomic_write(merged_dir / SETTINGS_FILE, settings_json)  # eval/infer read its pixel budget
    if run.push_to_hub:
        target = merged_dir or out
        from huggingface_hub import HfApi, get_token

        token = get_token()
        if not token:
            raise ValueError("--push-to-hub needs a Hugging Face token: set HF_TOKEN or run `hf auth login`.")
        api = HfApi(token=token)
        api.create_repo(run.push_to_hub, exist_ok=True)
        api.upload_folder(
            folder_path=str(target), repo_id=run.push_to_hub, ignore_patterns=["checkpoint-*", "checkpoint-*/**"]
        )
        log.info("pushed %s to https://huggingface.co/%s", target, run.push_to_hub)
    return merged_dir


def run_trainer(trainer, processor, run: RunConfig, backend: str) -> TrainResult:
    """Train (resuming when asked and possible), save, and collect the log."""
    ckpt = last_checkpoint(run.output) if run.resume else None
    if ckpt:
        log.info("resuming from %s", ckpt)
    trainer.train(resume_from_checkpoint=ckpt)
    merged = save_outputs(trainer, processor, run, backend)
    trainer.accelerator.wait_for_everyone()
    return TrainResult(
        output=Path(run.output),
        backend=backend,
        global_step=int(trainer.state.global_step),
        log_history=list(trainer.state.log_history),
        resumed_from=ckpt,
        merged=merged,
        world_size=int(trainer.args.world_size),
        main_process=bool(trainer.is_world_process_zero()),
    )


def select(ds, limit: int | None):
    if limit is not None and limit < len(ds):
        return ds.select(range(limit))
    return ds
