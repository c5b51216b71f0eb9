"""``robust-r1 degradations``, ``robust-r1 degrade`` and ``robust-r1 demo``: the engine on its own."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import typer

from factory.errors import InputError

from .common import EXIT_NOTHING, STYLE, add_command, split_values, style_or_default

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}


def degradations(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (every style)."),
    style: str | None = STYLE,
) -> None:
    """List the degradation catalogue: name, stage, aliases and parameter schedule (of one style)."""
    from factory import degrade

    style = style_or_default(style)
    entries = degrade.catalogue()
    if as_json:
        rows = [{**e.info(), "schedule": e.schedule_summary()} for e in entries]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    styles = degrade.RENDER_STYLES if style == degrade.MIXED else (style,)
    for st in styles:
        title = f"{len(entries)} degradations, {st} style (intensity s in [0, 1])"
        table = Table(title=title, show_lines=False)
        for col in ("name", "stage", "aliases", "what it looks like", "parameters (s = 0 → 1)"):
            table.add_column(col, overflow="fold")
        for e in entries:
            table.add_row(e.name, e.stage, ", ".join(e.aliases), e.describe(st), e.schedule_summary(st))
        Console(width=200).print(table)


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _collect_inputs(src: Path, exclude: Path | None = None) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    """``([(sample id, path)], [(where, problem)])``: the images under ``src`` and what could not be
    searched. Symbolic links are followed, but a link back to a folder already searched (a loop)
    is recorded, as are broken links and folders that cannot be listed; hidden files and folders
    and the folder ``exclude`` (an output folder inside the input) are skipped."""
    if src.is_file():
        return [(src.name, src)], []
    if not src.is_dir():
        if src.is_symlink():
            raise InputError(f"{src}: a broken symbolic link; point it at an image or a folder of images.")
        raise InputError(f"{src}: no such file or folder; pass an image file or a folder of images.")
    found: list[tuple[str, Path]] = []
    problems: list[tuple[str, str]] = []
    skip = os.path.realpath(exclude) if exclude is not None else None
    seen: set[tuple[int, int]] = set()

    def rel(path: str) -> str:
        return Path(os.path.relpath(path, src)).as_posix()

    def onerror(exc: OSError) -> None:
        where = rel(exc.filename) if exc.filename else "."
        why = "permission denied" if isinstance(exc, PermissionError) else (exc.strerror or str(exc))
        problems.append((where, f"{where}: cannot list this folder ({why}); its images are skipped: fix its "
                                "permissions (chmod a+rx) or remove it."))

    for dirpath, dirnames, filenames in os.walk(src, onerror=onerror, followlinks=True):
        st = os.stat(dirpath)
        seen.add((st.st_dev, st.st_ino))
        keep = []
        for d in sorted(dirnames):
            full = os.path.join(dirpath, d)
            if _hidden(d) or (skip is not None and os.path.realpath(full) == skip):
                continue
            try:
                dst = os.stat(full)
            except OSError as exc:
                problems.append((rel(full), f"{rel(full)}: cannot open this folder ({exc.strerror}); skipped."))
                continue
            real, here = os.path.realpath(full), os.path.realpath(dirpath)
            if real == here or here.startswith(real.rstrip(os.sep) + os.sep):
                problems.append((rel(full), f"{rel(full)}: symbolic link loop (it leads back to {real}, which "
                                            "contains it); skipped."))
                continue
            if (dst.st_dev, dst.st_ino) in seen:
                continue  # the same folder reached again through another link: its images are already in
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            full = os.path.join(dirpath, f)
            if _hidden(f):
                continue
            if os.path.islink(full) and not os.path.exists(full):
                if Path(f).suffix.lower() in IMAGE_SUFFIXES:
                    problems.append((rel(full), f"{rel(full)}: broken symbolic link (to {os.readlink(full)}); "
                                                "skipped."))
                continue
            if Path(f).suffix.lower() in IMAGE_SUFFIXES:
                found.append((rel(full), Path(full)))
    found.sort(key=lambda x: x[0])
    return found, problems


def _output_names(inputs: list[tuple[str, Path]], levels: list, fmt: str) -> dict[str, list[str]]:
    """Each input's output image names (relative to the output folder), one per level. An image
    is named after its path without the suffix (``sub/a.png`` → ``sub/a.png``); when two inputs
    would share a name (``photo.jpg`` and ``photo.png``) both keep their suffix
    (``photo.jpg.png``, ``photo.png.png``), so no output ever replaces another."""
    by_stem: dict[str, list[str]] = {}
    for sid, _ in inputs:
        by_stem.setdefault(Path(sid).with_suffix("").as_posix().lower(), []).append(sid)
    out: dict[str, list[str]] = {}
    for sid, _ in inputs:
        base = Path(sid).with_suffix("").as_posix()
        if len(by_stem[base.lower()]) > 1:
            base = sid
        out[sid] = [f"{base}{'' if len(levels) == 1 else f'@{lv:.2f}'}.{fmt}" for lv in levels]
    return out


def _sidecar(name: str) -> str:
    p = Path(name)
    return p.with_name(f"{p.stem}.json").as_posix()


def _check_outputs(
    src: Path, output: Path, inputs: list[tuple[str, Path]], names: dict[str, list[str]], reserved: list[str]
) -> None:
    """Refuse a plan that would write over an input, or write two outputs to one path."""
    out_real = Path(os.path.realpath(output))
    src_real = Path(os.path.realpath(src))
    if out_real == src_real:
        raise InputError(
            f"{output}: is the input folder; the degraded images would replace the originals. Choose another "
            f"output folder (e.g. {src.name}-degraded)."
        )
    if src.is_file() and out_real == src_real:
        raise InputError(f"{output}: is the input image; choose an output folder.")
    originals = {os.path.realpath(p): sid for sid, p in inputs}
    owner: dict[str, str] = {}
    for name in reserved:
        owner[name.lower()] = f"the command's own {name}"
    for sid, _ in inputs:
        for name in names[sid]:
            for target in (name, _sidecar(name)):
                real = os.path.realpath(out_real / target)
                if real in originals:
                    raise InputError(
                        f"{output / target}: is the input image {originals[real]}; degrading would overwrite it. "
                        "Choose an output folder outside the input folder (or a new subfolder of it)."
                    )
                key = target.lower()
                if key in owner:
                    raise InputError(
                        f"{output / target}: both {owner[key]} and {sid} would be written there; rename one of the "
                        "inputs or choose other options."
                    )
                owner[key] = sid


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
    names: tuple[str, ...] = ()
    """The output image names (relative to ``out_dir``), one per level (see ``_output_names``)."""
    style: str = "reference"
    """Degradation style (``factory.degrade.STYLES``)."""


def _degrade_one(job: DegradeJob) -> tuple[str, str | None, str | None, int]:
    """Worker: load, sample the recipe(s), render, write image + sidecar.

    Returns ``(id, stage, error, images written)``. An image that cannot be read or degraded is
    an error of its own (the batch goes on); a failed write (disk full, permissions) raises, naming
    the file: every later write would fail the same way."""
    import cv2

    from factory import degrade
    from factory.layout import atomic_write
    from factory.sources import decode_image

    cv2.setNumThreads(1)
    try:
        img = decode_image(job.path, name=job.sample_id)
    except ValueError as exc:
        return job.sample_id, "load", str(exc), 0
    names = job.names or tuple(
        f"{Path(job.sample_id).with_suffix('').as_posix()}{'' if len(job.levels) == 1 else f'@{lv:.2f}'}.{job.fmt}"
        for lv in job.levels
    )
    written = 0
    for level, name in zip(job.levels, names, strict=True):
        try:
            recipe = degrade.sample_recipe(
                job.kind, job.seed, job.sample_id, intensity=level, only=job.only, style=job.style
            )
            out = degrade.render(img, recipe)
        except Exception as exc:  # noqa: BLE001 - an image the engine cannot degrade fails alone
            return job.sample_id, "degrade", f"{job.sample_id}: {type(exc).__name__}: {exc}", written
        target = Path(job.out_dir) / name
        try:
            degrade.save_image(out, target)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), exc.filename or str(target)) from None
        side = {"source": str(job.path), "output": target.name, **recipe.to_dict()}
        atomic_write(Path(job.out_dir) / _sidecar(name), json.dumps(side, indent=2) + "\n", fsync=False)
        written += 1
    return job.sample_id, None, None, written


def degrade(
    input: str = typer.Argument(..., help="An image file or a folder of images (searched recursively)."),
    output: Path = typer.Argument(..., help="Output folder (never the input folder; may lie inside it)."),
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
    style: str | None = STYLE,
) -> None:
    """Degrade an image or a folder; writes images plus a sidecar JSON recipe per image.

    Input files are never written. Unreadable images (and folders, broken or looping links) are
    listed in OUTPUT/errors.jsonl and skipped; exit status 1 when no image could be degraded."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    from factory import degrade as dg
    from factory.layout import ERRORS, error_record, write_errors
    from factory.lock import LOCK_NAME, OutputLock
    from factory.sources import _URL_RE, decode_image

    fmt = fmt.lower().lstrip(".")
    if fmt not in ("png", "jpg", "jpeg"):
        raise ValueError(f"--format {fmt!r}: use png or jpg.")
    if recipe not in ("train", "eval"):
        raise ValueError(f"--recipe {recipe!r}: use train or eval.")
    if _URL_RE.match(input):
        raise InputError(f"{input}: is a URL; degrade reads local files: download the image(s) first.")
    src = Path(input)
    style = style_or_default(style)
    names = split_values(only)
    if names:
        names = [dg.get(n).name for n in names]
    if intensity is not None:
        dg.check_intensity(intensity, "--intensity")
    levels: list = [intensity] if intensity is not None else ([None] if recipe == "train" else list(dg.EVAL_LEVELS))
    if output.exists() and not output.is_dir():
        raise InputError(f"{output}: exists and is not a folder; choose an output folder.")
    if src.is_dir() and os.path.realpath(output) == os.path.realpath(src):
        _check_outputs(src, output, [], {}, [])  # raises: the output folder is the input folder
    inputs, problems = _collect_inputs(src, exclude=output)
    if not inputs and not problems:
        raise InputError(f"{input}: no image files found (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).")
    out_names = _output_names(inputs, levels, fmt)
    reserved = [ERRORS, LOCK_NAME] + (["gallery.png"] if gallery else [])
    _check_outputs(src, output, inputs, out_names, reserved)
    jobs = [
        DegradeJob(sid, str(p), str(output), recipe, names, levels, seed, fmt, tuple(out_names[sid]), style)
        for sid, p in inputs
    ]
    errors: list[dict] = [error_record(where, "load", why) for where, why in problems]
    written = 0
    with OutputLock(output, "degrade"):
        bar = tqdm(total=len(jobs), unit="img", desc="degrade", disable=None)
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=workers) as ex:
                results = ex.map(_degrade_one, jobs, chunksize=max(1, min(16, len(jobs) // (workers * 4))))
                for sid, stage, err, n in results:
                    written += n
                    if err:
                        errors.append(error_record(sid, stage, err))
                    bar.update(1)
        else:
            for job in jobs:
                sid, stage, err, n = _degrade_one(job)
                written += n
                if err:
                    errors.append(error_record(sid, stage, err))
                bar.update(1)
        bar.close()
        if errors:  # this run's failures only: a file fixed since the last run is no longer listed
            write_errors(output / ERRORS, errors)
            for e in errors:
                typer.echo(f"skipped: {e['reason']}", err=True)
        elif (output / ERRORS).exists():
            (output / ERRORS).unlink()
        failed = {e["id"] for e in errors}
        if gallery:
            first = next(((sid, p) for sid, p in inputs if sid not in failed), None)
            if first is not None:
                from factory.degrade.gallery import DEFAULT_LEVELS
                from factory.degrade.gallery import gallery as make_gallery

                grid_levels = DEFAULT_LEVELS if intensity is None else (0.0, intensity)
                grid = make_gallery(
                    decode_image(first[1], name=first[0]),
                    names or dg.names(),
                    grid_levels,
                    seed=seed,
                    title=first[0],
                    style=style,
                )
                dg.save_image(grid, output / "gallery.png")
                typer.echo(f"gallery: {output / 'gallery.png'}")
    skipped = f"{len(errors)} skipped" + (f" (see {output / ERRORS})" if errors else "")
    typer.echo(f"{written} image(s) written to {output}; {skipped}")
    if written == 0:
        typer.echo(f"error: no image could be degraded; the reasons are in {output / ERRORS}.", err=True)
        raise typer.Exit(EXIT_NOTHING)


def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Output folder."),
    seed: int = typer.Option(0, "--seed", min=0),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), "--workers", min=1),
    style: str | None = STYLE,
) -> None:
    """The main job on the embedded default: build the demo dataset (bundled photos + QA,
    template chains) with its report and card, plus a gallery of every degradation."""
    from factory import degrade as dg
    from factory.build import demo as run_demo
    from factory.degrade.gallery import gallery as make_gallery
    from factory.lock import OutputLock
    from factory.photos import photo

    dg.tune_allocator()
    style = style_or_default(style)
    summary = run_demo(out, seed=seed, workers=workers, style=style)
    title = f"astronaut: {len(dg.names())} degradations, reference | physical style"
    grid = make_gallery(photo("astronaut"), dg.names(), seed=seed, title=title, style=dg.RENDER_STYLES)
    with OutputLock(out, "demo"):  # the build released it; the gallery is written under it too
        dg.save_image(grid, out / "gallery.png")
    for line in summary.lines():
        typer.echo(line)
    typer.echo(f"gallery of every degradation at 0 / 0.23 / 0.45 / 0.9, both styles: {out / 'gallery.png'}")


def register(app: typer.Typer) -> None:
    """Add ``degradations``, ``degrade`` and ``demo`` to ``app``."""
    add_command(app, "degradations", degradations)
    add_command(app, "degrade", degrade)
    add_command(app, "demo", demo)
