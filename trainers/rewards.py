"""The method's rewards for GRPO, exact and hardened.

Every reward is a plain function with TRL's reward signature::

    f(completions, **columns) -> list[float | None]

``completions`` may be plain strings or conversational (``[{"role": "assistant", "content": ...}]``,
content a string or a list of ``{"type": "text", "text": ...}`` parts). Ground truth comes from the
dataset columns (``solution``, ``answer``, ``choices``, ``degradations``, ``target_words``,
``direct_answers``), one value per completion, as TRL passes them; other keyword arguments TRL
adds (``prompts``, ``completion_ids``, ``trainer_state``, images, ...) are ignored. A sample whose
ground truth is missing or unusable gets ``None`` ("not applicable" to TRL). No reward raises on
any model output, and every value is finite and inside its documented range.

Options are keyword arguments, so ``functools.partial`` turns any variant into a TRL reward; use
:func:`build_rewards` to get named functions (TRL logs each as ``rewards/<name>/mean``).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any, Callable, Mapping, Sequence

from factory.chains.format import FIELDS, parse_chain, parse_type
from factory.degrade.registry import canonical_name, normalize_name

__all__ = [
    "REWARDS",
    "accuracy_reward",
    "build_rewards",
    "combined_reward",
    "completion_text",
    "degradation_reward",
    "degradation_score",
    "format_reward",
    "length_reward",
    "normalize_choice",
    "pair_term",
    "score_answer",
]

MAX_TYPE_ITEMS = 64
"""At most this many ``name(s)`` items of a TYPE block are scored (bounds `paper`/`reference`)."""


# ---------------------------------------------------------------- helpers


def completion_text(completion: Any) -> str:
    """The text of a plain or conversational completion (the last assistant turn's text parts)."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        content = completion.get("content", "")
        if isinstance(content, str):
            return content
        if isinstance(content, Sequence):
            return "".join(
                str(p.get("text", "")) for p in content if isinstance(p, Mapping) and p.get("type", "text") == "text"
            )
        return str(content)
    if isinstance(completion, Sequence):
        msgs = [m for m in completion if isinstance(m, Mapping)]
        assistant = [m for m in msgs if m.get("role", "assistant") == "assistant"]
        return completion_text((assistant or msgs)[-1]) if (assistant or msgs) else ""
    return str(completion)


def _column(kwargs: Mapping[str, Any], name: str, n: int) -> list[Any]:
    value = kwargs.get(name)
    if value is None:
        return [None] * n
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value] * n
    values = list(value)
    return values if len(values) == n else (values + [None] * n)[:n]


def _finite01(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(v):
        return None
    return min(1.0, max(0.0, v))


# ---------------------------------------------------------------- format


def format_reward(completions: Sequence[Any], *, partial: bool = False, **_: Any) -> list[float]:
    """1 if the five blocks appear once each, closed, in order, with non-empty content; else 0.

    ``partial=True`` gives credit per block instead: each of the five blocks that appears exactly
    once, closed and non-empty earns 0.2, and the total is halved when the blocks are out of
    order. Range [0, 1] either way.
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


# ---------------------------------------------------------------- answers

_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen twenty".split()
    )
}
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(r"[^\w\s]")


def _norm_text(s: Any) -> str:
    """Lower-case, NFKC, punctuation and articles removed, number words → digits, '3.0' → '3'."""
    t = unicodedata.normalize("NFKC", str(s)).lower().strip()
    t = re.sub(r"(?<=\d)\.0+\b", "", t)
    t = _PUNCT.sub(" ", t)
    t = _ARTICLES.sub(" ", t)
    words = [str(_NUMBER_WORDS[w]) if w in _NUMBER_WORDS else w for w in t.split()]
    return " ".join(words)


_LETTER_ONLY = re.compile(r"^\(?\s*([a-z])\s*[\).:]?$")
_CUE = re.compile(r"(?:answer|option|choice)\s*(?:is|:|=)?\s*\(?\s*([a-z]|\d+)\s*\)?(?![\w])", re.IGNORECASE)
_LEADING = re.compile(r"^\(?\s*([a-z]|\d+)\s*[\).:](?:\s|$)", re.IGNORECASE)
_INT = re.compile(r"(?<![\w.])(\d+)(?![\w.])")


def normalize_choice(text: Any, choices: Sequence[str]) -> int | None:
    """The 0-based option a free-form answer names, or ``None``.

    Accepted, in this order: the option's text ("a cat"); a lone letter, "(B)", "B." (A = 0);
    a cue ("the answer is 1", "Option 2", "choice: c"); a leading label ("2. a dog"); a lone
    number. Numbers are 0-based option indices, as the dataset shows options ``0. x 1. y ...``
    and stores the index in ``answer``. Finally, a text containing exactly one option's text.
    """
    n = len(choices)
    if n == 0:
        return None
    raw = unicodedata.normalize("NFKC", str(text)).strip()
    if not raw:
        return None
    norm = _norm_text(raw)
    norm_choices = [_norm_text(c) for c in choices]
    if norm and norm in norm_choices:
        return norm_choices.index(norm)
    low = raw.lower()

    def as_index(tok: str) -> int | None:
        tok = tok.lower()
        if tok.isdigit():
            i = int(tok)
            return i if i < n else None
        if len(tok) == 1 and tok.isalpha():
            i = ord(tok) - ord("a")
            return i if 0 <= i < n else None
        return None

    m = _LETTER_ONLY.match(low)
    if m:
        return as_index(m.group(1))
    for rx in (_CUE, _LEADING):
        m = rx.search(low)
        if m and (idx := as_index(m.group(1))) is not None:
            return idx
    ints = _INT.findall(low)
    if len(ints) == 1 and len(low) <= 12 and (idx := as_index(ints[0])) is not None:
        return idx
    hits = [i for i, c in enumerate(norm_choices) if c and re.search(rf"(?<!\w){re.escape(c)}(?!\w)", norm)]
    return hits[0] if len(hits) == 1 else None


def score_answer(
    predicted: Any,
    answer: Any,
    choices: Sequence[str] | None = (),
    direct_answers: Sequence[str] | None = None,
) -> float:
    """Score one predicted answer in [0, 1].

    * multiple choice (``choices`` non-empty, ``answer`` the 0-based index): 1 if
      :func:`normalize_choice` names the right option, else 0;
    * open questions with ``direct_answers`` (A-OKVQA): the VQA soft score
      ``min(#annotators who gave this answer / 3, 1)``;
    * otherwise normalised exact match (case, punctuation, articles, "3" = "three" = "3.0",
      "Yes, it is." = "yes").
    """
    choices = list(choices or [])
    if choices:
        try:
            gt = int(str(answer).strip())
        except (TypeError, ValueError):
            gt = normalize_choice(answer, choices)
        return 1.0 if gt is not None and normalize_choice(predicted, choices) == gt else 0.0
    pred = _norm_text(predicted)
    if not pred:
        return 0.0
    first = pred.split()[0]
    if first in ("yes", "no"):
        pred = first
    if direct_answers:
        matches = sum(1 for a in direct_answers if _norm_text(a) == pred)
        return min(matches / 3.0, 1.0)
    if answer is None:
        return 0.0
    return 1.0 if pred == _norm_text(answer) else 0.0


def accuracy_reward(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    """Answer accuracy of the ``<ANSWER>`` block (see :func:`score_answer`). Range [0, 1].

    A completion without an ANSWER block scores 0. ``None`` when the sample has no ground truth.
    """
    n = len(completions)
    answers = _column(columns, "answer", n)
    choices = _column(columns, "choices", n)
    direct = _column(columns, "direct_answers", n)
    out: list[float | None] = []
    for c, a, ch, d in zip(completions, answers, choices, direct):
        if (a is None or str(a).strip() == "") and not d:
            out.append(None)
            continue
        pred = parse_chain(completion_text(c)).answer
        out.append(0.0 if pred is None else score_answer(pred, a, list(ch or []), list(d or [])))
    return out


# ---------------------------------------------------------------- degradations (r_deg)


def pair_term(predicted: float, truth: float) -> float:
    """The paper's per-pair term for a matching type: ``1 - |s_pred - s_gt|`` (intensities in [0, 1])."""
    p = _finite01(predicted)
    t = _finite01(truth)
    if p is None or t is None:
        return 0.0
    return 1.0 - abs(p - t)


def _gt_pairs(degradations: Any, solution: Any) -> list[tuple[str, float]] | None:
    items = degradations
    if isinstance(items, str):
        try:
            items = json.loads(items)
        except ValueError:
            items = None
    if isinstance(items, Mapping) and "name" in items:  # a column of structs arrives as dict of lists
        names, vals = items.get("name") or [], items.get("intensity") or []
        items = [{"name": a, "intensity": b} for a, b in zip(names, vals)]
    if isinstance(items, Sequence) and not isinstance(items, (str, bytes)):
        pairs = []
        for it in items:
            if isinstance(it, Mapping) and it.get("name") is not None:
                s = _finite01(it.get("intensity"))
                if s is None:
                    return None
                pairs.append((canonical_name(str(it["name"])) or normalize_name(str(it["name"])), s))
        return pairs
    if isinstance(solution, str) and solution:
        parsed = parse_chain(solution)
        if parsed.type is None:
            return None
        return [(p.name, s) for p in parsed.type_pairs if (s := _finite01(p.intensity)) is not None]
    return None


def _pred_pairs(text: str) -> list[tuple[str, float | None]]:
    block = parse_chain(text).type
    return [(p.name, _finite01(p.intensity)) for p in parse_type(block)[:MAX_TYPE_ITEMS]]


def degradation_score(
    predicted: Sequence[tuple[str, float | None]], truth: Sequence[tuple[str, float]], mode: str = "matched"
) -> float:
    """r_deg for one sample from ``(name, intensity)`` lists (names already canonical).

    * ``matched`` (default): one-to-one matching by name (each ground-truth item can be matched
      once; the closest intensities pair first); a match earns ``1 - |Δs|``, every unmatched
      prediction and every missed ground truth costs 1; the sum is divided by the size of the
      union (matches + unmatched predictions + misses). Range [-1, 1]; no damage predicted for a
      clean image scores 1.
    * ``paper`` (Eq. 6): for every predicted item, ``1 - |Δs|`` against the ground-truth item of
      the same type, or -1 when the type is not in the ground truth; summed. Range
      [-n, n] for n predicted items (n <= 64).
    * ``reference`` (the reference code): per predicted item whose name is in the ground truth
      ``1 + (0.5 - |Δs|)``, per predicted item not in it -1, per ground-truth name not predicted
      -1; summed (repeated names count each time, as there). Range [-(n + m), 1.5 n].

    An unparseable or non-finite predicted intensity counts as ``|Δs| = 1``.
    """
    truth_by_name: dict[str, list[float]] = {}
    for name, s in truth:
        truth_by_name.setdefault(name, []).append(s)

    def delta(p: float | None, t: float) -> float:
        return 1.0 if p is None else abs(p - t)

    if mode == "paper":
        total = 0.0
        for name, s in predicted:
            if name in truth_by_name:
                total += 1.0 - min(delta(s, t) for t in truth_by_name[name])
            else:
                total -= 1.0
        return total
    if mode == "reference":
        total = 0.0
        for name, s in predicted:
            if name in truth_by_name:
                total += 1.0 + (0.5 - min(delta(s, t) for t in truth_by_name[name]))
            else:
                total -= 1.0
        predicted_names = {n for n, _ in predicted}
        total -= sum(len(v) for n, v in truth_by_name.items() if n not in predicted_names)
        return total
    if mode != "matched":
        raise ValueError(f"degradation_reward: unknown mode {mode!r}; use 'matched', 'paper' or 'reference'.")
    gained = 0.0
    matches = unmatched = 0
    pred_by_name: dict[str, list[float | None]] = {}
    for name, s in predicted:
        pred_by_name.setdefault(name, []).append(s)
    missed = 0
    for name in set(pred_by_name) | set(truth_by_name):
        preds = list(pred_by_name.get(name, []))
        gts = list(truth_by_name.get(name, []))
        cands = sorted(
            ((delta(p, t), i, j) for i, p in enumerate(preds) for j, t in enumerate(gts)), key=lambda x: x[0]
        )
        used_p: set[int] = set()
        used_t: set[int] = set()
        for d, i, j in cands:
            if i in used_p or j in used_t:
                continue
            used_p.add(i)
            used_t.add(j)
            gained += 1.0 - d
            matches += 1
        unmatched += len(preds) - len(used_p)
        missed += len(gts) - len(used_t)
    union = matches + unmatched + missed
    if union == 0:
        return 1.0
    return (gained - unmatched - missed) / union


def degradation_reward(completions: Sequence[Any], *, mode: str = "matched", **columns: Any) -> list[float | None]:
    """r_deg: how well ``<TYPE>`` names the injected degradations and their intensities.

    Ground truth from the ``degradations`` column (else the TYPE block of ``solution``). Aliases
    and case are normalised. See :func:`degradation_score` for the three modes.
    """
    if mode not in ("matched", "paper", "reference"):
        raise ValueError(f"degradation_reward: unknown mode {mode!r}; use 'matched', 'paper' or 'reference'.")
    n = len(completions)
    degs = _column(columns, "degradations", n)
    sols = _column(columns, "solution", n)
    out: list[float | None] = []
    for c, d, sol in zip(completions, degs, sols):
        truth = _gt_pairs(d, sol)
        if truth is None:
            out.append(None)
            continue
        out.append(float(degradation_score(_pred_pairs(completion_text(c)), truth, mode)))
    return out


# ---------------------------------------------------------------- length (r_len)

Counter = Callable[[str], int]


def make_counter(unit: str = "words", tokenizer: Any = None) -> Counter:
    """A length function: whitespace words, or tokens of ``tokenizer`` (an HF tokenizer with
    ``encode``, or any callable ``str -> list``), built once and reused."""
    if unit == "words":
        return lambda text: len(text.split())
    if unit != "tokens":
        raise ValueError(f"length_reward: unit {unit!r}; use 'words' or 'tokens'.")
    if tokenizer is None:
        raise ValueError("length_reward: unit='tokens' needs tokenizer= (an HF tokenizer or a callable).")
    if hasattr(tokenizer, "encode"):
        return lambda text: len(tokenizer.encode(text, add_special_tokens=False))
    if callable(tokenizer):

        def count(text: str) -> int:
            out = tokenizer(text)
            if isinstance(out, Mapping):
                out = out.get("input_ids", [])
            return len(out)

        return count
    raise ValueError(f"length_reward: tokenizer of type {type(tokenizer).__name__} has no encode() and is not callable.")


def _scope_text(text: str, scope: str) -> str:
    if scope == "chain":
        return text
    if scope != "reasoning":
        raise ValueError(f"length_reward: scope {scope!r}; use 'reasoning' or 'chain'.")
    return parse_chain(text).reasoning or ""


def length_reward(
    completions: Sequence[Any],
    *,
    unit: str = "words",
    tokenizer: Any = None,
    scope: str = "reasoning",
    clip: bool = True,
    counter: Counter | None = None,
    **columns: Any,
) -> list[float | None]:
    """r_len (Eq. 8): ``1 - |len(Y) - len(Y_GT)| / len(Y_GT)``.

    ``scope='reasoning'`` (default) measures the REASONING block, ``'chain'`` the whole
    completion against the whole ground-truth ``solution`` (the reference code's choice). The
    target is ``target_words`` for words on the reasoning, else measured on ``solution`` with the
    same unit and scope. Clipped to [-1, 1] by default (unclipped the reference can go far below
    -1); ``clip=False`` gives the raw value (bounded below by a completion's size).
    """
    count = counter or make_counter(unit, tokenizer)
    n = len(completions)
    targets = _column(columns, "target_words", n)
    sols = _column(columns, "solution", n)
    out: list[float | None] = []
    for c, tw, sol in zip(completions, targets, sols):
        target: float | None = None
        if unit == "words" and scope == "reasoning" and tw is not None:
            try:
                target = float(tw)
            except (TypeError, ValueError):
                target = None
        if target is None and isinstance(sol, str) and sol:
            target = float(count(_scope_text(sol, scope)))
        if target is None or not math.isfinite(target) or target <= 0:
            out.append(None)
            continue
        length = float(count(_scope_text(completion_text(c), scope)))
        r = 1.0 - abs(length - target) / target
        out.append(max(-1.0, min(1.0, r)) if clip else r)
    return out


# ---------------------------------------------------------------- composite

REWARDS: dict[str, Callable[..., list[float | None]]] = {
    "degradation": degradation_reward,
    "length": length_reward,
    "accuracy": accuracy_reward,
    "format": format_reward,
}
"""Reward functions by name."""

LOG_NAMES = {"degradation": "r_deg", "length": "r_len", "accuracy": "accuracy", "format": "format"}
DEFAULT_WEIGHTS = {"degradation": 1.0, "length": 1.0, "accuracy": 1.0, "format": 1.0}
"""The paper's R = r_deg + r_len, plus the reference run's accuracy and format, unweighted."""


def build_rewards(
    weights: Mapping[str, float] | None = None,
    *,
    degradation_mode: str = "matched",
    length_unit: str = "words",
    length_scope: str = "reasoning",
    length_clip: bool = True,
    tokenizer: Any = None,
    format_partial: bool = False,
) -> tuple[list[Callable[..., list[float | None]]], list[float]]:
    """Named reward functions and their weights, for ``GRPOTrainer(reward_funcs=...)`` and
    ``GRPOConfig(reward_weights=...)``. A weight of 0 drops that reward. Names in TRL's log:
    ``r_deg``, ``r_len``, ``accuracy``, ``format``."""
    w = dict(DEFAULT_WEIGHTS if weights is None else weights)
    unknown = sorted(set(w) - set(REWARDS))
    if unknown:
        raise ValueError(f"build_rewards: unknown reward(s) {unknown}; choose from {sorted(REWARDS)}.")
    if length_unit == "tokens" and tokenizer is None:
        length_unit = "words"  # no tokenizer given: fall back to words rather than fail mid-training
    counter = make_counter(length_unit, tokenizer)
    options: dict[str, dict[str, Any]] = {
        "degradation": {"mode": degradation_mode},
        "length": {"unit": length_unit, "scope": length_scope, "clip": length_clip, "counter": counter},
        "accuracy": {},
        "format": {"partial": format_partial},
    }
    funcs, ws = [], []
    for key in ("degradation", "length", "accuracy", "format"):
        weight = float(w.get(key, 0.0))
        if weight == 0.0:
            continue
        base, opts = REWARDS[key], options[key]

        def reward(completions, _base=base, _opts=opts, **columns):
            return _base(completions, **_opts, **columns)

        reward.__name__ = LOG_NAMES[key]
        reward.__qualname__ = LOG_NAMES[key]
        funcs.append(reward)
        ws.append(weight)
    if not funcs:
        raise ValueError("build_rewards: every weight is 0; give at least one reward a weight.")
    return funcs, ws


def combined_reward(completions: Sequence[Any], *, weights: Mapping[str, float] | None = None, **columns: Any) -> list[float]:
    """Weighted sum of the rewards (``None`` parts count as 0), e.g. for evaluation or logging."""
    funcs, ws = build_rewards(weights)
    total = [0.0] * len(completions)
    for f, wt in zip(funcs, ws):
        for i, v in enumerate(f(completions, **columns)):
            total[i] += wt * (v or 0.0)
    return total
