"""What the benchmarks print about the machine they ran on (shared by the bench scripts)."""

from __future__ import annotations

import importlib
import os
import platform


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def machine(*packages: str) -> str:
    """``CPU, N logical CPUs; Python X, pkg version, ...`` for the packages named."""
    versions = [f"Python {platform.python_version()}"]
    for name in packages:
        mod = importlib.import_module(name)
        versions.append(f"{getattr(mod, '__display_name__', name)} {mod.__version__}")
    return f"{cpu_name()}, {os.cpu_count()} logical CPUs; {', '.join(versions)}"


def load() -> str:
    """The 1 / 5 / 15 minute load averages."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"
