"""The rewards together: named reward objects and weights for TRL, and their weighted sum."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

from factory.errors import ConfigError

from .base import Reward
from .registry import REGISTRY, reward_key

__all__ = ["build_rewards", "combined_reward"]


def _weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """``{registry key: weight}`` from weights keyed by names or log names (checked)."""
    given = {k: s.weight for k, s in REGISTRY.items()} if weights is None else dict(weights)
    unknown = sorted(k for k in given if reward_key(k) is None)
    if unknown:
        raise ConfigError(
            "weights", f"unknown reward(s) {unknown}", value=unknown, fix=f"choose from {sorted(REGISTRY)}"
        )
    out: dict[str, float] = {}
    for k, v in given.items():
        try:
            value = float(v)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise ConfigError("weights", f"the weight of {k!r} must be a finite number, got {v!r}", value=v)
        key = reward_key(k)
        if key in out:
            raise ConfigError("weights", f"{key!r} is weighted twice (as {k!r} too)", value=k)
        out[key] = value
    return out


def build_rewards(
    weights: Mapping[str, float] | None = None,
    *,
    degradation_mode: str = "matched",
    length_unit: str | None = None,
    length_scope: str = "reasoning",
    length_clip: bool = True,
    tokenizer: Any = None,
    format_partial: bool = False,
) -> tuple[list[Reward], list[float]]:
    """Named reward functions and their weights, for ``GRPOTrainer(reward_funcs=...)`` and
    ``GRPOConfig(reward_weights=...)``.

    ``weights`` maps a registered reward (:data:`trainers.rewards.registry.REGISTRY`: by default
    ``degradation``/``r_deg``, ``length``/``r_len``, ``accuracy``, ``format``) to a weight; a reward
    left out or weighted 0 is dropped (``{"degradation": 1, "length": 1}`` is the paper's R).
    Default: every registered reward at its default weight (the four, weight 1). Functions come in
    registry order (r_deg, r_len, accuracy, format). ``length_unit`` defaults to tokens when
    ``tokenizer`` is given, else words. Bad weights or options raise
    :class:`factory.errors.ConfigError` (a ``ValueError``) naming the argument.
    """
    w = _weights(weights)
    options = dict(
        degradation_mode=degradation_mode,
        length_unit=length_unit,
        length_scope=length_scope,
        length_clip=length_clip,
        tokenizer=tokenizer,
        format_partial=format_partial,
    )
    for spec in REGISTRY.values():
        if spec.check is not None:
            spec.check(**options)
    funcs: list[Reward] = []
    ws: list[float] = []
    for key, spec in REGISTRY.items():
        weight = w.get(key, 0.0)
        if weight == 0.0:
            continue
        funcs.append(spec.make(**options))
        ws.append(weight)
    if not funcs:
        raise ConfigError("weights", "every weight is 0", value=dict(w), fix="give at least one reward a weight")
    return funcs, ws


def combined_reward(
    completions: Sequence[Any], *, weights: Mapping[str, float] | None = None, **kwargs: Any
) -> list[float]:
    """The weighted sum of :func:`build_rewards`' rewards (a ``None`` part counts 0, as TRL's
    ``nansum`` does), e.g. for evaluation or as one TRL reward.

    ``kwargs`` are :func:`build_rewards`' options (``degradation_mode``, ``length_unit``,
    ``length_scope``, ``length_clip``, ``tokenizer``, ``format_partial``) and the dataset columns."""
    options = {k: kwargs.pop(k) for k in _OPTIONS if k in kwargs}
    funcs, ws = build_rewards(weights, **options)
    total = [0.0] * len(completions)
    for f, wt in zip(funcs, ws, strict=True):
        for i, v in enumerate(f(completions, **kwargs)):
            total[i] += wt * (v if v is not None else 0.0)
    return total


_OPTIONS = tuple(p.name for p in inspect.signature(build_rewards).parameters.values() if p.kind is p.KEYWORD_ONLY)
"""The keyword options of :func:`build_rewards`."""
