"""CLI commands of the chain writer (registered on the main app by factory.cli)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def chain(
    image: Path = typer.Argument(..., help="An image file."),
    question: str = typer.Option(..., "--question", help="The question about the image."),
    answer: str = typer.Option(..., "--answer", help="Ground truth: option index (or option text) for multiple choice, else the answer."),
    choices: Optional[List[str]] = typer.Option(None, "--choices", help="Options of a multiple-choice question (repeat: --choices A --choices B, or comma-separate)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the train recipe."),
    backend: str = typer.Option("template", "--backend", help="template (offline) or openai (any OpenAI-compatible server)."),
    base_url: Optional[str] = typer.Option(None, "--base-url", help="Server URL, e.g. http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama)."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name for the openai backend."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Response cache folder (re-runs make no calls)."),
    prompts_dir: Optional[Path] = typer.Option(None, "--prompts", help="Folder with your own copies of the prompt templates."),
    no_vision: bool = typer.Option(False, "--no-vision", help="Do not send images (text-only models)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Degrade one image with the train recipe and print the recipe and the full chain."""
    from factory import degrade
    from factory.chains.writer import ChainConfig, request_from_image, write_chains

    opts = [c.strip() for item in (choices or []) for c in item.split(",") if c.strip()]
    try:
        img = degrade.load_image(image)
        req = request_from_image(img, question=question, answer=answer, choices=opts, seed=seed, sample_id=f"chain:{image.name}")
        cfg = ChainConfig(
            backend=backend, model=model, base_url=base_url, cache_dir=str(cache) if cache else None,
            prompts_dir=str(prompts_dir) if prompts_dir else None, vision=not no_vision, seed=seed,
        )
        report = write_chains([req], cfg)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    res = report.results[0]
    if not res.ok:
        typer.echo(f"error: {image}: chain failed: {res.reason}", err=True)
        raise typer.Exit(1)
    degs = req.recipe.degradation_records()
    for d in degs:
        d["params"] = json.loads(d["params"])
    if as_json:
        out = {"id": req.sample_id, "degradations": degs, "total_intensity": req.recipe.total_intensity, **res.fields()}
        if report.usage:
            out["usage"] = report.usage
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
        return
    typer.echo(f"recipe (seed {seed}, total intensity {req.recipe.total_intensity:.2f}, target {res.target_words} words):")
    for d in degs:
        typer.echo(f"  {d['stage']:16s} {d['name']:24s} {d['intensity']:.2f}")
    typer.echo("")
    typer.echo(res.solution)
    if report.usage:
        typer.echo(f"\nusage: {json.dumps(report.usage)}" + (f"; cost ${report.cost_usd:.4f}" if report.cost_usd is not None else ""))


def register(app: typer.Typer) -> None:
    """Add the chain commands to ``app``."""
    app.command("chain")(chain)
