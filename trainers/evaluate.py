"""Robustness evaluation: a benchmark at clean and degraded levels, any model, perception scores.

For every question of a benchmark (:mod:`trainers.benchmarks`) and every level (default clean,
0.23, 0.45, 0.9: the paper's clean / 25 / 50 / 100 %), the image is degraded with the factory's
``eval`` recipe: one degradation, its stage drawn with equal weights, seeded by ``(seed, question
id)``. The degradation and its random draws are the same at every level (nested renders), so the
levels differ in intensity alone. The model answers, and each answer is scored:

* accuracy with the rewards' answer matching (:func:`trainers.rewards.score_answer`) and the drop
  from clean;
* for models that write a ``<TYPE>`` block: type precision / recall / F1 of the named
  degradations against the injected one (``none`` on the clean image counts as a label), and the
  mean absolute error of the stated intensity of a correctly named degradation;
* format validity (the five blocks, strict), mean output tokens and mean reasoning words;
* the same per degradation and per stage.

Outputs in the run folder::

    run.json                     what was evaluated (model, benchmark, levels, seed, prompt)
    predictions.jsonl            one row per (question, level): recipe, output, scores (resumable)
    errors.jsonl                 questions that failed this run (bad image, failed request)
    summary.md / summary.csv     the table per level; summary.json (the same, machine-readable)
    breakdown.csv                accuracy and type recall per degradation and per stage and level
    accuracy_vs_intensity.png    accuracy against intensity

A re-run with the same folder skips every (question, level) already in ``predictions.jsonl``.
:func:`compare` puts several runs in one table and plot.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Protocol, Sequence

import numpy as np

from factory.chains.format import NO_DAMAGE, parse_chain, parse_type
from factory.degrade import EVAL_LEVELS

log = logging.getLogger("robust_r1.evaluate")

PROMPT_KINDS = ("robust", "plain")
DEFAULT_LEVELS: tuple[float, ...] = (0.0, *EVAL_LEVELS)
LEVEL_NAMES = {0.0: "clean", 0.23: "25%", 0.45: "50%", 0.9: "100%"}
UNPARSED = "<unparsed>"
"""The predicted type of a TYPE block that names nothing recognisable (counts as a false positive)."""
_RUN_KEYS = ("model", "endpoint", "benchmark", "prompt", "seed", "only", "max_new_tokens", "max_pixels")
"""Settings a resumed run must share with the run that wrote the folder."""


# ---------------------------------------------------------------- configuration


@dataclass
class EvalConfig:
    """One evaluation run. Every field has a documented default."""

    model: str
    """A local model folder, a Hub id, a LoRA adapter folder, ``tiny`` (the test model), or with
    ``endpoint`` the model name the server serves."""
    out: str = "eval-output"
    benchmark: str = "demo"
    """A preset (``demo, mmstar, realworldqa, mmbench, mmmb, aokvqa``), a Hub id or a local file/folder."""
    split: str | None = None
    columns: str | dict[str, str] | None = None
    """Column mapping for a non-preset benchmark: ``image=img,question=q,choices=opts,answer=label``."""
    options: str | None = None
    """Options layout override: ``list``, ``columns[:A|B|C|D]`` or ``inline``."""
    answer_format: str | None = None
    """Answer format override: ``auto``, ``index``, ``letter`` or ``text``."""
    config_name: str | None = None
    """Hub configuration of the benchmark dataset."""
    endpoint: str | None = None
    """Base URL of an OpenAI-compatible server (``http://host:8000/v1``); key from OPENAI_API_KEY."""
    prompt: str = "robust"
    """``robust``: the Robust-R1 instruction (TYPE … ANSWER); ``plain``: answer with the option."""
    prompts_dir: str | None = None
    levels: tuple[float, ...] = DEFAULT_LEVELS
    """Intensities; 0 is the clean image."""
    seed: int = 0
    only: tuple[str, ...] | None = None
    """Draw the degradation from these names only (default: all 16)."""
    limit: int | None = None
    batch_size: int = 8
    """Questions per generation batch (transformers)."""
    concurrency: int = 8
    """Requests in flight (endpoint)."""
    max_new_tokens: int = 1024
    max_pixels: int | None = None
    """Image budget for transformers models (``None``: the model's saved training budget, else 448²);
    endpoints get the image with its longer side <= 1024."""
    backend: str = "auto"
    name: str | None = None
    """Label of the run in tables and plots (default: the model's name)."""

    def __post_init__(self) -> None:
        if isinstance(self.levels, str):
            self.levels = parse_levels(self.levels)
        levels = [float(x) for x in self.levels]
        odd = [x for x in levels if x == x and abs(round(x, 2) - x) > 1e-9]
        if odd:
            raise ValueError(f"--levels {odd[0]!r}: intensities have two decimals (the engine rounds them); use e.g. 0.23.")
        self.levels = tuple(sorted({round(x, 2) for x in levels}))
        if isinstance(self.only, str):
            self.only = tuple(x.strip() for x in self.only.split(",") if x.strip())
        elif self.only is not None:
            self.only = tuple(self.only)

    def validate(self) -> None:
        from factory.degrade import check_intensity, check_seed, get

        if not self.model:
            raise ValueError("eval: name a model (a folder, a Hub id, an adapter, or the served name with --endpoint).")
        if self.prompt not in PROMPT_KINDS:
            raise ValueError(f"--prompt {self.prompt!r}: use robust or plain.")
        if not self.levels:
            raise ValueError("--levels: give at least one intensity (e.g. clean,0.23,0.45,0.9).")
        for x in self.levels:
            check_intensity(x, "--levels")
        check_seed(self.seed, "--seed")
        for n in self.only or ():
            get(n)  # names the unknown degradation
        for what, v in (("--batch-size", self.batch_size), ("--concurrency", self.concurrency), ("--max-new-tokens", self.max_new_tokens)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{what} must be a number >= 1, got {v!r}.")
        if self.limit is not None and (isinstance(self.limit, bool) or self.limit < 0):
            raise ValueError(f"--limit must be a number >= 0, got {self.limit!r}.")

    @property
    def label(self) -> str:
        return self.name or Path(self.model.rstrip("/")).name or self.model

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["levels"] = list(self.levels)
        d["only"] = list(self.only) if self.only else None
        return d


def parse_levels(text: str | Iterable[Any]) -> tuple[float, ...]:
    """``"clean,0.23,0.45,0.9"`` (``clean`` = 0; ``25%`` = 0.23, ``50%`` = 0.45, ``100%`` = 0.9)."""
    names = {v: k for k, v in LEVEL_NAMES.items()}
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        s = str(item).strip().lower()
        if not s:
            continue
        if s in names:
            out.append(names[s])
            continue
        try:
            out.append(float(s))
        except ValueError:
            raise ValueError(f"--levels {item!r}: use numbers in [0, 1] or clean / 25% / 50% / 100%.") from None
    return tuple(out)


def level_name(level: float) -> str:
    return LEVEL_NAMES.get(round(level, 2), f"{level:.2f}")


# ---------------------------------------------------------------- models


@dataclass
class Generation:
    text: str
    tokens: int | None = None
    """Generated tokens (``None`` when the model does not say)."""


class Model(Protocol):
    """Anything that answers prompts about images: ``generate(images, prompts)`` returns one
    :class:`Generation` (or an exception, for that item only) per pair."""

    def generate(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[Generation | Exception]: ...


class TransformersModel:
    """A local/Hub model or adapter through :class:`trainers.infer.Predictor` (batched, greedy)."""

    def __init__(self, model: str, *, backend: str = "auto", batch_size: int = 8, max_new_tokens: int = 1024, max_pixels: int | None = None):
        from .infer import Predictor

        self.predictor = Predictor(model, backend=backend, max_pixels=max_pixels)
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens

    def _run(self, images, prompts) -> list[Generation]:
        return [Generation(t, n) for t, n in self.predictor.generate_counted(images, prompts, max_new_tokens=self.max_new_tokens)]

    def generate(self, images, prompts):
        out: list[Generation | Exception] = []
        for i in range(0, len(prompts), self.batch_size):
            ims, ps = images[i : i + self.batch_size], prompts[i : i + self.batch_size]
            try:
                out += self._run(ims, ps)
            except Exception as exc:  # noqa: BLE001 - retry alone, so one bad item fails only itself
                log.warning("batch of %d failed (%s: %s); retrying one by one", len(ps), type(exc).__name__, exc)
                for im, p in zip(ims, ps):
                    try:
                        out += self._run([im], [p])
                    except Exception as one:  # noqa: BLE001
                        out.append(one)
        return out


class EndpointModel:
    """Any OpenAI-compatible vision endpoint (vLLM, SGLang, Ollama, OpenAI): concurrent requests
    with retries and backoff (:class:`factory.chains.llm.ChatClient`), greedy decoding, the image
    as a lossless PNG data URL."""

    def __init__(self, model: str, base_url: str | None, *, concurrency: int = 8, max_new_tokens: int = 1024, max_side: int = 1024, seed: int = 0, max_retries: int = 4):
        from factory.chains.llm import ChatClient

        self.kw = dict(model=model, base_url=base_url, concurrency=concurrency, temperature=0.0,
                       max_tokens=max_new_tokens, seed=seed, max_retries=max_retries, backoff_base=0.5)
        ChatClient(**self.kw)  # fail now on a missing key or model name
        self.max_side = max_side

    def generate(self, images, prompts):
        from factory.chains.llm import ChatClient, image_data_url

        async def run() -> list[Generation | Exception]:
            client = ChatClient(**self.kw)

            async def one(im, p):
                url = await asyncio.to_thread(image_data_url, im, self.max_side)
                msg = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": p}]}]
                reply = await client.complete(msg)
                return Generation(reply.text, reply.completion_tokens)

            try:
                return list(await asyncio.gather(*(one(im, p) for im, p in zip(images, prompts)), return_exceptions=True))
            finally:
                await client.aclose()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(run())
        from concurrent.futures import ThreadPoolExecutor  # called from a running loop (a notebook)

        with ThreadPoolExecutor(1) as ex:
            return ex.submit(asyncio.run, run()).result()


def open_model(cfg: EvalConfig) -> Model:
    if cfg.endpoint:
        return EndpointModel(cfg.model, cfg.endpoint, concurrency=cfg.concurrency, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    return TransformersModel(cfg.model, backend=cfg.backend, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens, max_pixels=cfg.max_pixels)


# ---------------------------------------------------------------- prompts, images, scoring


def make_prompt(kind: str, question: str, choices: Sequence[str], prompts_dir: str | None = None) -> str:
    """The text the model sees: ``robust`` (``prompts/instruction.j2``) or ``plain`` (``prompts/plain.j2``)."""
    from factory.chains.prompting import build_prompt, format_question, render_prompt

    if kind == "robust":
        return build_prompt(question, list(choices), prompts_dir)
    if kind == "plain":
        return render_prompt("plain", prompts_dir, question=format_question(question, list(choices)), choices=list(choices))
    raise ValueError(f"--prompt {kind!r}: use robust or plain.")


def eval_recipe(sample_id: str, level: float, seed: int, only: Sequence[str] | None = None):
    """The recipe of ``sample_id`` at ``level`` (``None`` for the clean image)."""
    from factory.degrade import sample_eval

    return None if level == 0 else sample_eval(seed, sample_id, level, only)


def degraded_image(image: np.ndarray, sample_id: str, level: float, seed: int = 0, only: Sequence[str] | None = None) -> np.ndarray:
    """Exactly the image a run with this seed showed the model for ``sample_id`` at ``level``."""
    from factory.degrade import render

    recipe = eval_recipe(sample_id, level, seed, only)
    return image if recipe is None else render(image, recipe)


def predicted_types(text: str) -> tuple[bool, list[tuple[str, float | None]]]:
    """``(has TYPE block, [(name, intensity), ...])``; a block that only says ``none`` gives
    ``[("none", None)]``, one naming nothing recognisable ``[(UNPARSED, None)]``."""
    block = parse_chain(text).type
    if block is None or not block.strip():
        return False, []
    pairs = [(p.name, float(p.intensity) if math.isfinite(p.intensity) else None) for p in parse_type(block) if p.name != NO_DAMAGE]
    if pairs:
        return True, pairs
    if NO_DAMAGE in block.lower():
        return True, [(NO_DAMAGE, None)]
    return True, [(UNPARSED, None)]


def score_output(text: str, sample: Any, level: float, recipe: Any) -> dict[str, Any]:
    """The per-answer scores stored in ``predictions.jsonl``."""
    from .rewards import normalize_choice, score_answer

    parsed = parse_chain(text)
    pred = parsed.answer if parsed.answer is not None and parsed.answer.strip() else text
    has_type, types = predicted_types(text)
    truth = recipe.steps[0] if recipe is not None else None
    return {
        "pred": pred.strip()[:500],
        "pred_index": normalize_choice(pred, sample.choices) if sample.choices else None,
        "correct": score_answer(pred, sample.answer, sample.choices, sample.direct_answers or None),
        "has_type": has_type,
        "types": [[n, s] for n, s in types],
        "format_ok": parsed.is_complete,
        "format_problems": parsed.problems() if hasattr(parsed, "problems") else [],
        "reasoning_words": len(parsed.reasoning.split()) if parsed.reasoning is not None else None,
        "degradation": truth.name if truth else None,
        "stage": truth.stage if truth else None,
    }


# ---------------------------------------------------------------- the run folder


def _read_jsonl(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Complete rows of a JSONL file; a torn last line (a killed run) is dropped, and with
    ``repair`` cut off the file so appends start on a clean line."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    rows = []
    for line in data[:end].splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                log.warning("%s: skipping a corrupt line", path)
    return rows


def _atomic_write(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _check_run(out: Path, cfg: EvalConfig, bench: Mapping[str, Any]) -> None:
    path = out / "run.json"
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except ValueError:
        return
    mine = {**cfg.to_dict(), "benchmark": bench}
    theirs = {**old.get("config", {}), "benchmark": old.get("benchmark")}
    diff = [k for k in _RUN_KEYS if json.dumps(mine.get(k), sort_keys=True) != json.dumps(theirs.get(k), sort_keys=True)]
    if diff:
        raise ValueError(
            f"{out}: holds a run with different {', '.join(diff)}; resuming would mix two runs. "
            "Use another --out folder (or delete this one)."
        )


@dataclass
class EvalRun:
    """What :func:`evaluate` did."""

    out: Path
    generated: int
    """Answers generated by this call (0 for a finished run re-run)."""
    skipped: int
    """(question, level) pairs found done in ``predictions.jsonl``."""
    errors: int
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def table(self) -> str:
        return summary_markdown(self.summary)


def evaluate(cfg: EvalConfig, *, model: Model | None = None, progress: bool = True, chunk: int | None = None) -> EvalRun:
    """Run (or resume) the evaluation ``cfg`` describes and write its outputs.

    ``model`` replaces the one ``cfg`` names (any object with ``generate(images, prompts)``).
    Questions whose image cannot be read, and answers that fail, are recorded in
    ``errors.jsonl`` and skipped; a re-run retries them.
    """
    from tqdm.auto import tqdm

    from .benchmarks import load_benchmark

    cfg.validate()
    if cfg.max_pixels is None and not cfg.endpoint:  # the budget the model was trained with (robust_r1_settings.json)
        from dataclasses import replace

        from .models import resolve_max_pixels

        cfg = replace(cfg, max_pixels=resolve_max_pixels(cfg.model)[0])
    t0 = time.perf_counter()
    bench = load_benchmark(cfg.benchmark, limit=cfg.limit, split=cfg.split, columns=cfg.columns, options=cfg.options,
                           answer=cfg.answer_format, config=cfg.config_name)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    desc = bench.describe()
    desc.pop("rows", None)
    pred_path = out / "predictions.jsonl"
    done = {(r["id"], round(float(r["level"]), 2)) for r in _read_jsonl(pred_path, repair=True)}
    if done:  # a folder without answers (e.g. a mistyped model name failed to load) is reused freely
        _check_run(out, cfg, desc)
    _atomic_write(out / "run.json", json.dumps({"config": cfg.to_dict(), "benchmark": desc, "label": cfg.label}, indent=2) + "\n")
    models = [model]  # opened at the first answer to generate: a finished run never loads it
    errors: list[dict[str, Any]] = []
    generated = skipped = 0
    chunk = chunk or max(cfg.batch_size, cfg.concurrency * 4, 16)
    bar = tqdm(total=len(bench) * len(cfg.levels), desc="eval", unit="answer", disable=not progress)
    pending: list[tuple[Any, float, Any, np.ndarray]] = []
    inflight: list[Any] = []  # [(future, items)]: at most one chunk is being answered

    def write(items, outs) -> None:
        nonlocal generated
        lines = []
        for (s, level, recipe, _), g in zip(items, outs):
            if isinstance(g, BaseException):
                errors.append({"id": s.id, "level": level, "stage": "generate", "error": f"{type(g).__name__}: {g}"[:500]})
                continue
            if isinstance(g, str):
                g = Generation(g)
            try:
                row = {
                    "id": s.id, "level": level, "question": s.question, "choices": s.choices, "answer": s.answer,
                    "answer_text": s.answer_text, "recipe": recipe.to_dict() if recipe is not None else None,
                    "prompt": cfg.prompt, "output": g.text, "output_tokens": g.tokens,
                    **score_output(str(g.text), s, level, recipe),
                }
            except Exception as exc:  # noqa: BLE001 - an output the scorer cannot read fails that answer only
                errors.append({"id": s.id, "level": level, "stage": "score", "error": f"{type(exc).__name__}: {exc}"[:500]})
                continue
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        if lines:  # whole lines, flushed and synced: a kill leaves at most one torn line (cut off on resume)
            with open(pred_path, "a", encoding="utf-8") as f:
                f.write("".join(lines))
                f.flush()
                os.fsync(f.fileno())
        generated += len(lines)
        bar.update(len(items))

    def drain() -> None:
        if not inflight:
            return
        fut, items = inflight.pop()
        try:
            outs = fut.result()
            if len(outs) != len(items):
                raise RuntimeError(f"the model returned {len(outs)} answers for {len(items)} prompts")
        except Exception as exc:  # noqa: BLE001 - the whole call failed: record every item
            outs = [exc] * len(items)
        write(items, outs)

    def submit() -> None:
        # The model answers one chunk in a worker thread while this thread degrades the next
        # one (image work overlaps generation, for endpoints and local models alike).
        if not pending:
            return
        items, prompts = [], []
        for it in pending:
            try:
                prompts.append(make_prompt(cfg.prompt, it[0].question, it[0].choices, cfg.prompts_dir))
                items.append(it)
            except Exception as exc:  # noqa: BLE001 - e.g. a template error on one odd question
                errors.append({"id": it[0].id, "level": it[1], "stage": "prompt", "error": f"{type(exc).__name__}: {exc}"[:500]})
                bar.update(1)
        pending.clear()
        if not items:
            return
        drain()
        if models[0] is None:
            models[0] = open_model(cfg)
        inflight.append((pool.submit(models[0].generate, [im for _, _, _, im in items], prompts), items))

    from concurrent.futures import ThreadPoolExecutor

    from factory.degrade import render

    pool = ThreadPoolExecutor(1, thread_name_prefix="eval-generate")
    seen: set[str] = set()
    try:
        from .benchmarks import BadRow

        for s in bench:
            if isinstance(s, BadRow):
                errors.append({"id": s.id, "level": None, "stage": "benchmark", "error": s.error[:500]})
                bar.update(len(cfg.levels))
                continue
            if s.id in seen:
                errors.append({"id": s.id, "level": None, "stage": "benchmark",
                               "error": "duplicate question id: only its first row is asked; map a unique id column with --columns id=COL"})
                bar.update(len(cfg.levels))
                continue
            seen.add(s.id)
            levels = [lv for lv in cfg.levels if (s.id, lv) not in done]
            skipped += len(cfg.levels) - len(levels)
            bar.update(len(cfg.levels) - len(levels))
            if not levels:
                continue
            try:
                image = s.load_image()
            except Exception as exc:  # noqa: BLE001 - a bad image skips that question only
                errors.append({"id": s.id, "level": None, "stage": "image", "error": str(exc)[:500]})
                bar.update(len(levels))
                continue
            for lv in levels:
                recipe = eval_recipe(s.id, lv, cfg.seed, cfg.only)
                try:
                    im = image if recipe is None else render(image, recipe)
                except Exception as exc:  # noqa: BLE001
                    errors.append({"id": s.id, "level": lv, "stage": "degrade", "error": f"{type(exc).__name__}: {exc}"[:500]})
                    continue
                pending.append((s, lv, recipe, im))
                if len(pending) >= chunk:
                    submit()
        submit()
        drain()
    finally:
        pool.shutdown(wait=not inflight, cancel_futures=True)
        bar.close()
    _atomic_write(out / "errors.jsonl", "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors))
    if errors:
        log.warning("%d failures (bad rows or images, failed answers); see %s. A re-run retries failed answers.",
                    len(errors), out / "errors.jsonl")
    summary = write_reports(out, scope=(seen, cfg.levels))
    return EvalRun(out, generated, skipped, len(errors), summary, time.perf_counter() - t0)


# ---------------------------------------------------------------- scores


def _mean(xs: Iterable[float | None]) -> float | None:
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
    f1 = 2 * p * rc / (p + rc) if p is not None and rc is not None and p + rc > 0 else (0.0 if p is not None and rc is not None else None)
    return p, rc, f1


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
        "accuracy": _mean(r["correct"] for r in rows),
        "type_precision": p,
        "type_recall": rc,
        "type_f1": f1,
        "intensity_mae": sum(ie) / len(ie) if ie else None,
        "format_valid": _mean(float(r["format_ok"]) for r in rows),
        "output_tokens": _mean(r.get("output_tokens") for r in rows),
        "reasoning_words": _mean(r.get("reasoning_words") for r in rows),
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
    for key in ("degradation", "stage"):
        groups: dict[tuple[str, float], list] = {}
        for r in rows:
            if r[key]:
                groups.setdefault((r[key], round(float(r["level"]), 2)), []).append(r)
        for (name, lv), rs in sorted(groups.items()):
            typed = any(r["has_type"] for r in rs)
            breakdown.append({
                "by": key, "name": name, "level": lv, "n": len(rs),
                "accuracy": _mean(r["correct"] for r in rs),
                "type_recall": _mean(float(r["degradation"] in {n for n, _ in r["types"]}) for r in rs) if typed else None,
            })
    return {"label": label, "levels": levels, "breakdown": breakdown, "rows": len(rows)}


# ---------------------------------------------------------------- reports

_COLUMNS = (
    ("level", "level", "{}"), ("n", "n", "{}"), ("accuracy", "accuracy", "{:.4f}"), ("drop", "drop from clean", "{:+.4f}"),
    ("type_precision", "type P", "{:.3f}"), ("type_recall", "type R", "{:.3f}"), ("type_f1", "type F1", "{:.3f}"),
    ("intensity_mae", "intensity MAE", "{:.3f}"), ("format_valid", "format valid", "{:.3f}"),
    ("output_tokens", "output tokens", "{:.1f}"), ("reasoning_words", "reasoning words", "{:.1f}"),
)


def _fmt(v: Any, f: str) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f.format(v)


def summary_markdown(summary: Mapping[str, Any]) -> str:
    head = [c[1] for c in _COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for sc in summary.get("levels", []):
        cells = [f"{sc['name']} ({sc['level']:.2f})" if sc["level"] else "clean"] + [_fmt(sc.get(k), f) for k, _, f in _COLUMNS[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _csv(rows: list[dict[str, Any]], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    return buf.getvalue()


def _breakdown_markdown(summary: Mapping[str, Any], by: str) -> str:
    items = [b for b in summary.get("breakdown", []) if b["by"] == by]
    levels = sorted({b["level"] for b in items})
    names = list(dict.fromkeys(b["name"] for b in items))
    cell = {(b["name"], b["level"]): b for b in items}
    head = [by] + [level_name(lv) for lv in levels]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in names:
        cells = []
        for lv in levels:
            b = cell.get((n, lv))
            if b is None:
                cells.append("–")
            else:
                rec = f", seen {b['type_recall']:.2f}" if b["type_recall"] is not None else ""
                cells.append(f"{b['accuracy']:.2f} (n={b['n']}{rec})")
        lines.append("| " + " | ".join([n] + cells) + " |")
    return "\n".join(lines)


def load_run(run_dir: str | Path, scope: tuple[Iterable[str], Iterable[float]] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(run.json, predictions)`` of a run folder; ``ValueError`` when it is not one.

    Only the levels of the run's last configuration are kept (a folder can hold answers at levels
    a later run no longer asks for); ``scope = (ids, levels)`` narrows the rows further."""
    d = Path(run_dir)
    if not (d / "run.json").is_file():
        raise ValueError(f"{d}: not an evaluation run (no run.json); pass a folder written by `robust-r1 eval`.")
    meta = json.loads((d / "run.json").read_text())
    rows = _read_jsonl(d / "predictions.jsonl")
    levels = {round(float(x), 2) for x in meta.get("config", {}).get("levels") or []}
    if levels:
        rows = [r for r in rows if round(float(r["level"]), 2) in levels]
    if scope is not None:
        ids, lv = set(scope[0]), {round(float(x), 2) for x in scope[1]}
        rows = [r for r in rows if r["id"] in ids and round(float(r["level"]), 2) in lv]
    return meta, rows


def write_reports(run_dir: str | Path, scope: tuple[Iterable[str], Iterable[float]] | None = None) -> dict[str, Any]:
    """(Re)write ``summary.md/.csv/.json``, ``breakdown.csv`` and the plot of a run folder
    (``scope = (ids, levels)``: the questions and levels of the run that just ended)."""
    d = Path(run_dir)
    meta, rows = load_run(d, scope)
    summary = summarize(rows, meta.get("label", d.name))
    cfg = meta.get("config", {})
    bench = meta.get("benchmark", {})
    md = [
        f"# Robustness evaluation: {summary['label']}",
        "",
        f"- model: `{cfg.get('model')}`" + (f" at `{cfg.get('endpoint')}`" if cfg.get("endpoint") else ""),
        f"- benchmark: {bench.get('name')} (`{bench.get('dataset')}`, split {bench.get('split')}); {len({r['id'] for r in rows})} questions",
        f"- prompt: {cfg.get('prompt')}; seed {cfg.get('seed')}; one `eval` degradation per image, nested over the levels",
        "",
        summary_markdown(summary),
        "",
        "Accuracy uses the rewards' answer matching. Type P/R/F1 compare the `<TYPE>` names with the injected",
        "degradation (`none` on the clean image); intensity MAE is over correctly named degradations.",
        "",
        "## Per degradation (accuracy, questions, share whose TYPE named it)",
        "",
        _breakdown_markdown(summary, "degradation"),
        "",
        "## Per stage",
        "",
        _breakdown_markdown(summary, "stage"),
        "",
    ]
    _atomic_write(d / "summary.md", "\n".join(md))
    _atomic_write(d / "summary.csv", _csv(summary["levels"], ["level", "name"] + [k for k, _, _ in _COLUMNS[1:]]))
    _atomic_write(d / "breakdown.csv", _csv(summary["breakdown"], ["by", "name", "level", "n", "accuracy", "type_recall"]))
    _atomic_write(d / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot_accuracy([summary], d / "accuracy_vs_intensity.png")
    return summary


def plot_accuracy(summaries: Sequence[Mapping[str, Any]], path: str | Path, title: str = "Accuracy under degradation") -> Path:
    """Accuracy against intensity, one line per run."""
    from matplotlib.figure import Figure  # no pyplot: the caller's backend (a notebook's) is left alone

    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    ticks: set[float] = set()
    for s in summaries:
        pts = [(sc["level"], sc["accuracy"]) for sc in s["levels"] if sc["accuracy"] is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s.get("label") or "run")
            ticks |= {p[0] for p in pts}
    ax.set_xticks(sorted(ticks))
    ax.set_xticklabels([level_name(t) if t in LEVEL_NAMES else f"{t:.2f}" for t in sorted(ticks)])
    ax.set_xlabel("degradation intensity")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    if ax.get_lines():
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    path = Path(path)
    _atomic_write(path, buf.getvalue())
    return path


def compare(run_dirs: Sequence[str | Path], out: str | Path) -> dict[str, Any]:
    """One table (``comparison.md``/``.csv``) and one plot (``comparison.png``) for several runs."""
    if not run_dirs:
        raise ValueError("eval-compare: name at least one run folder.")
    summaries = []
    for d in run_dirs:
        meta, rows = load_run(d)
        summaries.append(summarize(rows, meta.get("label") or Path(d).name))
    labels = [s["label"] for s in summaries]
    if len(set(labels)) < len(labels):  # same model evaluated twice: tell them apart by folder
        for s, d in zip(summaries, run_dirs):
            s["label"] = f"{s['label']} ({Path(d).name})"
    levels = sorted({sc["level"] for s in summaries for sc in s["levels"]})
    head = ["run"] + [level_name(lv) for lv in levels] + ["mean drop", "type F1 (degraded)", "format valid"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    csv_rows = []
    for s in summaries:
        by = {sc["level"]: sc for sc in s["levels"]}
        drops = [sc["drop"] for sc in s["levels"] if sc["level"] > 0 and sc["drop"] is not None]
        f1 = _mean(sc["type_f1"] for sc in s["levels"] if sc["level"] > 0)
        fv = _mean(sc["format_valid"] for sc in s["levels"])
        mean_drop = sum(drops) / len(drops) if drops else None
        lines.append("| " + " | ".join(
            [s["label"]] + [_fmt(by[lv]["accuracy"] if lv in by else None, "{:.4f}") for lv in levels]
            + [_fmt(mean_drop, "{:+.4f}"), _fmt(f1, "{:.3f}"), _fmt(fv, "{:.3f}")]) + " |")
        csv_rows.append({"run": s["label"], **{level_name(lv): (by[lv]["accuracy"] if lv in by else None) for lv in levels},
                         "mean_drop": mean_drop, "type_f1_degraded": f1, "format_valid": fv})
    o = Path(out)
    o.mkdir(parents=True, exist_ok=True)
    table = "\n".join(lines)
    _atomic_write(o / "comparison.md", "# Robustness comparison\n\n" + table + "\n")
    _atomic_write(o / "comparison.csv", _csv(csv_rows, ["run"] + [level_name(lv) for lv in levels] + ["mean_drop", "type_f1_degraded", "format_valid"]))
    plot_accuracy(summaries, o / "comparison.png", "Accuracy under degradation: comparison")
    return {"table": table, "summaries": summaries, "out": o}


__all__ = [
    "DEFAULT_LEVELS", "EvalConfig", "EvalRun", "EndpointModel", "Generation", "Model", "TransformersModel",
    "compare", "degraded_image", "eval_recipe", "evaluate", "level_scores", "load_run", "make_prompt",
    "parse_levels", "plot_accuracy", "predicted_types", "score_output", "summarize", "write_reports",
]
