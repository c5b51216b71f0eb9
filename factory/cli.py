"""The ``robust-r1`` command line: a thin layer over the Python API."""

from __future__ import annotations

import json
import logging
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    name="robust-r1",
    help="Robust-R1: degradation-aware reasoning data, training and evaluation for VLMs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("robust_r1")

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}


def _fail(message: str, code: int = 2) -> "typer.Exit":
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _split_names(values: Optional[List[str]]) -> Optional[List[str]]:
    if not values:
        return None
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )


@app.command()
def degradations(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the degradation catalogue: name, stage, aliases and parameter schedule."""
    from factory import degrade

    entries = degrade.catalogue()
    if as_json:
        rows = [{**e.info(), "schedule": e.schedule_summary()} for e in entries]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(entries)} degradations (intensity s in [0, 1])", show_lines=False)
    for col in ("name", "stage", "aliases", "parameters (s = 0 → 1)"):
        table.add_column(col, overflow="fold")
    for e in entries:
        table.add_row(e.name, e.stage, ", ".join(e.aliases), e.schedule_summary())
    Console(width=160).print(table)


def _collect_inputs(src: Path) -> list[tuple[str, Path]]:
    if src.is_file():
        return [(src.name, src)]
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        return [(p.relative_to(src).as_posix(), p) for p in files]
    raise _fail(f"{src}: no such file or folder; pass an image file or a folder of images.")


def _degrade_one(job: tuple) -> tuple[str, Optional[str], int]:
    """Worker: load, sample the recipe(s), render, write image + sidecar. Returns (id, error, n)."""
    import cv2

    from factory import degrade

    cv2.setNumThreads(1)
    sample_id, path, out_dir, kind, only, levels, seed, fmt = job
    try:
        img = degrade.load_image(path)
    except ValueError as exc:
        return sample_id, str(exc), 0
    written = 0
    stem = Path(sample_id).with_suffix("")
    for level in levels:
        recipe = degrade.sample_recipe(kind, seed, sample_id, intensity=level, only=only)
        out = degrade.render(img, recipe)
        suffix = "" if len(levels) == 1 else f"@{level:.2f}"
        target = Path(out_dir) / f"{stem}{suffix}.{fmt}"
        degrade.save_image(out, target)
        side = {"source": str(path), "output": target.name, **recipe.to_dict()}
        tmp = target.with_name(f".{target.name}.json.tmp")
        tmp.write_text(json.dumps(side, indent=2) + "\n")
        tmp.replace(target.with_name(f"{target.stem}.json"))
        written += 1
    return sample_id, None, written


@app.command()
def degrade(
    input: Path = typer.Argument(..., help="An image file or a folder of images (searched recursively)."),
    output: Path = typer.Argument(..., help="Output folder."),
    recipe: str = typer.Option("train", "--recipe", help="train (several degradations) or eval (one, reference protocol)."),
    only: Optional[List[str]] = typer.Option(None, "--only", help="Restrict to these degradations (names or aliases; repeat or comma-separate)."),
    intensity: Optional[float] = typer.Option(None, "--intensity", help="Fix the intensity in [0, 1] (train: every degradation; eval: the level). Eval default: 0.23, 0.45 and 0.9."),
    seed: int = typer.Option(0, "--seed", min=0, help="Base seed; each image's recipe derives from (seed, relative path)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (results do not depend on it)."),
    gallery: bool = typer.Option(False, "--gallery", help="Also write gallery.png: rows = degradations, columns = intensities, for the first image."),
    fmt: str = typer.Option("png", "--format", help="png (lossless, default) or jpg (quality 95)."),
) -> None:
    """Degrade an image or a folder; writes images plus a sidecar JSON recipe per image."""
    from tqdm import tqdm

    from factory import degrade as dg

    fmt = fmt.lower().lstrip(".")
    if fmt not in ("png", "jpg", "jpeg"):
        raise _fail(f"--format {fmt!r}: use png or jpg.")
    if recipe not in ("train", "eval"):
        raise _fail(f"--recipe {recipe!r}: use train or eval.")
    names = _split_names(only)
    try:
        if names:
            names = [dg.get(n).name for n in names]
        if intensity is not None:
            dg.check_intensity(intensity, "--intensity")
    except ValueError as exc:
        raise _fail(str(exc)) from None
    levels: list = [intensity] if intensity is not None else ([None] if recipe == "train" else list(dg.EVAL_LEVELS))
    inputs = _collect_inputs(input)
    if not inputs:
        raise _fail(f"{input}: no image files found (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).")
    output.mkdir(parents=True, exist_ok=True)
    jobs = [(sid, str(p), str(output), recipe, names, levels, seed, fmt) for sid, p in inputs]
    errors: list[tuple[str, str]] = []
    written = 0
    bar = tqdm(total=len(jobs), unit="img", desc="degrade", disable=None)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            results = ex.map(_degrade_one, jobs, chunksize=max(1, min(16, len(jobs) // (workers * 4))))
            for sid, err, n in results:
                written += n
                if err:
                    errors.append((sid, err))
                bar.update(1)
    else:
        for job in jobs:
            sid, err, n = _degrade_one(job)
            written += n
            if err:
                errors.append((sid, err))
            bar.update(1)
    bar.close()
    if errors:
        with open(output / "errors.jsonl", "w") as fh:
            for sid, err in errors:
                fh.write(json.dumps({"id": sid, "reason": err}) + "\n")
        for sid, err in errors:
            typer.echo(f"skipped {sid}: {err}", err=True)
    if gallery:
        first = next(((sid, p) for sid, p in inputs if sid not in dict(errors)), None)
        if first is not None:
            from factory.degrade.gallery import DEFAULT_LEVELS
            from factory.degrade.gallery import gallery as make_gallery

            grid_levels = DEFAULT_LEVELS if intensity is None else (0.0, intensity)
            grid = make_gallery(dg.load_image(first[1]), names or dg.names(), grid_levels, seed=seed, title=first[0])
            dg.save_image(grid, output / "gallery.png")
            typer.echo(f"gallery: {output / 'gallery.png'}")
    typer.echo(f"{written} image(s) written to {output}; {len(errors)} skipped" + (f" (see {output / 'errors.jsonl'})" if errors else ""))


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Output folder."),
    seed: int = typer.Option(0, "--seed", min=0),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), "--workers", min=1),
) -> None:
    """The main job on the embedded default: build the demo dataset (bundled photos + QA,
    template chains) with its report, card and a gallery of every degradation."""
    from factory import degrade as dg
    from factory.build import demo as run_demo
    from factory.degrade.gallery import gallery as make_gallery
    from factory.photos import photo

    dg.tune_allocator()
    summary = run_demo(out, seed=seed, workers=workers)
    grid = make_gallery(photo("astronaut"), dg.names(), seed=seed, title="astronaut: 16 degradations")
    dg.save_image(grid, out / "gallery.png")
    for line in summary.lines():
        typer.echo(line)
    typer.echo(f"card: {out / 'README.md'}")
    typer.echo(f"plots: {out / 'report'} (and every degradation in {out / 'gallery.png'})")
    typer.echo(f"publish it with: robust-r1 publish {out} --repo-id USER/NAME")


@app.command()
def build(
    out: Path = typer.Option(..., "--out", help="Output folder (a Hub dataset repo layout)."),
    source: str = typer.Option("demo", "--source", help="demo, aokvqa, a local parquet/jsonl file or folder, or a Hub repo id."),
    split: Optional[List[str]] = typer.Option(None, "--split", help="train and/or validation (default both)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=0, help="At most N samples per split."),
    columns: Optional[str] = typer.Option(None, "--columns", help="Column mapping TARGET=SOURCE,... (image, question, choices, answer, answer_text, id, direct_answers)."),
    backend: str = typer.Option("template", "--backend", help="Chain writer: template or openai."),
    base_url: Optional[str] = typer.Option(None, "--base-url"),
    model: Optional[str] = typer.Option(None, "--model"),
    concurrency: int = typer.Option(8, "--concurrency", min=1),
    cache: Optional[Path] = typer.Option(None, "--cache", help="LLM response cache (default OUT/.build/llm-cache)."),
    prompts_dir: Optional[Path] = typer.Option(None, "--prompts"),
    no_vision: bool = typer.Option(False, "--no-vision"),
    seed: int = typer.Option(0, "--seed", min=0),
    workers: int = typer.Option(1, "--workers", min=1),
    sft_fraction: float = typer.Option(0.25, "--sft-fraction"),
    keep_clean: bool = typer.Option(False, "--keep-clean", help="Also store the clean image."),
    image_format: str = typer.Option("png", "--image-format", help="png (lossless), jpeg or webp (lossless)."),
    chunk_size: int = typer.Option(256, "--chunk-size", min=1, help="Samples per resumable chunk (and shard)."),
) -> None:
    """Build the dataset: source → recipe → degrade → chain → parquet shards, resumable."""
    from factory.build import BuildConfig
    from factory.build import build as run_build
    from factory.chains.writer import ChainConfig
    from factory.sources import parse_columns

    from factory import degrade as dg

    dg.tune_allocator()
    try:
        cfg = BuildConfig(
            source=source,
            out=str(out),
            splits=tuple(split or ("train", "validation")),
            limit=limit,
            seed=seed,
            workers=workers,
            sft_fraction=sft_fraction,
            keep_clean=keep_clean,
            image_format=image_format,
            chunk_size=chunk_size,
            columns=parse_columns(columns) or None,
            chain=ChainConfig(
                backend=backend, model=model, base_url=base_url, concurrency=concurrency,
                cache_dir=str(cache or out / ".build" / "llm-cache") if backend != "template" else None,
                prompts_dir=str(prompts_dir) if prompts_dir else None, vision=not no_vision, seed=seed,
            ),
            command="robust-r1 " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("robust-r1") else None,
        )
        summary = run_build(cfg)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    for line in summary.lines():
        typer.echo(line)
    typer.echo(f"publish it with: robust-r1 publish {out} --repo-id USER/NAME")


@app.command()
def report(dataset: Path = typer.Argument(..., help="A dataset folder made by `robust-r1 build`.")) -> None:
    """Statistics and plots (report/*.png, summary.md, stats.json); refreshes the card."""
    from factory.publish import write_card
    from factory.report import make_report

    try:
        stats = make_report(dataset)
        if (dataset / "build.json").exists():
            write_card(dataset)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo((dataset / "report" / "summary.md").read_text())
    typer.echo(f"plots in {dataset / 'report'}; Spearman rho(length, intensity) = {stats['spearman_length_vs_intensity']:.3f}")


@app.command()
def publish(
    dataset: Path = typer.Argument(..., help="A dataset folder made by `robust-r1 build`."),
    repo_id: str = typer.Option(..., "--repo-id", help="USER/NAME on the Hugging Face Hub."),
    private: bool = typer.Option(False, "--private"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and list what would be uploaded."),
) -> None:
    """Validate the folder and upload it to the Hub (token: HF_TOKEN or the saved login)."""
    from factory.publish import publish as run_publish
    from factory.publish import write_card

    try:
        write_card(dataset, repo_id=repo_id)
        res = run_publish(dataset, repo_id, private=private, dry_run=dry_run)
    except (ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from None
    total = sum(s for _, s in res.files)
    if dry_run:
        for path, size in res.files:
            typer.echo(f"{size:>12,d}  {path}")
        typer.echo(f"dry run: {len(res.files)} files, {total / 1e6:.1f} MB would go to datasets/{repo_id}")
        return
    typer.echo(f"uploaded {len(res.files)} files ({total / 1e6:.1f} MB) to {res.url}")


@app.command()
def export(
    dataset: Path = typer.Argument(..., help="A dataset folder made by `robust-r1 build`."),
    out: Path = typer.Argument(..., help="Output folder."),
    fmt: str = typer.Option("reference", "--format", help="reference: the Robust-R1 reference repo's jsonl + image folders."),
    config: str = typer.Option("rl", "--config", help="Which config becomes train.jsonl (sft or rl)."),
) -> None:
    """Export to the reference repo's layout (train.jsonl/test.jsonl + train_images/test_images)."""
    from factory.publish import export_reference

    if fmt != "reference":
        raise _fail(f"--format {fmt!r}: only 'reference' is supported.")
    try:
        counts = export_reference(dataset, out, config=config)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"wrote {counts['train']} train and {counts['test']} test samples to {out}")


def _register_subcommands() -> None:
    from factory.chains.cli import register as register_chains
    from trainers.cli import register as register_trainers

    register_chains(app)
    register_trainers(app)


_register_subcommands()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
