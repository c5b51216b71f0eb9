"""``robust-r1 studio`` (the API: ``factory.studio``).

Only typer is imported at module level; gradio loads when the command runs, torch only when the
Model tab loads a transformers model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .common import add_command


def studio(
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        help="A dataset folder written by `robust-r1 build` (or `robust-r1 demo`), or a Hub id; "
        "opened in the Dataset tab.",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="A model folder, Hub id, LoRA adapter folder or 'tiny', loaded in the background; "
        "with --endpoint, the served model name (default: the first the server lists).",
    ),
    endpoint: str | None = typer.Option(
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
    port: int | None = typer.Option(
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
    from factory.studio.app import StudioConfig, launch, setup_logging

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
    launch(cfg)  # ConfigError (a field) and StudioError (a ValueError) reach the one error handler


def register(app: typer.Typer) -> None:
    add_command(app, "studio", studio)


def main() -> None:
    """``python -m factory.studio``: the studio command on its own (same error handler)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)  # a typer app with one command runs it directly
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
