"""What the rewards read: completions (plain or conversational) and dataset columns, coerced.

Every function here never raises on model output; :func:`rows` raises ``ValueError`` for a column
whose length differs from the completions' (a configuration mistake, not model output).

The work per completion is bounded: only its first :data:`MAX_COMPLETION_CHARS` characters are
read (:func:`completion_text`), so a 10 MB completion costs what a 32 kB one does. Non-finite
intensities are one case, whatever their spelling (:func:`canonical_nonfinite`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from factory.chains.answers import as_list

__all__ = [
    "MAX_COMPLETION_CHARS", "as_list", "canonical_nonfinite", "completion_text", "finite", "finite01", "rows",
]  # fmt: skip

MAX_COMPLETION_CHARS = 32_768
"""Only this many characters of a completion are read by any reward: 16 times the longest chain
the paper trains on (GRPO completions of at most 2048 tokens, ~4 characters each, ~8 kB), so an
honest completion is never cut; text beyond it (blocks closed there included) does not count. It
bounds the parsers' work on junk (a 10 MB completion of ``<TYPE>`` tags took seconds per reward)."""

_NONFINITE_RE = re.compile(r"\(\s*[-+\u2212]?\s*(?:inf(?:inity)?|nan)\s*\)", re.IGNORECASE)


def canonical_nonfinite(text: str) -> str:
    """``text`` with every non-finite intensity spelled ``(nan)``: ``(inf)``, ``(-inf)``,
    ``(+inf)``, ``(Infinity)``, ``(-nan)`` (huge numbers such as ``1e309`` already read as
    infinite). All count as one case: a type named with an unusable intensity (``|Δs| = 1``)."""
    return _NONFINITE_RE.sub("(nan)", text)


def completion_text(completion: Any, max_chars: int | None = MAX_COMPLETION_CHARS) -> str:
    """The text of a plain or conversational completion (the last assistant turn's text parts),
    cut to its first ``max_chars`` characters (:data:`MAX_COMPLETION_CHARS`; ``None``: all of it).

    Never raises: anything unrecognisable gives ``""`` or its ``str()``.
    """
    text = _completion_text(completion)
    return text if max_chars is None or len(text) <= max_chars else text[:max_chars]


def _completion_text(completion: Any) -> str:
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (bytes, bytearray)):
        return bytes(completion[: 4 * MAX_COMPLETION_CHARS]).decode("utf-8", "replace")
    if isinstance(completion, Mapping):
        content = completion.get("content", completion.get("text", ""))
        return _content_text(content)
    if isinstance(completion, Sequence):
        items = list(completion)
        if all(isinstance(m, Mapping) and "role" in m for m in items) and items:
            assistant = [m for m in items if m.get("role") == "assistant"]
            return _completion_text((assistant or items)[-1])
        return _content_text(items)
    return str(completion)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, Mapping):
                if p.get("text") is not None and p.get("type", "text") == "text":
                    parts.append(str(p["text"]))
                elif "content" in p and p.get("role", "assistant") == "assistant":
                    parts.append(_completion_text(p))
        return "".join(parts)
    return _completion_text(content)


def rows(columns: Mapping[str, Any], name: str, n: int) -> list[Any]:
    """One value of column ``name`` per completion (``None`` where the column is absent).

    A scalar is broadcast; a sequence must have one value per completion (TRL's contract).
    """
    value = columns.get(name)
    if value is None:
        return [None] * n
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise ValueError(
            f"reward column {name!r} has {len(values)} values for {n} completions; "
            "pass one value per completion (as TRL does)."
        )
    return values


def finite(x: Any) -> float | None:
    """``float(x)`` when it is a finite number; ``None`` otherwise (bools and None too)."""
    if isinstance(x, bool) or x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if math.isfinite(v) else None


def finite01(x: Any) -> float | None:
    """A number clamped to [0, 1]; ``None`` for anything non-numeric or non-finite (bools too)."""
    v = finite(x)
    if v is None:
        return None
    return min(1.0, max(0.0, v))
