"""``robust-r1 studio``: the typer command (registered on the main CLI with :func:`register`).

Only typer is imported at module level; gradio loads when the command runs, torch only when the
Model tab loads a transformers model.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

FLAGS = {
    "dataset": "--dataset",
    "model": "--model",
    "endpoint": "--endpoint",
    "workdir": "--workdir",
    "host": "--host",
    "port": "--port",
    "share": "--share",
    "max_image_mp": "--max-image-mp",
    "max_file_mb": "--max-file-mb",
}
"""Config field → the flag that sets it (for error messages)."""


def studio(
    dataset: Optional[str] = typer.Option(
        None,
        "--dataset",
        help="A dataset folder written by `robust-r1 build` (or `robust-r1 demo`), or a Hub id; "
        "opened in the Dataset tab.",
    ),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        help="A model folder, Hub id, LoRA adapter folder or 'tiny', loaded in the background; "
        "with --endpoint, the served model name (default: the first the server lists).",
    ),
    endpoint: Optional[str] = typer.Option(
        None,
        "--endpoint",
        help="An OpenAI-compatible server (http://host:8000/v1) instead of a local model; key from OPENAI_API_KEY.",
    ),
    workdir: Path = typer.Option(
        Path("studio-output"),
        "--workdir",
        help="The only folder the studio writes to: uploads, outputs, downloads, reports, caches.",
    ),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Interface to bind. 127.0.0.1 (default) keeps the studio on this machine; "
        "0.0.0.0 opens it to the network.",
    ),
    port: Optional[int] = typer.Option(
        None, "--port", min=1, max=65535, help="Port (default: the first free one from 7860)."
    ),
    share: bool = typer.Option(
        False, "--share", help="Also open a public gradio.live link: anyone with the link can use the studio (opt-in)."
    ),
    max_image_mp: float = typer.Option(
        25.0, "--max-image-mp", min=0.01, help="Refuse uploaded images above this many megapixels."
    ),
    max_file_mb: int = typer.Option(200, "--max-file-mb", min=1, help="Refuse uploads above this many megabytes."),
) -> None:
    """Robust-R1 Studio in the browser: degradations, chains, a dataset and a model's reading, side by side."""
    from factory.errors import ConfigError

    from .app import StudioConfig, launch, setup_logging
    from .common import StudioError

    cfg = StudioConfig(
        dataset=dataset,
        model=model,
        endpoint=endpoint,
        workdir=str(workdir),
        host=host,
        port=port,
        share=share,
        max_image_mp=max_image_mp,
        max_file_mb=max_file_mb,
    )
    setup_logging()
    try:
        launch(cfg)
    except ConfigError as exc:
        typer.echo(f"error: {exc.for_flag(FLAGS.get(exc.field, exc.field))}", err=True)
        raise typer.Exit(2) from None
    except StudioError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add ``studio`` to a typer app (the main ``robust-r1`` CLI)."""
    app.command("studio")(studio)


def main() -> None:
    """``python -m factory.studio``: the studio command on its own."""
    try:
        typer.run(studio)
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
