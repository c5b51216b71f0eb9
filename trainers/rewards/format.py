"""The format reward: are the five blocks there, once each, closed, in order and non-empty."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from factory.chains.format import FIELDS, parse_chain

from .base import Reward
from .inputs import completion_text

__all__ = ["format_reward"]


def format_reward(completions: Sequence[Any], *, partial: bool = False, **_: Any) -> list[float]:
    """1 if the five blocks appear once each, closed, in order, with non-empty content; else 0.

    Text outside the blocks is allowed. ``partial=True`` gives credit per block instead: each of
    the five blocks that appears exactly once, closed and non-empty earns 0.2, and the total is
    halved when the blocks are out of order. Range [0, 1] either way; never ``None``.
    """
    out = []
    for c in completions:
        p = parse_chain(completion_text(c))
        if not partial:
            out.append(1.0 if p.is_complete else 0.0)
            continue
        good = sum(
            1
            for f in FIELDS
            if p.counts.get(f, 0) == 1 and f not in p.unclosed and (getattr(p, f) or "").strip()
        )
        score = good / len(FIELDS)
        out.append(score if p.in_order else score / 2)
    return out


def build(name: str, *, format_partial: bool = False, **_: Any) -> Reward:
    """The registry's builder: :func:`format_reward` with ``build_rewards(format_partial=...)``."""
    return Reward(name, format_reward, partial=bool(format_partial))
