"""``predictions.jsonl`` of an evaluation run: how it is read back and how it is appended to.

A run folder is resumed from this file, so reading it must survive whatever a kill, a disk, an
editor or a careless merge left in it:

* a torn last line (a killed run) is cut off;
* a line that is not UTF-8, not JSON, valid JSON of the wrong shape (``null``, a list, a number,
  an object without the fields the reports read) is **moved** to ``predictions.rejected.jsonl``
  (byte for byte: nothing is lost), recorded in ``errors.jsonl`` with its line number, and its
  answer, if it named one, is asked again;
* a second line for the same (question, level) is moved there too: every answer counts once.

:func:`load_predictions` does this (and rewrites the file atomically when it had to move lines);
:func:`append_lines` appends whole, synced lines with any live secret of the environment masked
(an endpoint that echoes the API key never gets it written).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.layout import atomic_write

__all__ = [
    "REJECTED", "REQUIRED_FIELDS", "TYPED_FIELDS", "Loaded",
    "append_lines", "load_predictions", "locked", "row_problem",
]  # fmt: skip

log = logging.getLogger("robust_r1.evaluate")

REJECTED = "predictions.rejected.jsonl"
"""Where unreadable lines of ``predictions.jsonl`` are moved (raw bytes, one per line)."""

_NUMBER = (int, float)
_NONE = type(None)
REQUIRED_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "level": _NUMBER,
    "output": (str,),
    "correct": (*_NUMBER, _NONE),
}
"""The fields every prediction row has, whatever scored it, with their JSON types."""
TYPED_FIELDS: dict[str, tuple[type, ...]] = {
    "has_type": (bool,),
    "types": (list,),
    "format_ok": (bool,),
    "degradation": (str, _NONE),
    "stage": (str, _NONE),
    "recipe": (dict, _NONE),
}
"""Fields the answer matcher writes (another scorer may not): when present, of these types."""


@dataclass
class Loaded:
    """What :func:`load_predictions` found."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    """The valid rows, one per (question, level), in file order."""
    problems: list[dict[str, Any]] = field(default_factory=list)
    """``errors.jsonl`` records (stage ``predictions``) of the lines moved out, with their line numbers."""

    @property
    def done(self) -> set[tuple[str, float]]:
        """(question id, level rounded to 2 decimals) pairs answered."""
        return {(r["id"], round(float(r["level"]), 2)) for r in self.rows}


def row_problem(row: Any) -> str | None:
    """Why ``row`` (parsed JSON) is not a prediction row; ``None`` when it is one."""
    if not isinstance(row, dict):
        kind = "null" if row is None else type(row).__name__
        return f"a JSON {kind}, not a prediction row (an object)"
    for name, types in (*REQUIRED_FIELDS.items(), *TYPED_FIELDS.items()):
        if name not in row:
            if name in REQUIRED_FIELDS:
                return f"no field {name!r}"
            continue
        value = row[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            names = " or ".join("null" if t is _NONE else t.__name__ for t in types)
            return f"field {name!r} is {type(value).__name__}, not {names}"
    if not row["id"]:
        return "field 'id' is empty"
    level = float(row["level"])
    if not math.isfinite(level) or not 0.0 <= level <= 1.0:
        return f"field 'level' is {row['level']!r}, not an intensity in [0, 1]"
    if row["correct"] is not None and not math.isfinite(float(row["correct"])):
        return f"field 'correct' is {row['correct']!r}, not a finite score"
    return None


def _problem(path: Path, number: int, what: str, row: Any = None) -> dict[str, Any]:
    sid = row.get("id") if isinstance(row, dict) and isinstance(row.get("id"), str) else None
    level = row.get("level") if isinstance(row, dict) and isinstance(row.get("level"), _NUMBER) else None
    again = "; its answer is asked again" if sid else ""
    text = f"{path.name} line {number}: {what}; moved to {REJECTED}{again}"
    return {"id": sid, "level": level, "stage": "predictions", "error": text[:500]}


def load_predictions(path: str | os.PathLike, *, repair: bool = True) -> Loaded:
    """Read ``predictions.jsonl`` (see the module docstring); ``Loaded([], [])`` when it is missing.

    With ``repair`` (what a resuming run does) a torn last line is cut off and the lines that are
    not valid, unique prediction rows are moved to :data:`REJECTED`, the file being rewritten
    atomically; without it the file is only read."""
    p = Path(path)
    if not p.is_file():
        return Loaded()
    data = p.read_bytes()
    end = data.rfind(b"\n") + 1
    if repair and end < len(data):
        log.warning("%s: cutting off a torn last line (an interrupted run)", p)
        with open(p, "r+b") as f:
            f.truncate(end)
    out = Loaded()
    kept: list[bytes] = []
    rejected: list[bytes] = []
    seen: dict[tuple[str, float], int] = {}
    for number, raw in enumerate(data[:end].split(b"\n")[:-1], 1):
        if not raw.strip():
            continue
        row: Any = None
        try:
            row = json.loads(raw.decode("utf-8"))
            what = row_problem(row)
        except UnicodeDecodeError as exc:
            what = f"not UTF-8 text (byte {exc.start})"
        except ValueError as exc:
            what = f"not JSON ({exc})"
        if what is None:
            key = (row["id"], round(float(row["level"]), 2))
            if key in seen:
                what = f"a second answer for {key[0]!r} at level {key[1]} (the first, line {seen[key]}, is kept)"
                row = None  # already answered: nothing to ask again
            else:
                seen[key] = number
                out.rows.append(row)
                kept.append(raw)
                continue
        log.warning("%s line %d: %s; moved to %s", p, number, what, REJECTED)
        out.problems.append(_problem(p, number, what, row))
        rejected.append(raw)
    if rejected and repair:
        with open(p.with_name(REJECTED), "ab") as f:
            f.write(b"".join(r + b"\n" for r in rejected))
            f.flush()
            os.fsync(f.fileno())
        atomic_write(p, b"".join(r + b"\n" for r in kept))
    return out


def append_lines(path: str | os.PathLike, lines: Sequence[str]) -> None:
    """Append whole JSON lines, flushed and synced (a kill leaves at most one torn line, cut off
    on resume); any live secret of the environment is masked first (``factory.secrets``)."""
    if not lines:
        return
    from factory.secrets import MASK, live_secrets

    text = "".join(lines)
    for secret in live_secrets():
        text = text.replace(secret, MASK)
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def locked(out: str | os.PathLike, purpose: str = "eval") -> Iterator[None]:
    """Hold the run folder's lock (``factory.lock.OutputLock``: one run per folder). A folder the
    lock had to create is removed again when the run fails before writing anything into it (a
    benchmark that cannot be loaded leaves no empty folder behind)."""
    from factory.lock import LOCK_NAME, OutputLock

    folder = Path(out)
    existed = folder.exists()
    try:
        with OutputLock(folder, purpose):
            yield
    except BaseException:
        if not existed and [p.name for p in folder.iterdir()] == [LOCK_NAME]:
            with contextlib.suppress(OSError):
                (folder / LOCK_NAME).unlink()
                folder.rmdir()
        raise
