"""The stand-in's event log: one JSON object per line in $UNSLOTH_STANDIN_LOG (nothing when unset)."""

from __future__ import annotations

import json
import os


def record(event: str, **data) -> None:
    path = os.environ.get("UNSLOTH_STANDIN_LOG")
    if not path:
        return
    row = {"event": event, "pid": os.getpid(), "rank": int(os.environ.get("RANK", "0")), **data}
    with open(path, "a", encoding="utf-8") as fh:  # one short append per event: safe across DDP ranks
        fh.write(json.dumps(row, default=str) + "\n")
