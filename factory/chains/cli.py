"""CLI commands of the chain writer (registered on the main app by factory.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the chain commands to ``app``."""
