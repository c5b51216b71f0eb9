"""The method's rewards for GRPO, exact and hardened.

Every reward is a plain function with TRL's reward signature::

    f(completions, **columns) -> list[float | None]

``completions`` may be plain strings or conversational (``[{"role": "assistant", "content": ...}]``,
content a string or a list of ``{"type": "text", "text": ...}`` parts). Ground truth comes from the
dataset columns of the data contract (``solution``, ``answer``, ``choices``, ``answer_text``,
``degradations``, ``target_words``, and ``direct_answers`` for A-OKVQA open answers), one value per
completion, as TRL passes them; every other keyword argument TRL adds (``prompts``,
``completion_ids``, ``trainer_state``, ``log_extra``, ``log_metric``, images, ...) is ignored.

* A sample whose ground truth is missing or unusable gets ``None`` (TRL: "not applicable").
* No reward raises on any model output, and every value is finite and inside the range its
  docstring states (property-tested: empty, huge, unicode, unbalanced or nested tags, ``nan``,
  ``inf``, ``1e309``). Configuration mistakes (an unknown ``mode``, ``unit='tokens'`` without a
  tokenizer, a column whose length differs from the completions') raise ``ValueError`` at once.
* Options are keyword arguments, so ``functools.partial`` turns any variant into a TRL reward;
  :func:`build_rewards` returns named, picklable reward objects (TRL logs each as
  ``rewards/<name>/mean``) and their weights.

The per-reward formulas, ranges and worked examples are in ``docs/rewards.md``.

The package: one module per reward (:mod:`.format`, :mod:`.accuracy`, :mod:`.degradation`,
:mod:`.length`), the input coercion (:mod:`.inputs`), the named reward object (:mod:`.base`), the
one list of rewards (:mod:`.registry`: ``{name: RewardSpec(function, log name, default weight)}``)
and the composite (:mod:`.composite`: :func:`build_rewards`, :func:`combined_reward`). The answer
matching is :mod:`factory.chains.answers` and the TYPE reading :func:`factory.chains.format.read_type`,
shared with the factory and the evaluation. Adding a reward: ``docs/extending-trainers.md``.
Importing this package loads neither torch nor TRL.
"""

from __future__ import annotations

from .accuracy import accuracy_reward, normalize_choice, score_answer
from .base import Reward
from .composite import build_rewards, combined_reward
from .degradation import DEGRADATION_MODES, MAX_TYPE_ITEMS, degradation_reward, degradation_score, pair_term
from .format import format_reward
from .inputs import completion_text
from .length import TokenCounter, WordCounter, length_reward, make_counter, make_length_reward
from .registry import (
    DEFAULT_WEIGHTS,
    LOG_NAMES,
    REGISTRY,
    REWARDS,
    RewardSpec,
    default_weights,
    register_reward,
    unregister_reward,
)

__all__ = [
    "DEFAULT_WEIGHTS",
    "DEGRADATION_MODES",
    "LOG_NAMES",
    "MAX_TYPE_ITEMS",
    "REGISTRY",
    "REWARDS",
    "Reward",
    "RewardSpec",
    "TokenCounter",
    "WordCounter",
    "accuracy_reward",
    "build_rewards",
    "combined_reward",
    "completion_text",
    "default_weights",
    "degradation_reward",
    "degradation_score",
    "format_reward",
    "length_reward",
    "make_counter",
    "make_length_reward",
    "normalize_choice",
    "pair_term",
    "register_reward",
    "score_answer",
    "unregister_reward",
]
