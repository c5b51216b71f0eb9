"""What to do with a built dataset: ``report``, ``card``, ``publish`` and ``export``."""

from __future__ import annotations

from pathlib import Path

import typer

from factory.card import DEFAULT_LICENSE

from .common import add_command

DATASET = typer.Argument(..., help="A dataset folder written by `robust-r1 build`.")
LICENSE_HELP = f"License id for the card (default: the card's, else {DEFAULT_LICENSE})."


def report_command(
    dataset: Path = DATASET,
    out: Path = typer.Option(None, "--out", help="Where to write the report (default DATASET/report)."),
    gallery: int = typer.Option(12, "--gallery", min=0, max=12, help="Samples in gallery.png (at most 12)."),
    card: bool = typer.Option(True, "--card/--no-card", help="Refresh the dataset card (README.md) afterwards."),
) -> None:
    """Statistics and plots of a dataset: report/*.png, stats.json, summary.md; refreshes the card."""
    from factory.card import check_card_writable, write_card
    from factory.layout import MANIFEST, REPORT
    from factory.lock import OutputLock
    from factory.report import fmt_number, make_report, summary_markdown

    refresh = card and out is None and (dataset / MANIFEST).is_file()
    if not dataset.is_dir():
        raise ValueError(f"{dataset}: no such folder; pass a dataset folder written by `robust-r1 build`.")
    with OutputLock(out or dataset, "report"):
        if refresh:
            check_card_writable(dataset)  # before anything is written
        stats = make_report(dataset, out, gallery_size=gallery)
        if refresh:
            typer.echo(f"card: {write_card(dataset)}")
    target = out or dataset / REPORT
    typer.echo(summary_markdown(stats, images=False))
    rho = fmt_number(stats["spearman_length_vs_intensity"])
    typer.echo(f"plots and stats in {target}; Spearman rho(reasoning length, total intensity) = {rho}")


def card_command(
    dataset: Path = DATASET,
    repo_id: str | None = typer.Option(None, "--repo-id", help="USER/NAME for the loading snippet."),
    license: str | None = typer.Option(None, "--license", help=LICENSE_HELP),
    pretty_name: str | None = typer.Option(None, "--pretty-name"),
    overwrite_card: bool = typer.Option(
        False,
        "--overwrite-card",
        help="Replace a card edited outside its notes block (the edits are lost; the notes block is kept).",
    ),
) -> None:
    """(Re)write the dataset card README.md from build.json and report/ (its notes block is kept)."""
    from factory.card import write_card
    from factory.lock import OutputLock
    from factory.publish import validate

    if not dataset.is_dir():
        raise ValueError(f"{dataset}: no such folder; pass a dataset folder written by `robust-r1 build`.")
    with OutputLock(dataset, "card"):
        path = write_card(dataset, repo_id=repo_id, license=license, pretty_name=pretty_name, overwrite=overwrite_card)
    problems = validate(dataset)
    typer.echo(f"card: {path}")
    for p in problems:
        typer.echo(f"problem: {p}", err=True)


def publish_command(
    dataset: Path = DATASET,
    repo_id: str = typer.Option(..., "--repo-id", help="USER/NAME (or ORG/NAME) of the Hub dataset repo."),
    private: bool = typer.Option(False, "--private", help="Create the repo private."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and list what would be uploaded; no API call."),
    license: str | None = typer.Option(None, "--license", help=LICENSE_HELP),
    pretty_name: str | None = typer.Option(None, "--pretty-name", help="Title of the card."),
    max_retries: int = typer.Option(5, "--max-retries", min=0, help="Retries of transient Hub errors."),
) -> None:
    """Validate the folder and upload it to the Hub (token: HF_TOKEN or `hf auth login`).

    The card is re-rendered first (its notes block kept); --dry-run renders it in memory and writes
    nothing at all."""
    from factory.layout import MANIFEST
    from factory.publish import publish

    res = publish(
        dataset, repo_id, private=private, dry_run=dry_run, max_retries=max_retries,
        refresh_card=(dataset / MANIFEST).is_file(), license=license, pretty_name=pretty_name,
    )  # fmt: skip
    for line in res.lines():
        typer.echo(line)


def export_command(
    dataset: Path = DATASET,
    out: Path = typer.Argument(..., help="Output folder (created; a previous export there is replaced)."),
    fmt: str = typer.Option(
        "reference", "--format", help="reference: the Robust-R1 reference repo's jsonl + image folders."
    ),
    config: str = typer.Option(
        "rl", "--config", help="Config whose train split becomes train.jsonl: rl (GRPO, default) or sft."
    ),
    human: str = typer.Option(
        "question", "--human", help="question (the reference appends its own instruction) or prompt (ours)."
    ),
) -> None:
    """Export to the reference layout: train.jsonl/test.jsonl + train_images/test_images."""
    from factory.export import export_reference

    if fmt != "reference":
        raise ValueError(f"--format {fmt!r}: only 'reference' is supported.")
    counts = export_reference(dataset, out, config, human=human)
    typer.echo(f"wrote {counts['train']} train and {counts['test']} test samples to {out}")
    typer.echo(
        f"GRPO: --data_file_paths {out / 'train.jsonl'} --image_folders {out / 'train_images'} --task_type robust"
    )


def register(app: typer.Typer) -> None:
    """Add ``publish``, ``export``, ``card`` and ``report`` to ``app``."""
    add_command(app, "publish", publish_command)
    add_command(app, "export", export_command)
    add_command(app, "card", card_command)
    add_command(app, "report", report_command)
