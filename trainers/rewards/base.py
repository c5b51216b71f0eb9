"""The named reward object every reward is wrapped in for TRL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

RewardFn = Callable[..., "list[float | None]"]
"""TRL's reward signature: ``f(completions, **columns) -> list[float | None]``."""


class Reward:
    """A reward function with fixed options and a name: callable with TRL's signature, logged by
    TRL under ``name`` (``rewards/<name>/mean``), and picklable (TRL's async rollout workers pickle
    reward functions; closures cannot be pickled)."""

    def __init__(self, name: str, func: RewardFn, /, **options: Any) -> None:
        self.__name__ = name
        self.__qualname__ = name
        self.func = func
        self.options = options

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        return self.func(completions, **{**columns, **self.options})

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items() if k != "target_cache")
        return f"Reward({self.__name__!r}: {self.func.__name__}({opts}))"
