"""The ``robust-r1 build`` command (``register(app)`` adds it to the typer app of factory.cli).

A thin layer over :func:`factory.build.build`; heavy imports happen inside the command.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, List, Optional

import typer


def _split_values(values: Optional[List[str]]) -> Optional[tuple[str, ...]]:
    if not values:
        return None
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return tuple(out) or None


def command_line(ctx: Any, prog: str = "robust-r1") -> str:
    """The command as typed, rebuilt from the options given on the command line (normalised:
    long option names, given options only, in declaration order; shell-quoted)."""
    parts = [prog, ctx.info_name or "build"]
    for p in ctx.command.params:
        src = ctx.get_parameter_source(p.name)  # an enum of click's or typer's vendored click
        if getattr(src, "name", None) not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params[p.name]
        opt = max(p.opts, key=len) if p.opts else p.name
        if getattr(p, "is_flag", False):
            if value:
                parts.append(opt)
            elif p.secondary_opts:
                parts.append(max(p.secondary_opts, key=len))
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            parts += [opt, shlex.quote(str(v))]
    return " ".join(parts)


def build_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (a Hugging Face dataset repo layout)."),
    source: str = typer.Option("demo", "--source", "-s", help="demo, aokvqa, a local parquet/jsonl/csv file or folder, or a Hub repo id."),
    split: Optional[List[str]] = typer.Option(None, "--split", help="train and/or validation (repeat or comma-separate; default: both, where the source has them)."),
    limit: Optional[str] = typer.Option(None, "--limit", help="At most N samples per split (the first ones), or per split: train=10000,validation=1000."),
    columns: Optional[str] = typer.Option(None, "--columns", help="Column mapping TARGET=SOURCE,... for other datasets; targets: image, question, choices, answer, answer_text, id, direct_answers."),
    backend: str = typer.Option("template", "--backend", help="Chain writer: template (offline) or openai (any OpenAI-compatible server)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name for --backend openai (e.g. gpt-4o)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (default api.openai.com); key from OPENAI_API_KEY."),
    concurrency: int = typer.Option(8, "--concurrency", min=1, help="Parallel LLM requests."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="LLM response cache folder (default OUT/.build/llm-cache): a re-run makes no new calls."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="Folder with your own copies of the prompt templates (*.j2)."),
    no_vision: bool = typer.Option(False, "--no-vision", help="Do not send images to the LLM (text-only models)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Base seed: recipes and the sft/rl assignment derive from (seed, sample id)."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, help="Image worker processes (results do not depend on it)."),
    sft_fraction: float = typer.Option(0.25, "--sft-fraction", min=0.0, max=1.0, help="Share of train samples in the sft config; the rest go to rl."),
    keep_clean: bool = typer.Option(False, "--keep-clean", help="Also store the pristine image (column clean_image)."),
    image_format: str = typer.Option("png", "--image-format", help="png (lossless, default), webp (lossless, smaller, slower) or jpeg (q95, smallest, alters the damage slightly)."),
    shard_size: int = typer.Option(1000, "--shard-size", min=1, help="Samples per resumable chunk (one shard per config per chunk)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write report/ and the dataset card at the end."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Build the dataset: source → recipe → degrade → chain → parquet shards (Hub layout).

    Resumable: after a crash or kill, run the same command again and it continues.
    """
    from factory import degrade
    from factory.build import BuildConfig, build
    from factory.chains.writer import ChainConfig

    degrade.tune_allocator()
    try:
        chain = ChainConfig(
            backend=backend,
            model=model,
            base_url=base_url,
            concurrency=concurrency,
            cache_dir=str(cache or out / ".build" / "llm-cache") if backend != "template" else None,
            prompts_dir=str(prompts) if prompts else None,
            vision=not no_vision,
            seed=seed,
        )
        cfg = BuildConfig(
            source=source,
            out=str(out),
            splits=_split_values(split),
            limit=limit,
            seed=seed,
            workers=workers,
            sft_fraction=sft_fraction,
            keep_clean=keep_clean,
            image_format=image_format.lower(),
            shard_size=shard_size,
            columns=columns or None,
            chain=chain,
            command=command_line(ctx),
            report=report,
        )
        summary = build(cfg, progress=not quiet)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in summary.lines():
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add the ``build`` command to ``app``."""
    app.command("build")(build_command)
