"""``robust-r1 eval`` and ``robust-r1 eval-compare`` (the API: ``trainers.evaluate``)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import STYLE, add_command, style_or_default


def eval_cmd(
    model: str = typer.Argument(
        ..., help="Model folder, adapter folder, Hub id, 'tiny', or with --endpoint the served model name."
    ),
    out: Path = typer.Option(
        Path("eval-output"), "--out", help="Run folder (predictions.jsonl, summary.md/.csv, plot); re-runs resume."
    ),
    benchmark: str = typer.Option(
        "demo",
        "--benchmark",
        help="demo, mmstar, realworldqa, mmbench, mmmb, aokvqa, rbench, mmdbench:BASE[,BASE] (published degraded "
        "images), PRESET@PATH (a local copy), a Hub id, a local file/folder, or a VLMEvalKit .tsv.",
    ),
    split: str | None = typer.Option(
        None, "--split", help="Split, exactly as the dataset declares it (default: the preset's; train for a file)."
    ),
    columns: str | None = typer.Option(
        None, "--columns", help="Column mapping: image=COL,question=COL,answer=COL[,choices=COL,id=COL,hint=COL]."
    ),
    options: str | None = typer.Option(None, "--options", help="Options layout: list, columns[:A|B|C|D] or inline."),
    answer_format: str | None = typer.Option(None, "--answer-format", help="auto, index, letter or text."),
    config_name: str | None = typer.Option(None, "--config-name", help="Hub configuration of the benchmark."),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="Base URL of an OpenAI-compatible server (key: OPENAI_API_KEY)."
    ),
    prompt: str = typer.Option(
        "robust",
        "--prompt",
        help="robust (our TYPE ... ANSWER instruction, options 0. 1. ...), plain (options A. B. ..., answer with the "
        "letter; for base models) or reference (the released Robust-R1 models' own prompt from demo.py).",
    ),
    prompts_dir: Path | None = typer.Option(None, "--prompts", help="Folder of edited prompt templates."),
    levels: str = typer.Option(
        "clean,0.23,0.45,0.9", "--levels", help="Intensities (clean = 0; 25%/50%/100% = low/mid/high = 0.23/0.45/0.9)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the degradation drawn for each image."),
    only: str | None = typer.Option(None, "--only", help="Draw degradations from these names only (comma-separated)."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate the first N questions only."),
    batch_size: int = typer.Option(8, "--batch-size", help="Questions per generation batch (transformers)."),
    concurrency: int = typer.Option(8, "--concurrency", help="Requests in flight (endpoint)."),
    max_new_tokens: int = typer.Option(1024, "--max-new-tokens"),
    max_pixels: int | None = typer.Option(
        None,
        "--max-pixels",
        help="Image budget (width x height) of what the model is shown, local or endpoint. Default: the stock "
        "Qwen2.5-VL processor's 12845056 for --prompt reference, else the model folder's training budget "
        "(robust_r1_settings.json), else 448x448.",
    ),
    temperature: float = typer.Option(
        0.0, "--temperature", help="0: greedy (default); > 0: sampling seeded by --seed (the reference demo: 0.6)."
    ),
    judge_model: str | None = typer.Option(
        None,
        "--judge-model",
        help="LLM judge of benchmarks scored by judgement (R-Bench VQA/CAP, MM-Vet); default: the benchmark's own "
        "(gpt-3.5-turbo for R-Bench, gpt-4-turbo for MM-Vet). Key: OPENAI_API_KEY.",
    ),
    judge_endpoint: str | None = typer.Option(
        None, "--judge-endpoint", help="OpenAI-compatible server of the judge (default: OpenAI)."
    ),
    judge_concurrency: int = typer.Option(8, "--judge-concurrency", help="Judge requests in flight."),
    backend: str = typer.Option("auto", "--backend", help="auto, unsloth or hf (transformers models)."),
    name: str | None = typer.Option(None, "--name", help="Label of the run in tables and plots."),
    style: str | None = STYLE,
) -> None:
    """Robustness evaluation: accuracy, degradation perception and format at clean and degraded levels.

    Resumable (re-run the same command). Exit status 3 when answers failed (the same command
    retries them), else 1 when no question could be answered."""
    from trainers.evaluate import EvalConfig, evaluate

    cfg = EvalConfig(
        model=model,
        out=str(out),
        benchmark=benchmark,
        split=split,
        columns=columns,
        options=options,
        answer_format=answer_format,
        config_name=config_name,
        endpoint=endpoint,
        prompt=prompt,
        prompts_dir=str(prompts_dir) if prompts_dir else None,
        levels=levels,
        seed=seed,
        only=only,
        style=style_or_default(style),
        limit=limit,
        batch_size=batch_size,
        concurrency=concurrency,
        max_new_tokens=max_new_tokens,
        max_pixels=max_pixels,
        temperature=temperature,
        backend=backend,
        name=name,
        judge_model=judge_model,
        judge_endpoint=judge_endpoint,
        judge_concurrency=judge_concurrency,
    )
    run = evaluate(cfg)
    typer.echo(run.table())
    typer.echo(
        f"\n{run.generated} answers generated, {run.skipped} already done, {run.errors} failed "
        f"({run.seconds:.1f} s); outputs in {run.out} "
        "(summary.md, summary.csv, breakdown.csv, accuracy_vs_intensity.png)"
    )
    if run.errors:
        typer.echo(
            f"failures are listed in {run.out / 'errors.jsonl'} (rows that cannot be asked, unreadable images, failed "
            "answers); run the same command again to retry the failed answers."
        )
    from .common import EXIT_INCOMPLETE, EXIT_NOTHING

    if _failed_answers(run.out):  # the next run retries them
        raise typer.Exit(EXIT_INCOMPLETE)
    if not run.summary.get("rows"):
        typer.echo(f"error: no question was answered; the reasons are in {run.out / 'errors.jsonl'}.", err=True)
        raise typer.Exit(EXIT_NOTHING)


def _failed_answers(out: Path) -> int:
    """Answers whose generation failed in the last run (retried by the next one)."""
    from factory.layout import read_errors

    return sum(1 for e in read_errors(out / "errors.jsonl") if e.get("stage") == "generate")


def eval_compare_cmd(
    runs: list[Path] = typer.Argument(..., help="Run folders written by `robust-r1 eval`."),
    out: Path = typer.Option(Path("eval-compare"), "--out", help="Folder for comparison.md/.csv/.png."),
) -> None:
    """Compare several evaluation runs in one table and one accuracy-vs-intensity plot."""
    from factory.errors import InputError
    from factory.lock import OutputLock
    from trainers.eval.store import load_predictions
    from trainers.evaluate import compare

    for run in runs:  # read-only checks, before anything is written: a damaged run is one line
        if not (run / "run.json").is_file():
            raise InputError(f"{run}: not an evaluation run (no run.json); pass a folder written by `robust-r1 eval`.")
        problems = load_predictions(run / "predictions.jsonl", repair=False).problems
        if problems:
            raise InputError(
                f"{run}: {problems[0]['error'].split('; moved to')[0]} ({len(problems)} bad line(s)); run the "
                "same `robust-r1 eval` command on it again: it moves such lines out and asks their answers again."
            )
    with OutputLock(out, "eval-compare"):
        res = compare(runs, out)
    typer.echo(res["table"])
    typer.echo(f"\nwritten: {out / 'comparison.md'}, {out / 'comparison.csv'}, {out / 'comparison.png'}")


def register(app: typer.Typer) -> None:
    """Add ``eval`` and ``eval-compare`` to ``app``."""
    add_command(app, "eval", eval_cmd)
    add_command(app, "eval-compare", eval_compare_cmd)
