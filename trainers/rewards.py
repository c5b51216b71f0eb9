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
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence

from factory.chains.format import FIELDS, NO_DAMAGE, parse_chain, parse_type
from factory.degrade.registry import canonical_name, normalize_name

__all__ = [
    "DEFAULT_WEIGHTS",
    "LOG_NAMES",
    "MAX_TYPE_ITEMS",
    "REWARDS",
    "Reward",
    "TokenCounter",
    "WordCounter",
    "accuracy_reward",
    "build_rewards",
    "combined_reward",
    "completion_text",
    "degradation_reward",
    "degradation_score",
    "format_reward",
    "length_reward",
    "make_counter",
    "make_length_reward",
    "normalize_choice",
    "pair_term",
    "score_answer",
]

log = logging.getLogger("robust_r1.trainers")

MAX_TYPE_ITEMS = 64
"""Only the first this many ``name(s)`` items of a TYPE block are scored (bounds `paper`/`reference`)."""

_MAX_TYPE_CHARS = 16384
"""Only this many characters of a predicted TYPE block are parsed (bounds the work on junk)."""

_MAX_NAME_CHARS = 128
"""A run of name characters (letters, digits, spaces, ``-``, ``_``) longer than this is cut to its
last this-many characters before parsing: no degradation name is that long, and the parser's work
per item grows with the run (searching a long run for a known name in its trailing words)."""
_LONG_RUN_RE = re.compile(r"[\w\- ]{%d,}" % (_MAX_NAME_CHARS + 1))

DEGRADATION_MODES = ("matched", "paper", "reference")

_MAX_ANSWER_CHARS = 2000
"""An ANSWER longer than this is cut before matching (answers are short; this bounds the work)."""


# ---------------------------------------------------------------- inputs


def completion_text(completion: Any) -> str:
    """The text of a plain or conversational completion (the last assistant turn's text parts).

    Never raises: anything unrecognisable gives ``""`` or its ``str()``.
    """
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (bytes, bytearray)):
        return bytes(completion).decode("utf-8", "replace")
    if isinstance(completion, Mapping):
        content = completion.get("content", completion.get("text", ""))
        return _content_text(content)
    if isinstance(completion, Sequence):
        items = list(completion)
        if all(isinstance(m, Mapping) and "role" in m for m in items) and items:
            assistant = [m for m in items if m.get("role") == "assistant"]
            return completion_text((assistant or items)[-1])
        return _content_text(items)
    return str(completion)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, Mapping):
                if p.get("text") is not None and p.get("type", "text") == "text":
                    parts.append(str(p["text"]))
                elif "content" in p and p.get("role", "assistant") == "assistant":
                    parts.append(completion_text(p))
        return "".join(parts)
    return completion_text(content)


def _rows(columns: Mapping[str, Any], name: str, n: int) -> list[Any]:
    """One value of column ``name`` per completion (``None`` where the column is absent).

    A scalar is broadcast; a sequence must have one value per completion (TRL's contract).
    """
    value = columns.get(name)
    if value is None:
        return [None] * n
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(
            f"reward column {name!r} has {len(values)} values for {n} completions; "
            "pass one value per completion (as TRL does)."
        )
    return values


def _as_list(value: Any) -> list[Any] | None:
    """A list column value (list, tuple, numpy/pyarrow array, JSON text) as a list, else ``None``."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


def _finite(x: Any) -> float | None:
    """``float(x)`` when it is a finite number; ``None`` otherwise (bools and None too)."""
    if isinstance(x, bool) or x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if math.isfinite(v) else None


def _finite01(x: Any) -> float | None:
    """A number clamped to [0, 1]; ``None`` for anything non-numeric or non-finite (bools too)."""
    v = _finite(x)
    if v is None:
        return None
    return min(1.0, max(0.0, v))


# ---------------------------------------------------------------- format


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


# ---------------------------------------------------------------- answers

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_NUMBER_WORDS = {w: i for i, w in enumerate(_UNITS)}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i >= 2}
_ARTICLES = {"a", "an", "the"}
_PUNCT_RE = re.compile(r"[^\w\s]|_")
_TRAILING_ZEROS_RE = re.compile(r"(?<=\d)\.0+(?![0-9])")
_THOUSANDS_RE = re.compile(r"(?<=[0-9]),(?=[0-9]{3}(?![0-9]))")
_NUMBER_RE = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[-+]?[0-9]+)?")
_ANSWER_PREFIX_RE = re.compile(r"(?:the\s+)?(?:final\s+|correct\s+)?answer\s*(?:is\b|:|=)?\s*", re.IGNORECASE)


def _norm_text(s: Any) -> str:
    """Words of ``s`` for matching: NFKC, case-folded, punctuation and articles dropped, number
    words as digits ("twenty-one" → "21"), "3.0" → "3", "1,000" → "1000". Only ``\\w`` and single spaces."""
    t = unicodedata.normalize("NFKC", str(s)).casefold()
    t = _TRAILING_ZEROS_RE.sub("", _THOUSANDS_RE.sub("", t))
    words: list[str] = []
    for w in _PUNCT_RE.sub(" ", t).split():
        if w in _ARTICLES:
            continue
        if w in _NUMBER_WORDS:
            unit = _NUMBER_WORDS[w]
            if unit < 10 and words and words[-1] in _TENS_DIGITS:  # "twenty one" → "21"
                words[-1] = str(int(words[-1]) + unit)
                continue
            w = str(unit)
        elif w in _TENS:
            w = str(_TENS[w])
        words.append(w)
    return " ".join(words)


_TENS_DIGITS = {str(v) for v in _TENS.values()}


def _as_number(s: Any) -> float | None:
    """A finite number written as digits or words ("3", "3.0", "three", "1,000", "2e3"), else ``None``."""
    t = unicodedata.normalize("NFKC", str(s)).casefold().strip().rstrip(".!")
    if not t or len(t) > 64:
        return None
    t = _THOUSANDS_RE.sub("", t)
    if _NUMBER_RE.fullmatch(t):
        v = float(t)
    else:
        words = _norm_text(t).split()
        if len(words) != 1 or not re.fullmatch(r"[0-9]{1,15}", words[0]):
            return None
        v = float(words[0])
    return v if math.isfinite(v) else None


def _strip_answer_prefix(s: str) -> str:
    m = _ANSWER_PREFIX_RE.match(s.strip())
    return s.strip()[m.end():] if m and m.end() < len(s.strip()) else s.strip()


def _answers_match(predicted: Any, truth: Any) -> bool:
    """Open-answer equality: numbers by value, yes/no by the first word, else normalised words."""
    p = _strip_answer_prefix(unicodedata.normalize("NFKC", str(predicted))[:_MAX_ANSWER_CHARS])
    g = str(truth)
    a, b = _as_number(p), _as_number(g)
    if a is not None and b is not None:
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    np_, ng = _norm_text(p), _norm_text(g)
    if not np_ or not ng:
        return False
    if ng in ("yes", "no"):
        return np_.split()[0] == ng
    return np_ == ng


_LABEL = r"(?:[A-Za-z]|[0-9]{1,3})"
_BARE_RE = re.compile(rf"[(\[]?\s*({_LABEL})\s*[)\]]?\s*[.:,;!?]?")
_HEAD_RE = re.compile(rf"([(\[])?\s*({_LABEL})(?![A-Za-z0-9])\s*([)\]])?(?=$|[\s.,:;!?])")
_LEADING_LABEL_RE = re.compile(rf"[(\[]?({_LABEL})\s*[)\].:]\s+(\S.*)", re.DOTALL)
_CUE_RE = re.compile(
    r"\b(answer|option|choice)\b(?:\s+(?:is|would\s+be|should\s+be|will\s+be))?\s*[:=\-]?\s*", re.IGNORECASE
)
_CLAUSE_END_RE = re.compile(r"[;!?\n]|\.(?=\s|$)")  # a sentence end, not a decimal point
_MAX_CUES = 8


def _clean_answer(text: Any) -> str:
    s = unicodedata.normalize("NFKC", str(text)[: _MAX_ANSWER_CHARS * 2])[:_MAX_ANSWER_CHARS]
    s = s.replace("**", "").replace("__", "").replace("`", "")
    return " ".join(s.split()).strip(" \"'“”‘’")


def _label_index(label: str, n: int) -> int | None:
    """A 0-based index from an option label: digits as they are, letters A = 0, B = 1, ..."""
    if label.isdigit():
        i = int(label)
    else:
        i = ord(label.lower()) - ord("a")
    return i if 0 <= i < n else None


def _contained(words: str, norm_choices: Sequence[str]) -> int | None:
    """The one option whose text occurs (as whole words) in ``words``; ``None`` if none or several.

    An option found only as part of a longer option that is also found ("cat" in "black cat")
    does not count."""
    padded = f" {words} "
    hits = [i for i, c in enumerate(norm_choices) if c and f" {c} " in padded]
    keep = [i for i in hits if not any(norm_choices[j] != norm_choices[i] and f" {norm_choices[i]} " in f" {norm_choices[j]} " for j in hits)]
    return keep[0] if keep and len({norm_choices[i] for i in keep}) == 1 else None


def _head_choice(rest: str, norm_choices: Sequence[str]) -> int | None:
    """The option named right after a cue: a bare label, an option's text, or a leading label."""
    n = len(norm_choices)
    clause = _CLAUSE_END_RE.split(rest.strip(), maxsplit=1)[0].strip()
    m = _BARE_RE.fullmatch(clause)
    if m and (i := _label_index(m.group(1), n)) is not None:
        return i
    nc = _norm_text(clause)
    if nc and nc in norm_choices:
        return norm_choices.index(nc)
    if (i := _contained(nc, norm_choices)) is not None:
        return i
    m = _HEAD_RE.match(clause)
    if m:
        label, bracketed = m.group(2), bool(m.group(1) or m.group(3))
        after = clause[m.end():]
        # A lower-case lone letter followed by words is an article or pronoun ("the answer is a cat").
        if not (label.isalpha() and label.islower() and not bracketed and re.match(r"\s*\w", after)):
            return _label_index(label, n)
    return None


def normalize_choice(text: Any, choices: Sequence[str]) -> int | None:
    """The 0-based option a free-form answer names, or ``None`` (no option, or ambiguous).

    Tried in this order:

    1. a bare label: "B", "(B)", "B.", "[b]", "2" (letters A = 0; numbers are 0-based indices,
       as the dataset shows options ``0. x 1. y ...`` and stores the index in ``answer``);
    2. an option's text ("a cat", "A cat.", "three" for "3"; case, punctuation, articles, number
       words normalised), else a number in words ("one") as an index;
    3. after a cue, the last "answer ..." cue first, then the last "option/choice ..." cue:
       "the answer is 1", "Option 2" (= index 2), "choice: c", "the answer is a cat", "The answer
       is C, not B";
    4. a leading label with text: "B. a cat", "1) a cat" (``None`` if the text names another
       option, as in "1. a dog" or a copy of the whole option list);
    5. exactly one option's text inside ("It is a cat"; "dog or cat" is ``None``).

    A number or letter outside the options falls through to the text rules (options "7", "8", "9":
    "7" is option 0).
    """
    if text is None:
        return None
    if isinstance(choices, (str, bytes)):
        choices = _as_list(choices) or []
    choices = [str(c) for c in (choices or [])]
    n = len(choices)
    if n == 0:
        return None
    s = _clean_answer(text)
    if not s:
        return None
    norm_choices = [_norm_text(c) for c in choices]
    m = _BARE_RE.fullmatch(s)
    if m and (i := _label_index(m.group(1), n)) is not None:
        return i
    ns = _norm_text(s)
    if ns and ns in norm_choices:
        return norm_choices.index(ns)
    if re.fullmatch(r"[0-9]{1,3}", ns) and not re.search(r"[0-9]", s) and (i := _label_index(ns, n)) is not None:
        return i  # a number in words: "one"
    cues = list(_CUE_RE.finditer(s))
    answer_cues = [c for c in cues if c.group(1).lower() == "answer"][-_MAX_CUES:]
    other_cues = [c for c in cues if c.group(1).lower() != "answer"][-_MAX_CUES:]
    for cue in (*reversed(answer_cues), *reversed(other_cues)):
        if (i := _head_choice(s[cue.end():], norm_choices)) is not None:
            return i
    m = _LEADING_LABEL_RE.fullmatch(s)
    if m and (i := _label_index(m.group(1), n)) is not None:
        padded = f" {_norm_text(m.group(2))} "
        named = {c for c in norm_choices if c and f" {c} " in padded}
        if named - {norm_choices[i]}:
            return None  # "1. a dog" where option 1 is "a cat", or a copy of the option list
        return i
    return _contained(ns, norm_choices)


def _truth_index(answer: Any, choices: Sequence[str]) -> int | None:
    """The ground-truth option: an index (int or digits), else a letter or option text."""
    if answer is None or isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer if 0 <= answer < len(choices) else None
    if isinstance(answer, float):
        return int(answer) if answer.is_integer() and 0 <= answer < len(choices) else None
    s = str(answer).strip()
    if re.fullmatch(r"[-+]?[0-9]{1,6}", s):
        i = int(s)
        return i if 0 <= i < len(choices) else None
    return normalize_choice(s, choices) if s else None


def score_answer(
    predicted: Any,
    answer: Any,
    choices: Sequence[str] | None = (),
    direct_answers: Sequence[str] | None = None,
) -> float:
    """Score one predicted answer in [0, 1] (reused by evaluation).

    * multiple choice (``choices`` non-empty; ``answer`` the 0-based index, or a letter or the
      option's text): 1 if :func:`normalize_choice` names the right option, else 0 (also 0 when
      ``answer`` names no option);
    * open question with ``direct_answers`` (A-OKVQA): the VQA soft score
      ``min(#direct answers equal to the prediction / 3, 1)``;
    * otherwise equality with ``answer``: numbers by value ("3" = "three" = "3.0"), yes/no by the
      first word ("Yes, it is." = "yes"), else normalised words (case, punctuation, articles; a
      leading "the answer is" is ignored).
    """
    if predicted is None:
        return 0.0
    options = [str(c) for c in (_as_list(choices) or [])]
    if options:
        truth = _truth_index(answer, options)
        return 1.0 if truth is not None and normalize_choice(predicted, options) == truth else 0.0
    direct = [a for a in (_as_list(direct_answers) or []) if a is not None and str(a).strip()]
    if direct:
        return min(sum(1 for a in direct if _answers_match(predicted, a)) / 3.0, 1.0)
    if answer is None or not str(answer).strip():
        return 0.0
    return 1.0 if _answers_match(predicted, answer) else 0.0


def accuracy_reward(completions: Sequence[Any], **columns: Any) -> list[float | None]:
    """Answer accuracy of the ``<ANSWER>`` block (see :func:`score_answer`). Range [0, 1].

    Ground truth: ``answer`` (else ``answer_text``), ``choices``, ``direct_answers``. A completion
    without an ANSWER block scores 0. ``None`` when the sample has no usable ground truth (no
    answer, or a multiple-choice answer that names no option).
    """
    n = len(completions)
    answers = _rows(columns, "answer", n)
    texts = _rows(columns, "answer_text", n)
    choices = _rows(columns, "choices", n)
    direct = _rows(columns, "direct_answers", n)
    out: list[float | None] = []
    for c, a, at, ch, d in zip(completions, answers, texts, choices, direct):
        options = [str(x) for x in (_as_list(ch) or [])]
        das = [str(x) for x in (_as_list(d) or []) if x is not None and str(x).strip()]
        if a is None or (isinstance(a, str) and not a.strip()):
            a = at
        if options:
            truth = _truth_index(a, options)
            if truth is None and at is not None:
                truth = _truth_index(str(at), options)
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


# ---------------------------------------------------------------- degradations (r_deg)

_UNPARSED = "<unparsed TYPE>"
"""Stands for a TYPE block that is neither ``none`` nor any ``name(s)`` item: one wrong claim."""
_NONE_RE = re.compile(rf"[\W_]*{NO_DAMAGE}[\W_]*", re.IGNORECASE)


def _canon(name: Any) -> str:
    text = str(name)
    return canonical_name(text) or normalize_name(text)


def _delta(p: float | None, t: float) -> float:
    return 1.0 if p is None else abs(p - t)


def pair_term(predicted: float, truth: float) -> float:
    """The paper's per-pair term for a matching type: ``1 - |s_pred - s_gt|``.

    Intensities are clamped to [0, 1]; a non-finite one (``nan``, ``inf``, ``1e309``) counts as
    ``|Δs| = 1``, so the term is always in [0, 1]."""
    p, t = _finite01(predicted), _finite01(truth)
    if p is None or t is None:
        return 0.0
    return 1.0 - abs(p - t)


def _assign(preds: Sequence[float | None], truths: Sequence[float]) -> tuple[int, float]:
    """Best one-to-one matching of predicted to true intensities of one type.

    Returns ``(matches, sum of 1 - |Δs| over the matches)``: as many pairs as possible, then the
    smallest total ``|Δs|`` (exact: sorted, non-crossing dynamic programme). Predictions without
    a usable intensity match with ``|Δs| = 1``."""
    k = min(len(preds), len(truths))
    finite = sorted(p for p in preds if p is not None)
    gts = sorted(truths)
    f = min(len(finite), len(gts))
    a, b = (finite, gts) if len(finite) <= len(gts) else (gts, finite)
    best = [0.0] + [math.inf] * len(a)  # best[i]: least total |Δs| pairing a[:i] inside b[:j]
    for j, y in enumerate(b):
        for i in range(min(len(a), j + 1), 0, -1):
            cand = best[i - 1] + abs(a[i - 1] - y)
            if cand < best[i]:
                best[i] = cand
    return k, f - best[len(a)]


def degradation_score(
    predicted: Sequence[tuple[str, float | None]] | None,
    truth: Sequence[tuple[str, float]],
    mode: str = "matched",
) -> float:
    """r_deg of one sample from ``(name, intensity)`` lists.

    ``predicted`` is ``None`` when the completion has no (non-empty) TYPE block. Names are
    canonicalised (aliases, case, ``_``/``-``); predicted intensities are clamped to [0, 1] and a
    non-finite or missing one counts as ``|Δs| = 1``. Only the first :data:`MAX_TYPE_ITEMS`
    predicted items count. Ground-truth intensities must be numbers (clamped to [0, 1]).

    * ``matched`` (default): one-to-one matching by type (duplicates cannot match twice; among
      several candidates the closest intensities pair). A match earns ``1 - |Δs|``; every
      unmatched prediction and every missed ground truth costs 1; the sum is divided by the size
      of the union ``matches + unmatched + missed``. Range [-1, 1]; 1 only for the exact TYPE;
      ``none`` for a clean image scores 1; no TYPE block scores -1.
    * ``paper`` (Eq. 6): every predicted item earns ``1 - |Δs|`` against the ground-truth item of
      its type, or -1 when its type is not in the ground truth; summed (missed ground truths cost
      nothing, a repeated type earns again). Range [-n, n] for n <= 64 scored items; not clipped.
    * ``reference`` (the reference code's ``type_reward``): per predicted item whose type is in
      the ground truth ``1 + (0.5 - |Δs|)``, per other item -1, then -1 per ground-truth type
      never predicted; summed (a repeated type earns again; a type listed twice in the ground
      truth keeps its last intensity). Range [-(n + m), 1.5 n] for n <= 64 scored items and m
      ground-truth types; not clipped.
    """
    if mode not in DEGRADATION_MODES:
        raise ValueError(f"degradation_reward: unknown mode {mode!r}; use 'matched', 'paper' or 'reference'.")
    gt: list[tuple[str, float]] = []
    for name, s in truth:
        v = _finite01(s)
        if v is None:
            raise ValueError(f"degradation_score: ground-truth intensity of {name!r} must be a finite number, got {s!r}.")
        gt.append((_canon(name), v))
    pred = None if predicted is None else [
        (n if n == _UNPARSED else _canon(n), _finite01(s)) for n, s in list(predicted)[:MAX_TYPE_ITEMS]
    ]
    truth_by_name: dict[str, list[float]] = {}
    for name, v in gt:
        truth_by_name.setdefault(name, []).append(v)

    if mode == "paper":
        return float(
            sum(1.0 - min(_delta(s, t) for t in truth_by_name[n]) if n in truth_by_name else -1.0 for n, s in pred or [])
        )
    if mode == "reference":
        last = dict(gt)
        total, seen = 0.0, set()
        for n, s in pred or []:
            if n in last:
                total += 1.0 + (0.5 - _delta(s, last[n]))
                seen.add(n)
            else:
                total -= 1.0
        return total - sum(1.0 for n in last if n not in seen)

    if pred is None:
        return -1.0
    pred_by_name: dict[str, list[float | None]] = {}
    for n, s in pred:
        pred_by_name.setdefault(n, []).append(s)
    gained, matches, unmatched, missed = 0.0, 0, 0, 0
    for name in set(pred_by_name) | set(truth_by_name):
        ps, ts = pred_by_name.get(name, []), truth_by_name.get(name, [])
        k, gain = _assign(ps, ts)
        matches += k
        gained += gain
        unmatched += len(ps) - k
        missed += len(ts) - k
    union = matches + unmatched + missed
    if union == 0:
        return 1.0
    return max(-1.0, min(1.0, (gained - unmatched - missed) / union))


def _predicted_types(text: str) -> list[tuple[str, float | None]] | None:
    """``(name, intensity)`` items of the completion's TYPE block; ``None`` without a (non-empty) block.

    Only the block's first :data:`_MAX_TYPE_CHARS` characters are read (64 items fit many times),
    and runs of name characters are cut to their last :data:`_MAX_NAME_CHARS`."""
    block = parse_chain(text).type
    if block is None or not block.strip():
        return None
    block = _LONG_RUN_RE.sub(lambda m: m.group(0)[-_MAX_NAME_CHARS:], block[:_MAX_TYPE_CHARS])
    pairs = [(p.name, _finite01(p.intensity)) for p in parse_type(block) if p.name != NO_DAMAGE]
    if not pairs and not _NONE_RE.fullmatch(block):
        pairs = [(_UNPARSED, None)]
    return pairs[:MAX_TYPE_ITEMS]


def _truth_types(degradations: Any, solution: Any) -> list[tuple[str, float]] | None:
    """Ground-truth ``(name, intensity)`` from the ``degradations`` column, else from the TYPE block
    of ``solution``; ``None`` when neither is usable."""
    if degradations is not None:
        items: Any = degradations
        if isinstance(items, Mapping):
            names = _as_list(items.get("name")) if "name" in items else None
            if names is not None:  # a struct column as a dict of lists
                values = _as_list(items.get("intensity")) or []
                if len(values) != len(names):
                    return None
                items = [{"name": a, "intensity": b} for a, b in zip(names, values)]
            else:
                items = [items]
        else:
            items = _as_list(items)
        if items is None:
            return None
        pairs = []
        for it in items:
            if isinstance(it, Mapping):
                name, s = it.get("name"), it.get("intensity")
            elif isinstance(it, (list, tuple)) and len(it) == 2:
                name, s = it
            else:
                return None
            v = _finite01(s)
            if not isinstance(name, str) or not name.strip() or v is None:
                return None
            pairs.append((_canon(name), v))
        return pairs
    if not isinstance(solution, str) or not solution.strip():
        return None
    block = parse_chain(solution).type
    if block is None:
        return None
    pairs = []
    for p in parse_type(block):
        if p.name == NO_DAMAGE:
            continue
        v = _finite01(p.intensity)
        if v is None:
            return None
        pairs.append((p.name, v))
    if not pairs and not _NONE_RE.fullmatch(block):
        return None
    return pairs


def degradation_reward(completions: Sequence[Any], *, mode: str = "matched", **columns: Any) -> list[float | None]:
    """r_deg: how well ``<TYPE>`` names the injected degradations and their intensities.

    Ground truth from the ``degradations`` column (list of ``{name, intensity, ...}``), else the
    TYPE block of ``solution``; ``None`` when neither is usable. ``mode``: ``"matched"`` (default,
    range [-1, 1]), ``"paper"`` (Eq. 6) or ``"reference"`` — see :func:`degradation_score`.
    """
    if mode not in DEGRADATION_MODES:
        raise ValueError(f"degradation_reward: unknown mode {mode!r}; use 'matched', 'paper' or 'reference'.")
    n = len(completions)
    degs = _rows(columns, "degradations", n)
    sols = _rows(columns, "solution", n)
    out: list[float | None] = []
    for c, d, sol in zip(completions, degs, sols):
        truth = _truth_types(d, sol)
        if truth is None:
            out.append(None)
            continue
        out.append(float(degradation_score(_predicted_types(completion_text(c)), truth, mode)))
    return out


# ---------------------------------------------------------------- length (r_len)


class WordCounter:
    """Length in whitespace-separated words."""

    unit = "words"

    def __call__(self, text: str) -> int | None:
        return len(text.split())

    def __repr__(self) -> str:
        return "WordCounter()"


class TokenCounter:
    """Length in tokens of ``tokenizer``: an HF tokenizer (``encode``), a processor holding one
    (``.tokenizer``), a ``tokenizers.Tokenizer``, or any callable ``str -> list`` (or ``-> dict``
    with ``input_ids``, or ``-> int``). Built once; nothing is loaded per call. Special tokens are
    not counted. Returns ``None`` (and logs) if the tokenizer fails on a text."""

    unit = "tokens"

    def __init__(self, tokenizer: Any) -> None:
        if tokenizer is None:
            raise ValueError("length_reward: unit='tokens' needs tokenizer= (an HF tokenizer or a callable).")
        if not (hasattr(tokenizer, "encode") or hasattr(getattr(tokenizer, "tokenizer", None), "encode") or callable(tokenizer)):
            raise ValueError(
                f"length_reward: tokenizer of type {type(tokenizer).__name__} has no encode() and is not callable."
            )
        self.tokenizer = tokenizer
        self._failures = 0
        try:
            probe = self._count("a b")
        except Exception as exc:  # noqa: BLE001 - a broken tokenizer must fail here, not mid-training
            raise ValueError(f"length_reward: the tokenizer fails on a plain text ({exc!r}).") from None
        if not isinstance(probe, int) or probe < 0:
            raise ValueError(f"length_reward: the tokenizer gave {probe!r} for a plain text, not a length.")

    def _count(self, text: str) -> int:
        tok = self.tokenizer
        encode = getattr(tok, "encode", None)
        if encode is None:
            encode = getattr(getattr(tok, "tokenizer", None), "encode", None)
        if encode is not None:
            try:
                out = encode(text, add_special_tokens=False)
            except TypeError:
                out = encode(text)
        else:
            out = tok(text)
        if isinstance(out, bool):
            raise TypeError("tokenizer returned a bool")
        if isinstance(out, int):
            return out
        if isinstance(out, Mapping) or (hasattr(out, "keys") and hasattr(out, "__getitem__")):
            out = out["input_ids"]
        if hasattr(out, "ids"):  # tokenizers.Encoding
            out = out.ids
        if hasattr(out, "tolist"):
            out = out.tolist()
        out = list(out)
        if out and isinstance(out[0], (list, tuple)):  # a batch of one
            out = list(out[0])
        return len(out)

    def __call__(self, text: str) -> int | None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: tokenizers refuse them
            text = text.encode("utf-8", "replace").decode("utf-8")
        try:
            return self._count(text)
        except Exception as exc:  # noqa: BLE001 - model output must never crash training
            self._failures += 1
            if self._failures <= 3:
                log.warning("r_len: the tokenizer failed on a completion (%r); its r_len is None.", exc)
            return None

    def __getstate__(self) -> dict:
        return {"tokenizer": self.tokenizer, "_failures": 0}

    def __repr__(self) -> str:
        return f"TokenCounter({type(self.tokenizer).__name__})"


Counter = Callable[[str], "int | None"]


def make_counter(unit: str = "words", tokenizer: Any = None) -> Counter:
    """A length function, built once: :class:`WordCounter` or :class:`TokenCounter`."""
    if unit == "words":
        return WordCounter()
    if unit == "tokens":
        return TokenCounter(tokenizer)
    raise ValueError(f"length_reward: unit {unit!r}; use 'words' or 'tokens'.")


class _LengthCache:
    """Bounded memo of ground-truth lengths (a solution is scored once per generation)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.data: OrderedDict[tuple[str, str], int | None] = OrderedDict()

    def get(self, key: tuple[str, str], compute: Callable[[], int | None]) -> int | None:
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        value = compute()
        self.data[key] = value
        if len(self.data) > self.size:
            self.data.popitem(last=False)
        return value


def _scope_text(text: str, scope: str) -> str | None:
    """What r_len measures: the REASONING block or the whole text; ``None`` if missing or blank."""
    body = text if scope == "chain" else parse_chain(text).reasoning
    return body if body is not None and body.strip() else None


def _target(x: Any) -> float | None:
    """A usable target length: a finite number >= 1 (a length of less than one word or token is no target)."""
    v = _finite(x)
    return v if v is not None and v >= 1 else None


def length_reward(
    completions: Sequence[Any],
    *,
    unit: str = "words",
    tokenizer: Any = None,
    scope: str = "reasoning",
    clip: bool = True,
    counter: Counter | None = None,
    target_cache: _LengthCache | None = None,
    **columns: Any,
) -> list[float | None]:
    """r_len (Eq. 8): ``1 - |len(Y) - len(Y_GT)| / len(Y_GT)``.

    * ``scope="reasoning"`` (default) measures the REASONING block; ``"chain"`` the whole
      completion against the whole ``solution`` (the reference code's choice).
    * ``unit="words"`` (whitespace-separated) or ``"tokens"`` with ``tokenizer=`` (see
      :class:`TokenCounter`); ``counter=`` passes a ready length function instead (what
      :func:`make_length_reward` does, so nothing is rebuilt per call).
    * Target ``len(Y_GT)``: ``target_words`` for words on the reasoning, else measured on
      ``solution`` with the same unit and scope; ``None`` when there is no target (a target
      must be a finite number >= 1; ``target_words`` of 0, ``nan`` or text falls back to ``solution``).
    * A completion with nothing to measure (no REASONING block, or a blank one) scores -1, so
      leaving the block out is never better than writing one (Eq. 8 alone would give it 0).
    * ``clip=True`` (default): clipped to [-1, 1]. ``clip=False``: the raw value in
      ``[1 - len(Y) / len(Y_GT), 1]``, below -1 once the text is over twice the target.
    """
    if scope not in ("reasoning", "chain"):
        raise ValueError(f"length_reward: scope {scope!r}; use 'reasoning' or 'chain'.")
    count = counter if counter is not None else make_counter(unit, tokenizer)
    unit = getattr(count, "unit", unit)
    n = len(completions)
    targets = _rows(columns, "target_words", n)
    sols = _rows(columns, "solution", n)
    out: list[float | None] = []
    for c, tw, sol in zip(completions, targets, sols):
        target = _target(tw) if unit == "words" and scope == "reasoning" else None
        if target is None and isinstance(sol, str) and sol.strip():
            body = _scope_text(sol, scope)
            if body is not None:
                length = target_cache.get((scope, sol), lambda: count(body)) if target_cache is not None else count(body)
                target = _target(length)
        if target is None:
            out.append(None)
            continue
        body = _scope_text(completion_text(c), scope)
        if body is None:
            out.append(-1.0)
            continue
        length = count(body)
        if length is None:
            out.append(None)
            continue
        r = 1.0 - abs(float(length) - target) / target
        out.append(max(-1.0, min(1.0, r)) if clip else min(r, 1.0))
    return out


# ---------------------------------------------------------------- named rewards and the composite


class Reward:
    """A reward function with fixed options and a name: callable with TRL's signature, logged by
    TRL under ``name`` (``rewards/<name>/mean``), and picklable (TRL's async rollout workers pickle
    reward functions; closures cannot be pickled)."""

    def __init__(self, name: str, func: Callable[..., list[float | None]], /, **options: Any) -> None:
        self.__name__ = name
        self.__qualname__ = name
        self.func = func
        self.options = options

    def __call__(self, completions: Sequence[Any], **columns: Any) -> list[float | None]:
        return self.func(completions, **{**columns, **self.options})

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items() if k != "target_cache")
        return f"Reward({self.__name__!r}: {self.func.__name__}({opts}))"


def make_length_reward(
    tokenizer: Any = None,
    *,
    unit: str | None = None,
    scope: str = "reasoning",
    clip: bool = True,
    name: str = "r_len",
) -> Reward:
    """r_len with its length function built once: tokens of ``tokenizer`` when one is given (the
    reference code loaded a tokenizer from a placeholder path on every call), else words.
    Ground-truth lengths are memoised (G generations share one solution)."""
    unit = unit or ("tokens" if tokenizer is not None else "words")
    if scope not in ("reasoning", "chain"):
        raise ValueError(f"length_reward: scope {scope!r}; use 'reasoning' or 'chain'.")
    return Reward(
        name, length_reward, counter=make_counter(unit, tokenizer), scope=scope, clip=bool(clip), target_cache=_LengthCache()
    )


REWARDS: dict[str, Callable[..., list[float | None]]] = {
    "degradation": degradation_reward,
    "length": length_reward,
    "accuracy": accuracy_reward,
    "format": format_reward,
}
"""Reward functions by name (the keys of :func:`build_rewards`' weights)."""

LOG_NAMES = {"degradation": "r_deg", "length": "r_len", "accuracy": "accuracy", "format": "format"}
"""The name TRL logs each reward under."""

DEFAULT_WEIGHTS = {"degradation": 1.0, "length": 1.0, "accuracy": 1.0, "format": 1.0}
"""The paper's R = r_deg + r_len, plus the reference run's accuracy and format, unweighted."""

_KEYS = {**{k: k for k in REWARDS}, **{v: k for k, v in LOG_NAMES.items()}}


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

    ``weights`` maps ``degradation``/``r_deg``, ``length``/``r_len``, ``accuracy``, ``format`` to
    a weight; a reward left out or weighted 0 is dropped (``{"degradation": 1, "length": 1}`` is
    the paper's R). Default: all four, weight 1. Functions come in the order r_deg, r_len,
    accuracy, format. ``length_unit`` defaults to tokens when ``tokenizer`` is given, else words.
    """
    given = dict(DEFAULT_WEIGHTS if weights is None else weights)
    unknown = sorted(k for k in given if k not in _KEYS)
    if unknown:
        raise ValueError(f"build_rewards: unknown reward(s) {unknown}; choose from {sorted(REWARDS)}.")
    w: dict[str, float] = {}
    for k, v in given.items():
        try:
            value = float(v)
        except (TypeError, ValueError):
            value = math.nan
        if not math.isfinite(value):
            raise ValueError(f"build_rewards: weight of {k!r} must be a finite number, got {v!r}.")
        key = _KEYS[k]
        if key in w:
            raise ValueError(f"build_rewards: {key!r} is weighted twice (as {k!r} too).")
        w[key] = value
    if degradation_mode not in DEGRADATION_MODES:
        raise ValueError(f"build_rewards: unknown degradation_mode {degradation_mode!r}; use {list(DEGRADATION_MODES)}.")
    funcs: list[Reward] = []
    ws: list[float] = []
    for key in ("degradation", "length", "accuracy", "format"):
        weight = w.get(key, 0.0)
        if weight == 0.0:
            continue
        name = LOG_NAMES[key]
        if key == "degradation":
            f = Reward(name, degradation_reward, mode=degradation_mode)
        elif key == "length":
            f = make_length_reward(tokenizer, unit=length_unit, scope=length_scope, clip=length_clip, name=name)
        elif key == "accuracy":
            f = Reward(name, accuracy_reward)
        else:
            f = Reward(name, format_reward, partial=bool(format_partial))
        funcs.append(f)
        ws.append(weight)
    if not funcs:
        raise ValueError("build_rewards: every weight is 0; give at least one reward a weight.")
    return funcs, ws


def combined_reward(
    completions: Sequence[Any],
    *,
    weights: Mapping[str, float] | None = None,
    degradation_mode: str = "matched",
    length_unit: str | None = None,
    length_scope: str = "reasoning",
    length_clip: bool = True,
    tokenizer: Any = None,
    format_partial: bool = False,
    **columns: Any,
) -> list[float]:
    """The weighted sum of :func:`build_rewards`' rewards (a ``None`` part counts 0, as TRL's
    ``nansum`` does), e.g. for evaluation or as one TRL reward."""
    funcs, ws = build_rewards(
        weights,
        degradation_mode=degradation_mode,
        length_unit=length_unit,
        length_scope=length_scope,
        length_clip=length_clip,
        tokenizer=tokenizer,
        format_partial=format_partial,
    )
    total = [0.0] * len(completions)
    for f, wt in zip(funcs, ws):
        for i, v in enumerate(f(completions, **columns)):
            total[i] += wt * (v if v is not None else 0.0)
    return total
