"""Robustness evaluation: a benchmark at clean and degraded levels, any model, perception scores.

For every question of a benchmark (:mod:`trainers.eval.benchmarks`) and every level (default clean,
0.23, 0.45, 0.9: the paper's clean / 25 / 50 / 100 %), the image is degraded with the factory's
``eval`` recipe: one degradation, its stage drawn with equal weights, seeded by ``(seed, question
id)``. The degradation and its random draws are the same at every level (nested renders), so the
levels differ in intensity alone. The model answers, and each answer is scored
(:mod:`trainers.eval.scoring`).

The package:

* :mod:`.config`: :class:`EvalConfig`, the levels;
* :mod:`.models`: the model adapters (transformers, OpenAI-compatible endpoint, any object with
  ``generate``);
* :mod:`.scoring`: per-answer, per-level and per-run scores, the scorers (:func:`get_scorer`);
* :mod:`.judge`: LLM judges (R-Bench VQA / CAP / MCQ, MM-Vet) through the chat backend;
* :mod:`.runner`: :class:`Runner` and :func:`evaluate`;
* :mod:`.reports`: ``summary.md/.csv/.json``, ``breakdown.csv``, plots, :func:`compare`;
* :mod:`.benchmarks`: the benchmark presets and loading (:mod:`.tsv`: VLMEvalKit TSV files);
* :mod:`.predegraded`: benchmarks published already degraded (MMD-Bench, R-Bench), shown as
  published at each level with no degradation of ours.

Outputs in the run folder::

    run.json                     what was evaluated (model, benchmark, levels, seed, prompt)
    predictions.jsonl            one row per (question, level): recipe, output, scores (resumable)
    errors.jsonl                 questions that failed this run (bad image, failed request)
    summary.md / summary.csv     the table per level; summary.json (the same, machine-readable)
    breakdown.csv                accuracy and type recall per degradation and per stage and level
    accuracy_vs_intensity.png    accuracy against intensity

A re-run with the same folder skips every (question, level) already in ``predictions.jsonl``.
:func:`compare` puts several runs in one table and plot. ``trainers.evaluate`` and
``trainers.benchmarks`` re-export these names (the former module paths).
"""

from __future__ import annotations

from . import predegraded  # noqa: F401  (registers the rbench and mmdbench families)
from .config import DEFAULT_LEVELS, LEVEL_NAMES, PROMPT_KINDS, PROMPTS, EvalConfig, PromptKind, level_name, parse_levels
from .judge import JUDGES, Judge, JudgeSpec
from .models import (
    EndpointModel,
    EndpointSession,
    Generation,
    Model,
    ObjectModel,
    TransformersModel,
    as_model,
    open_model,
)
from .reports import compare, load_run, plot_accuracy, summary_markdown, write_reports
from .runner import EvalRun, Runner, degraded_image, eval_recipe, evaluate, make_prompt
from .scoring import UNPARSED, JudgedScorer, get_scorer, level_scores, predicted_types, score_output, summarize

__all__ = [
    "DEFAULT_LEVELS",
    "JUDGES",
    "LEVEL_NAMES",
    "PROMPTS",
    "PROMPT_KINDS",
    "UNPARSED",
    "EndpointModel",
    "EndpointSession",
    "EvalConfig",
    "EvalRun",
    "Generation",
    "Judge",
    "JudgeSpec",
    "JudgedScorer",
    "Model",
    "ObjectModel",
    "PromptKind",
    "Runner",
    "TransformersModel",
    "as_model",
    "compare",
    "degraded_image",
    "eval_recipe",
    "evaluate",
    "get_scorer",
    "level_name",
    "level_scores",
    "load_run",
    "make_prompt",
    "open_model",
    "parse_levels",
    "plot_accuracy",
    "predicted_types",
    "score_output",
    "summarize",
    "summary_markdown",
    "write_reports",
]
