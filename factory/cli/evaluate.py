"""``robust-r1 eval`` and ``robust-r1 eval-compare`` (the API: ``trainers.evaluate``)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import add_command


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
        help="demo, mmstar, realworldqa, mmbench, mmmb, aokvqa, a Hub id, or a local file/folder.",
    ),
    split: str | None = typer.Option(
        None, "--split", help="Split (default: the preset's, or train for a single file)."
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
        "clean,0.23,0.45,0.9", "--levels", help="Intensities (clean = 0; 25%/50%/100% = 0.23/0.45/0.9)."
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
        help="Image budget (width x height) of what the model is shown, local or endpoint. Default: 448x448 (the "
        "training budget) for robust/plain, the stock Qwen2.5-VL processor's 12845056 for reference.",
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
) -> None:
    """Robustness evaluation: accuracy, degradation perception and format at clean and degraded levels."""
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


def eval_compare_cmd(
    runs: list[Path] = typer.Argument(..., help="Run folders written by `robust-r1 eval`."),
    out: Path = typer.Option(Path("eval-compare"), "--out", help="Folder for comparison.md/.csv/.png."),
) -> None:
    """Compare several evaluation runs in one table and one accuracy-vs-intensity plot."""
    from trainers.evaluate import compare

    res = compare(runs, out)
    typer.echo(res["table"])
    typer.echo(f"\nwritten: {out / 'comparison.md'}, {out / 'comparison.csv'}, {out / 'comparison.png'}")


def register(app: typer.Typer) -> None:
    """Add ``eval`` and ``eval-compare`` to ``app``."""
    add_command(app, "eval", eval_cmd)
    add_command(app, "eval-compare", eval_compare_cmd)
