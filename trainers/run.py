"""What SFT and GRPO runs share: the run description, trainer arguments, resume, save/merge/push."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .models import cuda_available
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

    def metric(self, key: str) -> list[float]:
        """Every logged value of ``key`` in order (e.g. ``loss`` or ``rewards/r_deg/mean``)."""
        return [float(h[key]) for h in self.log_history if key in h]


def trainer_kwargs(s: TrainSettings, output: str | Path) -> dict[str, Any]:
    """Arguments common to ``SFTConfig`` and ``GRPOConfig``."""
    import torch

    gpu = cuda_available()
    bf16 = bool(gpu and torch.cuda.is_bf16_supported())
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
    )


def last_checkpoint(output: str | Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    p = Path(output)
    return get_last_checkpoint(str(p)) if p.is_dir() else None


def save_outputs(trainer, processor, run: RunConfig, backend: str) -> Path | None:
    """Save the adapter (or model) and processor; optionally merge and push. Returns the merged dir."""
    out = Path(run.output)
    model = trainer.model
    model.save_pretrained(str(out))
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
    (out / "robust_r1_settings.json").write_text(json.dumps(run.settings.to_dict(), indent=2) + "\n")
    merged_dir = None
    if run.merge:
        merged_dir = out / "merged"
        if backend == "unsloth":  # pragma: no cover - needs CUDA
            model.save_pretrained_merged(str(merged_dir), processor, save_method="merged_16bit")
        else:
            import torch

            merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
            merged = merged.to(torch.bfloat16)
            merged.save_pretrained(str(merged_dir))
            processor.save_pretrained(str(merged_dir))
    if run.push_to_hub:
        target = merged_dir or out
        from huggingface_hub import HfApi, get_token

        token = get_token()
        if not token:
            raise ValueError("--push-to-hub needs a Hugging Face token: set HF_TOKEN or run `hf auth login`.")
        api = HfApi(token=token)
        api.create_repo(run.push_to_hub, exist_ok=True)
        api.upload_folder(folder_path=str(target), repo_id=run.push_to_hub, ignore_patterns=["checkpoint-*", "checkpoint-*/**"])
        log.info("pushed %s to https://huggingface.co/%s", target, run.push_to_hub)
    return merged_dir


def run_trainer(trainer, processor, run: RunConfig, backend: str) -> TrainResult:
    """Train (resuming when asked and possible), save, and collect the log."""
    ckpt = last_checkpoint(run.output) if run.resume else None
    if ckpt:
        log.info("resuming from %s", ckpt)
    trainer.train(resume_from_checkpoint=ckpt)
    merged = save_outputs(trainer, processor, run, backend)
    return TrainResult(
        output=Path(run.output),
        backend=backend,
        global_step=int(trainer.state.global_step),
        log_history=list(trainer.state.log_history),
        resumed_from=ckpt,
        merged=merged,
    )


def select(ds, limit: int | None):
    if limit is not None and limit < len(ds):
        return ds.select(range(limit))
    return ds
