"""``robust-r1 degradations``, ``robust-r1 degrade`` and ``robust-r1 demo``: the engine on its own."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import typer

from .common import add_command, split_values

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}


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
    raise ValueError(f"{src}: no such file or folder; pass an image file or a folder of images.")


@dataclass(frozen=True)
class DegradeJob:
    """One input image of ``robust-r1 degrade``."""

    sample_id: str
    """The image's path relative to the input folder (seeds its recipe, names its outputs)."""
    path: str
    out_dir: str
    kind: str
    """``train`` or ``eval`` recipe."""
    only: list[str] | None
    levels: list
    seed: int
    fmt: str


def _degrade_one(job: DegradeJob) -> tuple[str, str | None, int]:
    """Worker: load, sample the recipe(s), render, write image + sidecar. Returns (id, error, n)."""
    import cv2

    from factory import degrade
    from factory.layout import atomic_write

    cv2.setNumThreads(1)
    try:
        img = degrade.load_image(job.path)
    except ValueError as exc:
        return job.sample_id, str(exc), 0
    written = 0
    stem = Path(job.sample_id).with_suffix("")
    for level in job.levels:
        recipe = degrade.sample_recipe(job.kind, job.seed, job.sample_id, intensity=level, only=job.only)
        out = degrade.render(img, recipe)
        suffix = "" if len(job.levels) == 1 else f"@{level:.2f}"
        target = Path(job.out_dir) / f"{stem}{suffix}.{job.fmt}"
        degrade.save_image(out, target)
        side = {"source": str(job.path), "output": target.name, **recipe.to_dict()}
        atomic_write(target.with_name(f"{target.stem}.json"), json.dumps(side, indent=2) + "\n", fsync=False)
        written += 1
    return job.sample_id, None, written


def degrade(
    input: Path = typer.Argument(..., help="An image file or a folder of images (searched recursively)."),
    output: Path = typer.Argument(..., help="Output folder."),
    recipe: str = typer.Option(
        "train", "--recipe", help="train (several degradations) or eval (one, reference protocol)."
    ),
    only: list[str] | None = typer.Option(
        None, "--only", help="Restrict to these degradations (names or aliases; repeat or comma-separate)."
    ),
    intensity: float | None = typer.Option(
        None,
        "--intensity",
        help="Fix the intensity in [0, 1] (train: every degradation; eval: the level). "
        "Eval default: 0.23, 0.45 and 0.9.",
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, help="Base seed; each image's recipe derives from (seed, relative path)."
    ),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes (results do not depend on it)."),
    gallery: bool = typer.Option(
        False,
        "--gallery",
        help="Also write gallery.png: rows = degradations, columns = intensities, for the first image.",
    ),
    fmt: str = typer.Option("png", "--format", help="png (lossless, default) or jpg (quality 95)."),
) -> None:
    """Degrade an image or a folder; writes images plus a sidecar JSON recipe per image."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from factory import degrade as dg
    from factory.layout import ERRORS, error_record, write_errors

    fmt = fmt.lower().lstrip(".")
    if fmt not in ("png", "jpg", "jpeg"):
        raise ValueError(f"--format {fmt!r}: use png or jpg.")
    if recipe not in ("train", "eval"):
        raise ValueError(f"--recipe {recipe!r}: use train or eval.")
    names = split_values(only)
    if names:
        names = [dg.get(n).name for n in names]
    if intensity is not None:
        dg.check_intensity(intensity, "--intensity")
    levels: list = [intensity] if intensity is not None else ([None] if recipe == "train" else list(dg.EVAL_LEVELS))
    inputs = _collect_inputs(input)
    if not inputs:
        raise ValueError(f"{input}: no image files found (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).")
    output.mkdir(parents=True, exist_ok=True)
    jobs = [DegradeJob(sid, str(p), str(output), recipe, names, levels, seed, fmt) for sid, p in inputs]
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
        write_errors(output / ERRORS, [error_record(sid, "load", err) for sid, err in errors])
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
    skipped = f"{len(errors)} skipped" + (f" (see {output / ERRORS})" if errors else "")
    typer.echo(f"{written} image(s) written to {output}; {skipped}")


def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Output folder."),
    seed: int = typer.Option(0, "--seed", min=0),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), "--workers", min=1),
) -> None:
    """The main job on the embedded default: build the demo dataset (bundled photos + QA,
    template chains) with its report and card, plus a gallery of every degradation."""
    from factory import degrade as dg
    from factory.build import demo as run_demo
    from factory.degrade.gallery import gallery as make_gallery
    from factory.photos import photo

    dg.tune_allocator()
    summary = run_demo(out, seed=seed, workers=workers)
    grid = make_gallery(photo("astronaut"), dg.names(), seed=seed, title=f"astronaut: {len(dg.names())} degradations")
    dg.save_image(grid, out / "gallery.png")
    for line in summary.lines():
        typer.echo(line)
    typer.echo(f"gallery of every degradation at 0 / 0.23 / 0.45 / 0.9: {out / 'gallery.png'}")


def register(app: typer.Typer) -> None:
    """Add ``degradations``, ``degrade`` and ``demo`` to ``app``."""
    add_command(app, "degradations", degradations)
    add_command(app, "degrade", degrade)
    add_command(app, "demo", demo)
