"""r_deg: how well ``<TYPE>`` names the injected degradations and their intensities.

Three modes: ``matched`` (default, one-to-one matching, range [-1, 1]), ``paper`` (Eq. 6) and
``reference`` (the reference code's ``type_reward``); see :func:`degradation_score`. The TYPE
block is read by :func:`factory.chains.format.read_type` (bounded for model output).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from factory.chains.format import read_type
from factory.degrade.registry import canonical_name, normalize_name
from factory.errors import ConfigError

from .base import Reward
from .inputs import as_list, canonical_nonfinite, completion_text, finite01, rows

__all__ = ["DEGRADATION_MODES", "MAX_TYPE_ITEMS", "degradation_reward", "degradation_score", "pair_term"]

MAX_TYPE_ITEMS = 64
"""Only the first this many ``name(s)`` items of a TYPE block are scored (bounds `paper`/`reference`)."""

MAX_TYPE_CHARS = 16384
"""Only this many characters of a predicted TYPE block are parsed (bounds the work on junk)."""

DEGRADATION_MODES = ("matched", "paper", "reference")

_UNPARSED = "<unparsed TYPE>"
"""Stands for a TYPE block that is neither ``none`` nor any ``name(s)`` item: one wrong claim."""


def check_mode(mode: str, where: str = "degradation_reward") -> None:
    if mode not in DEGRADATION_MODES:
        raise ValueError(f"{where}: unknown mode {mode!r}; use 'matched', 'paper' or 'reference'.")


def _canon(name: Any) -> str:
    text = str(name)
    return canonical_name(text) or normalize_name(text)


def _delta(p: float | None, t: float) -> float:
    return 1.0 if p is None else abs(p - t)


def pair_term(predicted: float, truth: float) -> float:
    """The paper's per-pair term for a matching type: ``1 - |s_pred - s_gt|``.

    Intensities are clamped to [0, 1]; a non-finite one (``nan``, ``inf``, ``1e309``) counts as
    ``|Δs| = 1``, so the term is always in [0, 1]."""
    p, t = finite01(predicted), finite01(truth)
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
    check_mode(mode)
    gt: list[tuple[str, float]] = []
    for name, s in truth:
        v = finite01(s)
        if v is None:
            raise ValueError(
                f"degradation_score: ground-truth intensity of {name!r} must be a finite number, got {s!r}."
            )
        gt.append((_canon(name), v))
    pred = None if predicted is None else [
        (n if n == _UNPARSED else _canon(n), finite01(s)) for n, s in list(predicted)[:MAX_TYPE_ITEMS]
    ]
    truth_by_name: dict[str, list[float]] = {}
    for name, v in gt:
        truth_by_name.setdefault(name, []).append(v)

    if mode == "paper":
        return float(
            sum(
                1.0 - min(_delta(s, t) for t in truth_by_name[n]) if n in truth_by_name else -1.0
                for n, s in pred or []
            )
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

    Only the block's first :data:`MAX_TYPE_CHARS` characters are read (64 items fit many times),
    and runs of name characters are cut (:func:`factory.chains.format.read_type`). Every spelling of
    a non-finite intensity (``inf``, ``-inf``, ``Infinity``, ``nan``, ``1e309``) is one case: the
    type is named, the intensity unusable (:func:`~.inputs.canonical_nonfinite`)."""
    claims = read_type(canonical_nonfinite(text), max_chars=MAX_TYPE_CHARS, max_items=MAX_TYPE_ITEMS)
    if claims is None:
        return None
    pairs = [(name, finite01(s)) for name, s in claims.pairs]
    if not pairs and not claims.says_none:
        pairs = [(_UNPARSED, None)]
    return pairs


def _truth_types(degradations: Any, solution: Any) -> list[tuple[str, float]] | None:
    """Ground-truth ``(name, intensity)`` from the ``degradations`` column, else from the TYPE block
    of ``solution``; ``None`` when neither is usable."""
    if degradations is not None:
        return _column_types(degradations)
    if not isinstance(solution, str) or not solution.strip():
        return None
    claims = read_type(solution)
    if claims is None or (not claims.pairs and not claims.says_none):
        return None
    pairs = []
    for name, s in claims.pairs:
        v = finite01(s)
        if v is None:
            return None
        pairs.append((name, v))
    return pairs


def _column_types(degradations: Any) -> list[tuple[str, float]] | None:
    """``(name, intensity)`` of a ``degradations`` cell: a list of ``{name, intensity}`` structs
    or pairs, one struct, or a struct column as a dict of lists; ``None`` when unusable."""
    items: Any = degradations
    if isinstance(items, Mapping):
        names = as_list(items.get("name")) if "name" in items else None
        if names is not None:  # a struct column as a dict of lists
            values = as_list(items.get("intensity")) or []
            if len(values) != len(names):
                return None
            items = [{"name": a, "intensity": b} for a, b in zip(names, values, strict=True)]
        else:
            items = [items]
    else:
        items = as_list(items)
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
        v = finite01(s)
        if not isinstance(name, str) or not name.strip() or v is None:
            return None
        pairs.append((_canon(name), v))
    return pairs


def degradation_reward(completions: Sequence[Any], *, mode: str = "matched", **columns: Any) -> list[float | None]:
    """r_deg: how well ``<TYPE>`` names the injected degradations and their intensities.

    Ground truth from the ``degradations`` column (list of ``{name, intensity, ...}``), else the
    TYPE block of ``solution``; ``None`` when neither is usable. ``mode``: ``"matched"`` (default,
    range [-1, 1]), ``"paper"`` (Eq. 6) or ``"reference"`` — see :func:`degradation_score`.
    """
    check_mode(mode)
    n = len(completions)
    degs = rows(columns, "degradations", n)
    sols = rows(columns, "solution", n)
    out: list[float | None] = []
    for c, d, sol in zip(completions, degs, sols, strict=True):
        truth = _truth_types(d, sol)
        if truth is None:
            out.append(None)
            continue
        out.append(float(degradation_score(_predicted_types(completion_text(c)), truth, mode)))
    return out


def check(*, degradation_mode: str = "matched", **_: Any) -> None:
    """The registry's option check (run by ``build_rewards`` whatever the weight)."""
    if degradation_mode not in DEGRADATION_MODES:
        raise ConfigError(
            "degradation_mode",
            f"unknown mode {degradation_mode!r}",
            value=degradation_mode,
            fix=f"use one of {list(DEGRADATION_MODES)}",
        )


def build(name: str, *, degradation_mode: str = "matched", **_: Any) -> Reward:
    """The registry's builder: :func:`degradation_reward` with ``build_rewards(degradation_mode=...)``."""
    return Reward(name, degradation_reward, mode=degradation_mode)
