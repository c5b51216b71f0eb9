"""``robust-r1 train sft``, ``robust-r1 train grpo`` and ``robust-r1 infer`` (the trainers' API:
``trainers.sft``, ``trainers.grpo``, ``trainers.presets``, ``trainers.infer``)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import typer

from .common import MAX_PIXELS_HELP, add_command


def _settings(stage: str, preset: str, config: Path | None, sets: list[str] | None, **explicit):
    from trainers.presets import parse_overrides, settings_for

    overrides = {k: v for k, v in explicit.items() if v is not None}
    overrides.update(parse_overrides(sets))
    return settings_for(preset, stage, yaml_path=config, overrides=overrides)


def _report(result) -> None:
    if not getattr(result, "main_process", True):  # under accelerate launch only the main process reports
        return
    typer.echo(f"backend: {result.backend}; steps: {result.global_step}; saved to {result.output}")
    if getattr(result, "world_size", 1) > 1:
        typer.echo(f"processes: {result.world_size} (accelerate launch)")
    if result.resumed_from:
        typer.echo(f"resumed from {result.resumed_from}")
    keys = sorted(
        {k for h in result.log_history for k in h if k == "loss" or k.startswith("rewards/") and k.endswith("/mean")}
    )
    for k in keys:
        vals = result.metric(k)
        typer.echo(f"{k}: " + " ".join(f"{v:.4g}" for v in vals))
    if result.merged:
        typer.echo(f"merged 16-bit model: {result.merged}")


class Train:
    """The options of ``train sft`` and ``train grpo``, declared once."""

    dataset = typer.Option(..., "--dataset", help="A robust-r1 dataset folder or Hub repo.")
    output = typer.Option(..., "--output", help="Output folder (adapter/model, processor, checkpoints).")
    preset = typer.Option(
        "t4", "--preset", help="t4 (one 15 GB GPU), paper (the paper's settings) or tiny (CPU tests)."
    )
    config = typer.Option(None, "--config", help="YAML file of setting: value overriding the preset.")
    sets = typer.Option(None, "--set", help="Override one setting, KEY=VALUE (repeatable), e.g. --set lora_r=32.")
    max_steps = typer.Option(None, "--max-steps", help="Stop after this many optimiser steps.")
    backend = typer.Option(None, "--backend", help="auto, unsloth or hf.")
    limit = typer.Option(None, "--limit", help="Use only the first N rows.")
    merge = typer.Option(False, "--merge", help="Also write a merged 16-bit model to OUTPUT/merged.")
    push = typer.Option(None, "--push-to-hub", help="Upload the result to this Hub repo id.")
    no_resume = typer.Option(False, "--no-resume", help="Start over even if OUTPUT has checkpoints.")


def _train_command(stage: str):
    """The ``train sft`` / ``train grpo`` command: same options, different trainer and config."""
    model_help = (
        "Base model (Hub id, folder, or 'tiny')." if stage == "sft" else "Start from this model or SFT output folder."
    )

    def command(
        dataset: str = Train.dataset,
        output: Path = Train.output,
        preset: str = Train.preset,
        model: str | None = typer.Option(None, "--model", help=model_help),
        config: Path | None = Train.config,
        sets: list[str] | None = Train.sets,
        max_steps: int | None = Train.max_steps,
        backend: str | None = Train.backend,
        limit: int | None = Train.limit,
        merge: bool = Train.merge,
        push: str | None = Train.push,
        no_resume: bool = Train.no_resume,
    ) -> None:
        from trainers.run import RunConfig

        if stage == "sft":
            from trainers.sft import train_sft as train
        else:
            from trainers.grpo import train_grpo as train
        from .common import output_lock

        s = _settings(stage, preset, config, sets, model=model, max_steps=max_steps, backend=backend)
        # beside: OUTPUT may be pushed whole; under `accelerate launch` the main process holds it for all
        main = int(os.environ.get("RANK", "0") or 0) == 0
        lock = output_lock(output, f"train {stage}", beside=True) if main else contextlib.nullcontext()
        with lock:
            result = train(
                RunConfig(dataset, str(output), s, limit=limit, resume=not no_resume, merge=merge, push_to_hub=push)
            )
        _report(result)

    command.__doc__ = (
        "Supervised fine-tuning on the `sft` config: user = image + prompt, assistant = the chain."
        if stage == "sft"
        else "GRPO on the `rl` config with the method's rewards (r_deg, r_len, accuracy, format)."
    )
    command.__name__ = f"train_{stage}"
    return command


def infer_cmd(
    model: str = typer.Option(..., "--model", help="Model folder, merged model, adapter folder or Hub id."),
    image: Path = typer.Option(..., "--image", help="Image file."),
    question: str = typer.Option(..., "--question", help="The question."),
    choices: list[str] | None = typer.Option(None, "--choices", help="Options of a multiple-choice question (repeat)."),
    backend: str = typer.Option("auto", "--backend"),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens"),
    max_pixels: int | None = typer.Option(None, "--max-pixels", help=MAX_PIXELS_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Answer a question about an image and print the parsed chain (TYPE pairs, influence, ...)."""
    from factory.sources import decode_image

    image = decode_image(image)  # a clear error (and the one pixel limit) before the model loads
    from trainers.infer import infer

    res = infer(
        model, image, question, choices=choices or [], backend=backend, max_new_tokens=max_new_tokens,
        max_pixels=max_pixels,
    )
    if as_json:
        typer.echo(json.dumps(res.as_dict(), indent=2, ensure_ascii=False))
        return
    p = res.parsed
    pairs = ", ".join(f"{t.name} ({t.intensity:g})" for t in p.type_pairs) or "-"
    typer.echo(f"TYPE:        {pairs}")
    for f in ("influence", "reasoning", "conclusion", "answer"):
        typer.echo(f"{f.upper():12s} {getattr(p, f) if getattr(p, f) is not None else '(missing)'}")
    if p.problems():
        typer.echo("format: " + "; ".join(p.problems()))
    typer.echo("\nraw output:\n" + res.text)


def register(app: typer.Typer) -> None:
    """Add ``train sft``, ``train grpo`` and ``infer`` to ``app``."""
    train_app = typer.Typer(help="Fine-tune a VLM on a robust-r1 dataset (SFT, then GRPO).", no_args_is_help=True)
    add_command(train_app, "sft", _train_command("sft"))
    add_command(train_app, "grpo", _train_command("grpo"))
    app.add_typer(train_app, name="train")
    add_command(app, "infer", infer_cmd)
