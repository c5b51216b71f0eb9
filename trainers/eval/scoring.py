"""Scores: of one answer (stored in ``predictions.jsonl``), of one level, and of a whole run.

* accuracy with the shared answer matching (:func:`factory.chains.answers.score_answer`, the
  rewards' too) and the drop from clean;
* for models that write a ``<TYPE>`` block: type precision / recall / F1 of the named
  degradations against the injected one (``none`` on the clean image counts as a label), and the
  mean absolute error of the stated intensity of a correctly named degradation;
* format validity (the five blocks, strict), mean output tokens and mean reasoning words;
* the same per degradation and per stage, and per task (``task``: MCQ / VQA / CAP for R-Bench)
  when the rows carry one.

Scorers (:func:`get_scorer`): ``match`` is :func:`score_output` with the option labels of the
run's prompt kind (a bare number is an index under ``robust`` / ``reference``, a value under
``plain``); ``judge:<name>`` is an LLM judge (:mod:`trainers.eval.judge`: R-Bench VQA / CAP /
MCQ, MM-Vet). Every scorer is called as ``scorer(text, sample, level, recipe) -> dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from factory.chains.answers import normalize_choice, score_answer
from factory.chains.format import NO_DAMAGE, parse_chain, read_type

from .config import PROMPTS, level_name

__all__ = [
    "MATCH",
    "UNPARSED",
    "JudgedScorer",
    "get_scorer",
    "level_scores",
    "predicted_types",
    "prompt_labels",
    "score_output",
    "score_rows",
    "summarize",
]

MATCH = "match"
"""The scorer of multiple-choice and short answers: the shared answer matching."""
Scorer = Callable[..., dict[str, Any]]

UNPARSED = "<unparsed>"
"""The predicted type of a TYPE block that names nothing recognisable (counts as a false positive)."""


def predicted_types(text: str) -> tuple[bool, list[tuple[str, float | None]]]:
    """``(has TYPE block, [(name, intensity), ...])``; a block that only says ``none`` gives
    ``[("none", None)]``, one naming nothing recognisable ``[(UNPARSED, None)]``
    (:func:`factory.chains.format.read_type`)."""
    claims = read_type(text)
    if claims is None:
        return False, []
    if claims.pairs:
        return True, list(claims.pairs)
    if claims.mentions_none:
        return True, [(NO_DAMAGE, None)]
    return True, [(UNPARSED, None)]


def score_output(text: str, sample: Any, level: float, recipe: Any, labels: str = "index") -> dict[str, Any]:
    """The per-answer scores stored in ``predictions.jsonl``. ``labels``: how the prompt labelled
    the options (``index`` or ``letter``, :data:`factory.chains.answers.LABELS`)."""
    parsed = parse_chain(text)
    pred = parsed.answer if parsed.answer is not None and parsed.answer.strip() else text
    has_type, types = predicted_types(text)
    truth = recipe.steps[0] if recipe is not None else None
    return {
        "pred": pred.strip()[:500],
        "pred_index": normalize_choice(pred, sample.choices, labels) if sample.choices else None,
        "correct": score_answer(pred, sample.answer, sample.choices, sample.direct_answers or None, labels),
        "has_type": has_type,
        "types": [[n, s] for n, s in types],
        "format_ok": parsed.is_complete,
        "format_problems": parsed.problems(),
        "reasoning_words": len(parsed.reasoning.split()) if parsed.reasoning is not None else None,
        "degradation": truth.name if truth else None,
        "stage": truth.stage if truth else None,
    }


def prompt_labels(prompt: str | None) -> str:
    """The option labels of a prompt kind (``index`` for an unknown one: the chain format)."""
    kind = PROMPTS.get(prompt or "")
    return kind.labels if kind is not None else "index"


def get_scorer(name: str, cfg: Any = None) -> Scorer:
    """The scorer named ``name`` for the run ``cfg`` (an :class:`EvalConfig`; ``None``: defaults):

    * ``match``: :func:`score_output` with the option labels of ``cfg.prompt``;
    * ``judge:<name>``: an LLM judge of :data:`trainers.eval.judge.JUDGES` (``rbench-vqa``,
      ``rbench-cap``, ``rbench-mcq``, ``mmvet``) through the chat backend ``cfg.judge_backend``,
      model ``cfg.judge_model`` (default: the judge's own) at ``cfg.judge_endpoint``, replies
      cached in ``<out>/judge-cache``.

    ``KeyError`` for an unknown name; :class:`factory.errors.ConfigError` (``judge_model``) for a
    judge that cannot be used (no key)."""
    labels = prompt_labels(getattr(cfg, "prompt", None))
    if name == MATCH:
        return partial(score_output, labels=labels)
    if name.startswith("judge:"):
        from .judge import JUDGES, Judge

        spec = JUDGES.get(name.split(":", 1)[1])
        if spec is None:
            raise KeyError(name)
        out = getattr(cfg, "out", None)
        judge = Judge(
            spec,
            model=getattr(cfg, "judge_model", None),
            base_url=getattr(cfg, "judge_endpoint", None),
            backend=getattr(cfg, "judge_backend", None) or "openai",
            concurrency=getattr(cfg, "judge_concurrency", None) or 8,
            cache_dir=Path(out) / "judge-cache" if out else None,
            prompts_dir=getattr(cfg, "prompts_dir", None),
        )
        return JudgedScorer(judge, labels)
    raise KeyError(name)


class JudgedScorer:
    """A :class:`trainers.eval.judge.Judge` as a scorer: ``scorer(text, sample, level, recipe) ->
    dict``, the fields of :func:`score_output` with ``correct`` the judged score in [0, 1],
    ``task`` (``VQA``, ``CAP``, ...) and ``judge`` (name, model, the score of each call);
    :meth:`score_many` judges many answers concurrently; :meth:`close` releases the judge."""

    def __init__(self, judge: Any, labels: str = "index"):
        self.judge = judge
        self.labels = labels

    def __repr__(self) -> str:
        return f"JudgedScorer({self.judge!r})"

    def score_many(self, items: Sequence[tuple[str, Any, float, Any]]) -> list[dict[str, Any] | Exception]:
        """Rows for many ``(text, sample, level, recipe)`` answers (or the exception that failed one)."""
        from .judge import judge_answer_text

        judged = self.judge.judge_many([(t, s) for t, s, _, _ in items])
        out: list[dict[str, Any] | Exception] = []
        for (text, sample, level, recipe), res in zip(items, judged, strict=True):
            if isinstance(res, Exception):
                out.append(res)
                continue
            score, calls = res
            row = score_output(text, sample, level, recipe, labels=self.labels)
            spec = self.judge.spec
            row.update(pred=judge_answer_text(text)[:500], pred_index=None, correct=score, task=spec.task,
                       judge={"name": spec.name, "model": self.judge.model, "scores": calls})
            out.append(row)
        return out

    def __call__(self, text: str, sample: Any, level: float, recipe: Any) -> dict[str, Any]:
        (row,) = self.score_many([(text, sample, level, recipe)])
        if isinstance(row, Exception):
            raise row
        return row

    def close(self) -> None:
        self.judge.close()


def score_rows(
    items: Sequence[tuple[str, Any, float, Any]], scorer_for: Callable[[Any], Scorer]
) -> list[dict[str, Any] | Exception]:
    """Score many ``(text, sample, level, recipe)`` answers, each with ``scorer_for(sample)``: the
    answers of a scorer with ``score_many`` (a judge) are scored together, concurrently; the
    others one by one. One row dict, or the exception that failed it, per item, in order."""
    out: list[dict[str, Any] | Exception | None] = [None] * len(items)
    groups: dict[int, tuple[Scorer, list[int]]] = {}
    for k, item in enumerate(items):
        scorer = scorer_for(item[1])
        groups.setdefault(id(scorer), (scorer, []))[1].append(k)
    for scorer, ks in groups.values():
        many = getattr(scorer, "score_many", None)
        if callable(many):
            try:
                results = many([items[k] for k in ks])
            except Exception as exc:  # noqa: BLE001 - the whole group failed: every answer of it
                results = [exc] * len(ks)
            for k, r in zip(ks, results, strict=True):
                out[k] = r
            continue
        for k in ks:
            try:
                out[k] = scorer(*items[k])
            except Exception as exc:  # noqa: BLE001 - an output the scorer cannot read fails that answer only
                out[k] = exc
    return out  # type: ignore[return-value]


def mean(xs: Iterable[float | None]) -> float | None:
    """The mean of the values that are not ``None`` (``None`` when there are none)."""
    vals = [float(x) for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def _prf(rows: Sequence[Mapping[str, Any]]) -> tuple[float | None, float | None, float | None]:
    tp = fp = fn = 0
    for r in rows:
        truth = {r["degradation"] or NO_DAMAGE}
        pred = {n for n, _ in r["types"]}
        tp += len(pred & truth)
        fp += len(pred - truth)
        fn += len(truth - pred)
    p = tp / (tp + fp) if tp + fp else None
    rc = tp / (tp + fn) if tp + fn else None
    if p is None or rc is None:
        return p, rc, None
    return p, rc, (2 * p * rc / (p + rc) if p + rc > 0 else 0.0)


def _intensity_errors(rows: Sequence[Mapping[str, Any]]) -> list[float]:
    errs = []
    for r in rows:
        if not r["degradation"] or not r["recipe"]:
            continue
        truth = float(r["recipe"]["degradations"][0]["intensity"])
        named = [s for n, s in r["types"] if n == r["degradation"] and s is not None]
        if named:
            errs.append(min(abs(min(1.0, max(0.0, s)) - truth) for s in named))
    return errs


def level_scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Scores of the rows of one level (see the module docstring)."""
    typed = any(r["has_type"] for r in rows)
    p, rc, f1 = _prf(rows) if typed else (None, None, None)
    ie = _intensity_errors(rows) if typed else []
    return {
        "n": len(rows),
        "accuracy": mean(r["correct"] for r in rows),
        "type_precision": p,
        "type_recall": rc,
        "type_f1": f1,
        "intensity_mae": sum(ie) / len(ie) if ie else None,
        "format_valid": mean(float(r["format_ok"]) for r in rows),
        "output_tokens": mean(r.get("output_tokens") for r in rows),
        "reasoning_words": mean(r.get("reasoning_words") for r in rows),
    }


def summarize(rows: Sequence[Mapping[str, Any]], label: str = "") -> dict[str, Any]:
    """Per-level scores, drops from clean, and the per-degradation and per-stage breakdowns."""
    by_level: dict[float, list] = {}
    for r in rows:
        by_level.setdefault(round(float(r["level"]), 2), []).append(r)
    levels = [{"level": lv, "name": level_name(lv), **level_scores(by_level[lv])} for lv in sorted(by_level)]
    clean_by_id = {r["id"]: float(r["correct"]) for r in by_level.get(0.0, [])}
    for sc in levels:
        # over the questions answered both clean and at this level (an interrupted run may hold
        # more clean answers than degraded ones)
        pairs = [(clean_by_id[r["id"]], float(r["correct"])) for r in by_level[sc["level"]] if r["id"] in clean_by_id]
        sc["drop"] = sum(c - x for c, x in pairs) / len(pairs) if pairs else None
        sc["drop_n"] = len(pairs)
    breakdown = []
    tasks = any(r.get("task") for r in rows)
    for key in ("degradation", "stage", "task"):
        if key == "task" and not tasks:
            continue
        groups: dict[tuple[str, float], list] = {}
        for r in rows:
            name = _task(r) if key == "task" else r[key]
            if name:
                groups.setdefault((name, round(float(r["level"]), 2)), []).append(r)
        for (name, lv), rs in sorted(groups.items()):
            typed = any(r["has_type"] for r in rs)
            seen = mean(float(r["degradation"] in {n for n, _ in r["types"]}) for r in rs) if typed else None
            breakdown.append(
                {"by": key, "name": name, "level": lv, "n": len(rs), "accuracy": mean(r["correct"] for r in rs),
                 "type_recall": seen}
            )
    return {"label": label, "levels": levels, "breakdown": breakdown, "rows": len(rows)}


def _task(row: Mapping[str, Any]) -> str:
    """A row's task: as its scorer recorded it (``VQA``, ``CAP``, ``mmvet``), else ``MCQ`` for a
    multiple-choice question and ``open`` for any other (R-Bench: the MCQ rows are matched)."""
    return str(row.get("task") or ("MCQ" if row.get("choices") else "open"))
