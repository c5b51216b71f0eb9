"""GRPO with the method's rewards (the method's second stage)."""

from __future__ import annotations

import logging

from .data import load_factory_dataset, to_grpo
from .models import load_for_training, prepare_cpu_environment
from .run import RunConfig, TrainResult, run_trainer, select, trainer_kwargs

log = logging.getLogger("robust_r1.trainers")


def train_grpo(run: RunConfig, *, tokenizer_for_length=None) -> TrainResult:
    """GRPO of ``run.settings.model`` (a base model or the SFT output) on the ``rl`` config.

    Rewards: :func:`trainers.rewards.build_rewards` with ``run.settings.reward_weights``
    (default: r_deg + r_len + accuracy + format, unweighted); TRL logs each reward's mean and
    standard deviation separately (``rewards/<name>/mean``).
    """
    prepare_cpu_environment()  # before TRL imports Triton
    from trl import GRPOConfig, GRPOTrainer

    from .rewards import build_rewards

    s = run.settings
    ds = select(load_factory_dataset(run.dataset, run.config_name or "rl", run.split), run.limit)
    train = to_grpo(ds, s.max_pixels)
    model, processor, backend = load_for_training(s)
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
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=train, processing_class=processor)
    log.info("GRPO: %d prompts × %d generations, backend %s, output %s", len(train), s.num_generations, backend, run.output)
    return run_trainer(trainer, processor, run, backend)
