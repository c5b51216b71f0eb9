"""VLMEvalKit TSV files read as one table: base64 images, index references, options in columns.

VLMEvalKit (open-compass/VLMEvalKit, ``vlmeval/dataset/image_base.py`` and ``vlmeval/smp``)
distributes its benchmarks as tab-separated files, and MMD-Bench, MMMB and R-Bench ship in the
same format. This module reads them with the same conventions, written from their description
(no code of theirs is copied):

* ``image`` holds the base64 text of an encoded image (JPEG or PNG). A *short* cell (at most 64
  characters) is not an image but the ``index`` of another row whose image it reuses (MMBench's
  circular copies); it is resolved one level deep, and a reference to a missing row or to another
  reference is an error of that row only. A cell written as a list literal (``"['<b64>', ...]"``)
  holds several images; it is parsed with :func:`ast.literal_eval` (VLMEvalKit uses ``eval``) and
  the images are shown side by side. Without an ``image`` column, ``image_path`` gives file paths.
* options are the columns named by one capital letter ``A`` ... ``Z``; empty cells are unused
  options (a question may use A-B of A-D).
* ``hint`` is optional; an empty cell, ``nan`` or ``NaN`` means no hint.
* ``index`` becomes an integer when every value looks like one (VLMEvalKit does the same).
* every other column is kept as text (``category``, ``l2-category``, ``split``, ``source``, ...).

Empty cells are ``None``. Deliberate difference: only an empty cell, ``nan`` and ``NaN`` count as
missing; pandas' default would also drop option texts such as ``None``, ``NA`` or ``null``.

::

    from trainers.eval.tsv import read_tsv
    table = read_tsv("MMStar_LOW_LEVEL_HIGH.tsv")
    table.column_names, len(table), table.option_columns, next(iter(table))["image"]
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from factory.errors import InputError

__all__ = ["MAX_REFERENCE_CHARS", "MultiImage", "TsvTable", "read_tsv", "resolve_image_cells"]

MAX_REFERENCE_CHARS = 64
"""An ``image`` cell this short is the ``index`` of the row whose image it reuses (VLMEvalKit's rule)."""

_OPTION_RE = re.compile(r"^[A-Z]$")
_MISSING = ("", "nan", "NaN")


class ImageReferenceError(ValueError):
    """An ``image`` cell that names a row which does not exist or holds no image itself."""


@dataclass(frozen=True)
class MultiImage:
    """Several encoded images of one row (a list cell), shown side by side at a common height.

    Picklable and callable: :meth:`factory.sources.Sample.load_image` calls it and gets one RGB
    array."""

    cells: tuple[Any, ...]

    def __call__(self) -> np.ndarray:
        import base64

        from factory.sources import Sample

        parts = [Sample(f"image {i + 1} of {len(self.cells)}", "", [], "", "", base64.b64decode(c)).load_image()
                 for i, c in enumerate(self.cells)]
        h = max(p.shape[0] for p in parts)
        out = []
        for p in parts:
            if p.shape[0] != h:
                import cv2

                w = max(1, round(p.shape[1] * h / p.shape[0]))
                p = cv2.resize(p, (w, h), interpolation=cv2.INTER_AREA if p.shape[0] > h else cv2.INTER_LINEAR)
            out.append(p)
        return np.concatenate(out, axis=1)


def _cell(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, str) and v in _MISSING:
        return None
    return v


def _list_cell(text: str) -> list[str] | None:
    """``"['a', 'b']"`` → ``["a", "b"]`` (``None`` for any other text)."""
    t = text.strip()
    if not (t.startswith("[") and t.endswith("]")):
        return None
    try:
        value = ast.literal_eval(t)
    except (ValueError, SyntaxError):
        return None
    return [str(x) for x in value] if isinstance(value, (list, tuple)) else None


def _int_like(values: Sequence[Any]) -> bool:
    return bool(values) and all(isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()) for v in values)


class TsvTable:
    """The rows of one VLMEvalKit TSV file, as dicts (see the module docstring).

    Quacks like the ``datasets.Dataset`` the benchmarks read: ``column_names``, ``len()``,
    iteration over row dicts, and ``table[i]``."""

    def __init__(self, rows: list[dict[str, Any]], columns: list[str], path: str):
        self._rows = rows
        self.column_names = columns
        self.path = path

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._rows[i]

    @property
    def option_columns(self) -> tuple[str, ...]:
        """The option columns present, in letter order (``A``, ``B``, ...)."""
        return tuple(sorted(c for c in self.column_names if _OPTION_RE.match(c)))

    def by_index(self) -> dict[Any, dict[str, Any]]:
        """Row dicts keyed by their ``index`` (the first row wins a duplicated index)."""
        out: dict[Any, dict[str, Any]] = {}
        for r in self._rows:
            out.setdefault(r.get("index"), r)
        return out


def resolve_image_cells(rows: list[dict[str, Any]], column: str = "image") -> None:
    """Resolve short reference cells and list cells of ``column`` in place.

    A reference that cannot be resolved becomes an :class:`ImageReferenceError` value in the cell
    (raised when that row is read), so one bad row never stops the others."""
    full = {}
    for r in rows:
        v = r.get(column)
        if isinstance(v, str) and len(v) > MAX_REFERENCE_CHARS:
            full.setdefault(str(r.get("index")).strip(), v)
    for r in rows:
        v = r.get(column)
        if not isinstance(v, str):
            continue
        items = _list_cell(v)
        if items is not None:
            r[column] = items[0] if len(items) == 1 else MultiImage(tuple(items))
            continue
        if len(v) <= MAX_REFERENCE_CHARS:
            key = v.strip()
            if key in full:
                r[column] = full[key]
            else:
                target = "a row that holds no image of its own" if any(
                    str(x.get("index")).strip() == key for x in rows) else "no row"
                r[column] = ImageReferenceError(
                    f"image cell {v!r} is a reference to index {key}, but that is {target} "
                    "(VLMEvalKit resolves one level only); fix the TSV or drop the row"
                )


def read_tsv(path: str | Path) -> TsvTable:
    """Read a VLMEvalKit TSV file (see the module docstring); :class:`factory.errors.InputError`
    naming the file when it cannot be read as one."""
    import pandas as pd

    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"{p}: no such TSV file; pass a VLMEvalKit .tsv file (e.g. MMStar.tsv).")
    try:
        df = pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False, na_values=list(_MISSING[1:]),
                         quoting=0, engine="c")
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not a readable tab-separated file ({type(exc).__name__}: {exc}).") from None
    columns = [str(c) for c in df.columns]
    if "question" not in columns or ("image" not in columns and "image_path" not in columns):
        raise InputError(
            f"{p}: not a VLMEvalKit TSV (columns {columns}); it needs question and image (base64) or image_path."
        )
    rows = [{k: _cell(v) for k, v in zip(columns, rec, strict=True)} for rec in df.itertuples(index=False, name=None)]
    if "index" in columns:
        idx = [r["index"] for r in rows]
        if _int_like([v for v in idx if v is not None]) and all(v is not None for v in idx):
            for r in rows:
                r["index"] = int(str(r["index"]).strip())
    if "image" in columns:
        resolve_image_cells(rows, "image")
    elif "image_path" in columns:
        for r in rows:
            v = r.get("image_path")
            items = _list_cell(v) if isinstance(v, str) else None
            if items is not None:
                r["image_path"] = items[0] if len(items) == 1 else MultiImage(tuple(items))
    return TsvTable(rows, columns, str(p))


def is_tsv(path: str | Path) -> bool:
    return str(path).lower().endswith(".tsv")


def option_columns(columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(c for c in columns if _OPTION_RE.match(c)))


def row_value(row: Mapping[str, Any], key: str) -> Any:
    """A cell, with an :class:`ImageReferenceError` placeholder raised."""
    v = row.get(key)
    if isinstance(v, ImageReferenceError):
        raise v
    return v
