"""Jinja2 templates (``*.j2``) for every prompt and card the project renders.

Shipped inside the wheel; :func:`path` returns the folder so ``--prompts DIR`` can point at a
user's own copy instead.
"""

from pathlib import Path


def path() -> Path:
    """Folder holding the bundled ``*.j2`` templates."""
    return Path(__file__).resolve().parent
