"""The embedded default: the bundled photos + QA set, template chains, report and card."""

from __future__ import annotations

from pathlib import Path

from factory.degrade.registry import DEFAULT_STYLE

from .config import BuildConfig, BuildSummary
from .runner import build


def demo(
    out: str | Path = "demo-output",
    *,
    seed: int = 0,
    workers: int = 1,
    progress: bool = True,
    style: str = DEFAULT_STYLE,
) -> BuildSummary:
    """Build the demo dataset into ``out`` (offline, seconds); ``robust-r1 demo`` calls this."""
    cmd = f"robust-r1 demo --out {out}" + (f" --seed {seed}" if seed else "")
    cmd += f" --style {style}" if style != DEFAULT_STYLE else ""
    cfg = BuildConfig(source="demo", out=str(out), seed=seed, workers=workers, command=cmd, style=style)
    return build(cfg, progress=progress)
