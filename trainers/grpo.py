"""GRPO with the method's rewards (the method's second stage)."""

from __future__ import annotations

import logging

from .data import load_factory_dataset, to_grpo
from .models import (
    align_trainable_dtype,
    generation_mode,
    load_for_training,
    prepare_cpu_environment,
    resolve_backend,
)
from .run import RunConfig, TrainResult, run_trainer, select, size_checkpoints, trainer_kwargs

log = logging.getLogger("robust_r1.trainers")


def rollouts_in_generation_mode(trainer_cls):
    """``trainer_cls`` with every rollout generated in eval mode (:func:`trainers.models.generation_mode`).

    TRL generates with the policy left in training mode (dropout on; a layer in training mode with
    gradient checkpointing drops the KV cache). Unsloth's patched trainer switches to
    ``for_inference`` around generation itself, so this is used for the ``hf`` backend."""

    class RolloutsInGenerationMode(trainer_cls):
        def _generate_single_turn(self, *args, **kwargs):
            with generation_mode(self.model):
                return super()._generate_single_turn(*args, **kwargs)

    RolloutsInGenerationMode.__name__ = RolloutsInGenerationMode.__qualname__ = trainer_cls.__name__
    return RolloutsInGenerationMode


def train_grpo(run: RunConfig, *, tokenizer_for_length=None, callbacks: list | None = None) -> TrainResult:
    """GRPO of ``run.settings.model`` (a base model or the SFT output) on the ``rl`` config.

    Rewards: :func:`trainers.rewards.build_rewards` with ``run.settings.reward_weights``
    (default: r_deg + r_len + accuracy + format, unweighted); TRL logs each reward's mean and
    standard deviation separately (``rewards/<name>/mean``). Rollouts are generated in inference
    mode on both backends. Runs the same under ``accelerate launch`` (DDP, DeepSpeed).
    ``callbacks``: extra ``transformers.TrainerCallback`` objects.
    """
    prepare_cpu_environment()  # before TRL imports Triton
    s = run.settings
    backend = resolve_backend(s.backend)  # imports Unsloth (when chosen) before TRL, so it patches TRL
    from trl import GRPOConfig, GRPOTrainer

    from .rewards import build_rewards

    funcs, weights = build_rewards(
        weights=s.reward_weights, degradation_mode=s.degradation_mode, tokenizer=tokenizer_for_length
    )
    args = GRPOConfig(
        **trainer_kwargs(s, run.output),
        num_generations=s.num_generations,
        max_completion_length=s.max_completion_length,
        beta=s.beta,
        temperature=s.temperature,
        reward_weights=weights,
        use_vllm=s.use_vllm,
    )
    with args.main_process_first(desc="GRPO data"):
        ds = select(load_factory_dataset(run.dataset, run.config_name or "rl", run.split), run.limit)
        train = to_grpo(ds, s.max_pixels)
    size_checkpoints(args, s, len(train) * s.num_generations)
    model, processor, backend = load_for_training(s, backend)
    trainer_cls = GRPOTrainer if backend == "unsloth" else rollouts_in_generation_mode(GRPOTrainer)
    trainer = trainer_cls(
        model=model, reward_funcs=funcs, args=args, train_dataset=train, processing_class=processor, callbacks=callbacks
    )
    if backend == "hf":
        align_trainable_dtype(trainer.model, fp16=args.fp16)
    log.info(
        "GRPO: %d prompts × %d generations, backend %s, output %s", len(train), s.num_generations, backend, run.output
    )
    return run_trainer(trainer, processor, run, backend)
