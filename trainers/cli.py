"""CLI commands of the trainers: ``train sft``, ``train grpo``, ``infer``, ``eval``, ``eval-compare`` (registered by factory.cli)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

train_app = typer.Typer(help="Fine-tune a VLM on a robust-r1 dataset (SFT, then GRPO).", no_args_is_help=True)


def _settings(stage: str, preset: str, config: Optional[Path], sets: Optional[List[str]], **explicit):
    from trainers.presets import parse_overrides, settings_for

    overrides = {k: v for k, v in explicit.items() if v is not None}
    overrides.update(parse_overrides(sets))
    try:
        return settings_for(preset, stage, yaml_path=config, overrides=overrides)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _report(result) -> None:
    if not getattr(result, "main_process", True):  # under accelerate launch only the main process reports
        return
    typer.echo(f"backend: {result.backend}; steps: {result.global_step}; saved to {result.output}")
    if getattr(result, "world_size", 1) > 1:
        typer.echo(f"processes: {result.world_size} (accelerate launch)")
    if result.resumed_from:
        typer.echo(f"resumed from {result.resumed_from}")
    keys = sorted({k for h in result.log_history for k in h if k == "loss" or k.startswith("rewards/") and k.endswith("/mean")})
    for k in keys:
        vals = result.metric(k)
        typer.echo(f"{k}: " + " ".join(f"{v:.4g}" for v in vals))
    if result.merged:
        typer.echo(f"merged 16-bit model: {result.merged}")


_COMMON = dict(
    dataset=typer.Option(..., "--dataset", help="A robust-r1 dataset folder or Hub repo."),
    output=typer.Option(..., "--output", help="Output folder (adapter/model, processor, checkpoints)."),
    preset=typer.Option("t4", "--preset", help="t4 (one 15 GB GPU), paper (the paper's settings) or tiny (CPU tests)."),
    config=typer.Option(None, "--config", help="YAML file of setting: value overriding the preset."),
    sets=typer.Option(None, "--set", help="Override one setting, KEY=VALUE (repeatable), e.g. --set lora_r=32."),
    max_steps=typer.Option(None, "--max-steps", help="Stop after this many optimiser steps."),
    backend=typer.Option(None, "--backend", help="auto, unsloth or hf."),
    limit=typer.Option(None, "--limit", help="Use only the first N rows."),
    merge=typer.Option(False, "--merge", help="Also write a merged 16-bit model to OUTPUT/merged."),
    push=typer.Option(None, "--push-to-hub", help="Upload the result to this Hub repo id."),
    no_resume=typer.Option(False, "--no-resume", help="Start over even if OUTPUT has checkpoints."),
)


def _train_command(stage: str):
    """The ``train sft`` / ``train grpo`` command: same options, different trainer and config."""
    model_help = "Base model (Hub id, folder, or 'tiny')." if stage == "sft" else "Start from this model or SFT output folder."

    def command(
        dataset: str = _COMMON["dataset"],
        output: Path = _COMMON["output"],
        preset: str = _COMMON["preset"],
        model: Optional[str] = typer.Option(None, "--model", help=model_help),
        config: Optional[Path] = _COMMON["config"],
        sets: Optional[List[str]] = _COMMON["sets"],
        max_steps: Optional[int] = _COMMON["max_steps"],
        backend: Optional[str] = _COMMON["backend"],
        limit: Optional[int] = _COMMON["limit"],
        merge: bool = _COMMON["merge"],
        push: Optional[str] = _COMMON["push"],
        no_resume: bool = _COMMON["no_resume"],
    ) -> None:
        from trainers.run import RunConfig

        if stage == "sft":
            from trainers.sft import train_sft as train
        else:
            from trainers.grpo import train_grpo as train
        s = _settings(stage, preset, config, sets, model=model, max_steps=max_steps, backend=backend)
        try:
            result = train(RunConfig(dataset, str(output), s, limit=limit, resume=not no_resume, merge=merge, push_to_hub=push))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        _report(result)

    command.__doc__ = (
        "Supervised fine-tuning on the `sft` config: user = image + prompt, assistant = the chain."
        if stage == "sft"
        else "GRPO on the `rl` config with the method's rewards (r_deg, r_len, accuracy, format)."
    )
    command.__name__ = f"train_{stage}"
    return command


train_app.command("sft")(_train_command("sft"))
train_app.command("grpo")(_train_command("grpo"))


_MAX_PIXELS_HELP = "Image budget in pixels; default: the model folder's training budget (robust_r1_settings.json), else 448x448."


def infer_cmd(
    model: str = typer.Option(..., "--model", help="Model folder, merged model, adapter folder or Hub id."),
    image: Path = typer.Option(..., "--image", help="Image file."),
    question: str = typer.Option(..., "--question", help="The question."),
    choices: Optional[List[str]] = typer.Option(None, "--choices", help="Options of a multiple-choice question (repeat)."),
    backend: str = typer.Option("auto", "--backend"),
    max_new_tokens: int = typer.Option(512, "--max-new-tokens"),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help=_MAX_PIXELS_HELP),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Answer a question about an image and print the parsed chain (TYPE pairs, influence, ...)."""
    from trainers.infer import infer

    try:
        res = infer(model, image, question, choices=choices or [], backend=backend, max_new_tokens=max_new_tokens,
                    max_pixels=max_pixels)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
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


def eval_cmd(
    model: str = typer.Argument(..., help="Model folder, adapter folder, Hub id, 'tiny', or with --endpoint the served model name."),
    out: Path = typer.Option(Path("eval-output"), "--out", help="Run folder (predictions.jsonl, summary.md/.csv, plot); re-runs resume."),
    benchmark: str = typer.Option("demo", "--benchmark", help="demo, mmstar, realworldqa, mmbench, mmmb, aokvqa, a Hub id, or a local file/folder."),
    split: Optional[str] = typer.Option(None, "--split", help="Split (default: the preset's, or train for a single file)."),
    columns: Optional[str] = typer.Option(None, "--columns", help="Column mapping: image=COL,question=COL,answer=COL[,choices=COL,id=COL,hint=COL]."),
    options: Optional[str] = typer.Option(None, "--options", help="Options layout: list, columns[:A|B|C|D] or inline."),
    answer_format: Optional[str] = typer.Option(None, "--answer-format", help="auto, index, letter or text."),
    config_name: Optional[str] = typer.Option(None, "--config-name", help="Hub configuration of the benchmark."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", help="Base URL of an OpenAI-compatible server (key: OPENAI_API_KEY)."),
    prompt: str = typer.Option("robust", "--prompt", help="robust (TYPE ... ANSWER instruction) or plain (answer with the option)."),
    prompts_dir: Optional[Path] = typer.Option(None, "--prompts", help="Folder of edited prompt templates."),
    levels: str = typer.Option("clean,0.23,0.45,0.9", "--levels", help="Intensities (clean = 0; 25%/50%/100% = 0.23/0.45/0.9)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the degradation drawn for each image."),
    only: Optional[str] = typer.Option(None, "--only", help="Draw degradations from these names only (comma-separated)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate the first N questions only."),
    batch_size: int = typer.Option(8, "--batch-size", help="Questions per generation batch (transformers)."),
    concurrency: int = typer.Option(8, "--concurrency", help="Requests in flight (endpoint)."),
    max_new_tokens: int = typer.Option(1024, "--max-new-tokens"),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help=_MAX_PIXELS_HELP),
    backend: str = typer.Option("auto", "--backend", help="auto, unsloth or hf (transformers models)."),
    name: Optional[str] = typer.Option(None, "--name", help="Label of the run in tables and plots."),
) -> None:
    """Robustness evaluation: accuracy, degradation perception and format at clean and degraded levels."""
    from trainers.evaluate import EvalConfig, evaluate

    try:
        cfg = EvalConfig(
            model=model, out=str(out), benchmark=benchmark, split=split, columns=columns, options=options,
            answer_format=answer_format, config_name=config_name, endpoint=endpoint, prompt=prompt,
            prompts_dir=str(prompts_dir) if prompts_dir else None, levels=levels, seed=seed, only=only, limit=limit,
            batch_size=batch_size, concurrency=concurrency, max_new_tokens=max_new_tokens, max_pixels=max_pixels,
            backend=backend, name=name,
        )
        run = evaluate(cfg)
    except (ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(run.table())
    typer.echo(
        f"\n{run.generated} answers generated, {run.skipped} already done, {run.errors} failed "
        f"({run.seconds:.1f} s); outputs in {run.out} (summary.md, summary.csv, breakdown.csv, accuracy_vs_intensity.png)"
    )
    if run.errors:
        typer.echo(
            f"failures are listed in {run.out / 'errors.jsonl'} (rows that cannot be asked, unreadable images, failed "
            "answers); run the same command again to retry the failed answers."
        )


def eval_compare_cmd(
    runs: List[Path] = typer.Argument(..., help="Run folders written by `robust-r1 eval`."),
    out: Path = typer.Option(Path("eval-compare"), "--out", help="Folder for comparison.md/.csv/.png."),
) -> None:
    """Compare several evaluation runs in one table and one accuracy-vs-intensity plot."""
    from trainers.evaluate import compare

    try:
        res = compare(runs, out)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(res["table"])
    typer.echo(f"\nwritten: {out / 'comparison.md'}, {out / 'comparison.csv'}, {out / 'comparison.png'}")


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
    app.command("infer")(infer_cmd)
    app.command("eval")(eval_cmd)
    app.command("eval-compare")(eval_compare_cmd)
