"""``python -m factory.studio [--dataset ...] [--model ... | --endpoint ...] [--host ...] [--port N] [--share]``."""

from __future__ import annotations

from factory.cli.studio import main

if __name__ == "__main__":  # pragma: no cover - exercised by the browser tests through a subprocess
    main()
