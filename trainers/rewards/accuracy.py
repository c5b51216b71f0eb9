"""The accuracy reward: does the ``<ANSWER>`` block name the right answer.

The answer matching itself (options by index, letter or text; open answers by value or words;
A-OKVQA's soft score) is :mod:`factory.chains.answers`, shared with the evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from factory.chains.answers import normalize_choice, option_index, score_answer
from factory.chains.format import parse_chain

from .inputs import as_list, completion_text, rows

__all__ = ["accuracy_reward", "normalize_choice", "score_answer", "truth_index"]


def truth_index(answer: Any, choices: Sequence[str]) -> int | None:
    """The ground-truth option: an index (int or digits), else a letter or option text
    (:func:`factory.chains.answers.option_index`, format ``truth``)."""
    return option_index(answer, choices, "truth")


def accuracy_reward(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    """Answer accuracy of the ``<ANSWER>`` block (see :func:`score_answer`). Range [0, 1].

    Ground truth: ``answer`` (else ``answer_text``), ``choices``, ``direct_answers``. A completion
    without an ANSWER block scores 0. ``None`` when the sample has no usable ground truth (no
    answer, or a multiple-choice answer that names no option).
    """
    n = len(completions)
    answers = rows(columns, "answer", n)
    texts = rows(columns, "answer_text", n)
    choices = rows(columns, "choices", n)
    direct = rows(columns, "direct_answers", n)
    out: list[float | None] = []
    for c, a, at, ch, d in zip(completions, answers, texts, choices, direct, strict=True):
        options = [str(x) for x in (as_list(ch) or [])]
        das = [str(x) for x in (as_list(d) or []) if x is not None and str(x).strip()]
        if a is None or (isinstance(a, str) and not a.strip()):
            a = at
        if options:
            truth = truth_index(a, options)
            if truth is None and at is not None:
                truth = truth_index(str(at), options)
            if truth is None:
                out.append(None)
                continue
            a = truth
        elif not das and (a is None or not str(a).strip()):
            out.append(None)
            continue
        pred = parse_chain(completion_text(c)).answer
        out.append(0.0 if pred is None else score_answer(pred, a, options, das))
    return out
