"""The one list of rewards: ``{name: RewardSpec(function, log name, default weight)}``.

:func:`~trainers.rewards.build_rewards`, :func:`~trainers.rewards.combined_reward`, the training
presets' default ``reward_weights`` and GRPO read it, so a new reward is one new module in this
package plus one line in :data:`REGISTRY` (or one :func:`register_reward` call from outside);
``docs/extending-trainers.md`` has the steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .accuracy import accuracy_reward
from .base import Reward, RewardFn
from .degradation import build as build_degradation
from .degradation import check as check_degradation
from .degradation import degradation_reward
from .format import build as build_format
from .format import format_reward
from .length import build as build_length
from .length import length_reward

__all__ = [
    "DEFAULT_WEIGHTS",
    "LOG_NAMES",
    "REGISTRY",
    "REWARDS",
    "RewardSpec",
    "default_weights",
    "register_reward",
    "reward_key",
    "unregister_reward",
]


@dataclass(frozen=True)
class RewardSpec:
    """One reward of the registry."""

    function: RewardFn
    """The reward, with TRL's signature ``f(completions, **columns) -> list[float | None]``."""
    log_name: str
    """The name TRL logs it under (``rewards/<log_name>/mean``); also accepted as a weight key."""
    weight: float = 1.0
    """Its weight when ``build_rewards`` gets no weights (and in the presets' ``reward_weights``)."""
    build: Callable[..., Reward] | None = None
    """``build(log_name, **options) -> Reward`` from ``build_rewards``' keyword options (each builder
    takes the options it needs and ignores the rest); ``None``: ``Reward(log_name, function)``."""
    check: Callable[..., None] | None = None
    """``check(**options)`` raises ``ValueError`` for a bad option, whether or not the reward is used."""

    def make(self, **options: Any) -> Reward:
        """The named, picklable reward object ``build_rewards`` hands to TRL."""
        if self.build is None:
            return Reward(self.log_name, self.function)
        return self.build(self.log_name, **options)


REGISTRY: dict[str, RewardSpec] = {
    "degradation": RewardSpec(degradation_reward, "r_deg", 1.0, build=build_degradation, check=check_degradation),
    "length": RewardSpec(length_reward, "r_len", 1.0, build=build_length),
    "accuracy": RewardSpec(accuracy_reward, "accuracy", 1.0),
    "format": RewardSpec(format_reward, "format", 1.0, build=build_format),
}
"""The rewards in the order ``build_rewards`` returns them. Defaults: the paper's R = r_deg + r_len,
plus the reference run's accuracy and format, unweighted."""


def reward_key(name: str) -> str | None:
    """The registry key of ``name`` (a key or a log name), else ``None``."""
    if name in REGISTRY:
        return name
    return next((k for k, s in REGISTRY.items() if s.log_name == name), None)


def register_reward(name: str, spec: RewardSpec, *, replace: bool = False) -> RewardSpec:
    """Add ``spec`` under ``name`` (after the built-in rewards). ``replace=True`` swaps an existing one.

    Raises ``ValueError`` when ``name`` or ``spec.log_name`` is already taken, the function is not
    callable or the default weight is not a finite number."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"register_reward: name must be a non-empty string, got {name!r}.")
    if not callable(spec.function):
        raise ValueError(f"register_reward({name!r}): function {spec.function!r} is not callable.")
    if isinstance(spec.weight, bool) or not isinstance(spec.weight, (int, float)) or not math.isfinite(spec.weight):
        raise ValueError(f"register_reward({name!r}): weight must be a finite number, got {spec.weight!r}.")
    taken = {k for k in REGISTRY if k != name} | {s.log_name for k, s in REGISTRY.items() if k != name}
    clash = sorted({name, spec.log_name} & taken)
    if clash or (name in REGISTRY and not replace):
        raise ValueError(
            f"register_reward({name!r}): {clash or [name]} already names a reward; "
            "choose another name (or pass replace=True to swap the reward of that name)."
        )
    REGISTRY[name] = spec
    return spec


def unregister_reward(name: str) -> RewardSpec:
    """Remove the reward ``name`` (a key or a log name) and return its spec."""
    key = reward_key(name)
    if key is None:
        raise ValueError(f"unregister_reward: no reward {name!r}; registered: {sorted(REGISTRY)}.")
    return REGISTRY.pop(key)


def default_weights() -> dict[str, float]:
    """``{name: default weight}`` of every registered reward (the presets' ``reward_weights``)."""
    return {k: float(s.weight) for k, s in REGISTRY.items()}


class _View(Mapping[str, Any]):
    """A read-only, live view of one field of every registered reward."""

    def __init__(self, field: str, doc: str) -> None:
        self._field = field
        self.__doc__ = doc

    def __getitem__(self, key: str) -> Any:
        return getattr(REGISTRY[key], self._field)

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)

    def __repr__(self) -> str:
        return repr(dict(self))


REWARDS: Mapping[str, RewardFn] = _View("function", "Reward functions by name (the keys of build_rewards' weights).")
LOG_NAMES: Mapping[str, str] = _View("log_name", "The name TRL logs each reward under.")
DEFAULT_WEIGHTS: Mapping[str, float] = _View("weight", "The default weight of each reward.")
