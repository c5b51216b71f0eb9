"""``robust-r1 build``: a thin layer over :func:`factory.build.build`."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import (
    EXIT_INCOMPLETE,
    EXIT_NOTHING,
    LLM,
    STYLE,
    add_command,
    chain_config,
    command_line,
    split_values,
    style_or_default,
)


def build_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (a Hugging Face dataset repo layout)."),
    source: str = typer.Option(
        "demo", "--source", "-s", help="demo, aokvqa, a local parquet/jsonl/csv file or folder, or a Hub repo id."
    ),
    split: list[str] | None = typer.Option(
        None,
        "--split",
        help="train and/or validation (repeat or comma-separate; default: both, where the source has them).",
    ),
    limit: str | None = typer.Option(
        None, "--limit", help="At most N samples per split (the first ones), or per split: train=10000,validation=1000."
    ),
    columns: str | None = typer.Option(
        None,
        "--columns",
        help="Column mapping TARGET=SOURCE,... for other datasets; targets: image, question, choices, answer, "
        "answer_text, id, direct_answers.",
    ),
    backend: str = LLM.backend,
    model: str | None = LLM.model,
    base_url: str | None = LLM.base_url,
    concurrency: int = LLM.concurrency,
    cache: Path | None = LLM.cache,
    prompts: Path | None = LLM.prompts,
    no_vision: bool = LLM.no_vision,
    seed: int = typer.Option(
        0, "--seed", min=0, help="Base seed: recipes and the sft/rl assignment derive from (seed, sample id)."
    ),
    workers: int = typer.Option(
        1, "--workers", "-j", min=1, help="Image worker processes (results do not depend on it)."
    ),
    sft_fraction: float = typer.Option(
        0.25, "--sft-fraction", min=0.0, max=1.0, help="Share of train samples in the sft config; the rest go to rl."
    ),
    keep_clean: bool = typer.Option(False, "--keep-clean", help="Also store the pristine image (column clean_image)."),
    image_format: str = typer.Option(
        "png",
        "--image-format",
        help="png (lossless, default), webp (lossless, smaller, slower) or jpeg (q95, smallest, alters the damage "
        "slightly).",
    ),
    shard_size: int = typer.Option(
        1000, "--shard-size", min=1, help="Samples per resumable chunk (one shard per config per chunk)."
    ),
    style: str | None = STYLE,
    report: bool = typer.Option(True, "--report/--no-report", help="Write report/ and the dataset card at the end."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Build the dataset: source → recipe → degrade → chain → parquet shards (Hub layout).

    Resumable: after a crash or kill, run the same command again and it continues. Exit status 3
    when samples wait for the LLM service (an outage): run the same command again; 1 when no row
    was produced.
    """
    from factory import degrade
    from factory.build import BuildConfig, build
    from factory.chains.backends import get_backend
    from factory.layout import ERRORS, STATE

    degrade.tune_allocator()
    if not get_backend(backend).uses_model:
        cache = None  # the template backend makes no requests
    elif cache is None:
        cache = out / STATE / "llm-cache"
    chain = chain_config(backend, model, base_url, concurrency, cache, prompts, no_vision, seed=seed)
    cfg = BuildConfig(
        source=source,
        out=str(out),
        splits=split_values(split),
        limit=limit,
        seed=seed,
        workers=workers,
        sft_fraction=sft_fraction,
        keep_clean=keep_clean,
        image_format=image_format.lower(),
        shard_size=shard_size,
        columns=columns or None,
        style=style_or_default(style),
        chain=chain,
        command=command_line(ctx),
        report=report,
    )
    summary = build(cfg, progress=not quiet)
    for line in summary.lines():
        typer.echo(line)
    if summary.retry:
        raise typer.Exit(EXIT_INCOMPLETE)
    if summary.rows == 0:
        typer.echo(f"error: no row was produced; the reasons are in {out / ERRORS}.", err=True)
        raise typer.Exit(EXIT_NOTHING)


def register(app: typer.Typer) -> None:
    """Add ``build`` to ``app``."""
    add_command(app, "build", build_command)
