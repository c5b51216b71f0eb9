"""Checks every generated field passes before it is accepted (distilabel-style: template + validator)."""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from .format import has_tags

REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i can(?:no|')t (?:help|assist|determine|see|provide)|i am unable|i'm unable|"
    r"as an ai\b|as a language model|i do not have the ability|cannot assist with)",
    re.IGNORECASE,
)


def words(text: str) -> int:
    return len(text.split())


def _norm(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).lower()
    s = re.sub(r"[^\w\s]", " ", s)
    return " ".join(s.split())


def check_text(field: str, text: str | None) -> str | None:
    """Common checks: non-empty, no chain tags, no refusal boilerplate. Returns a reason or None."""
    if text is None or not text.strip():
        return f"{field}: empty"
    if has_tags(text) or re.search(r"<\s*/?\s*[A-Z_]{3,}\s*>", text):
        return f"{field}: contains chain tags"
    if REFUSAL.search(text):
        return f"{field}: refusal boilerplate"
    return None


def check_conclusion(text: str | None, answer_text: str, answer: str, choices: Sequence[str]) -> str | None:
    """The conclusion must state the ground-truth answer (its text, or its option number)."""
    reason = check_text("conclusion", text)
    if reason:
        return reason
    n = _norm(text or "")
    if answer_text and _norm(answer_text) and re.search(rf"(?<!\w){re.escape(_norm(answer_text))}(?!\w)", n):
        return None
    if choices and re.search(rf"\b(option|choice|answer)\s*(is\s*)?{re.escape(str(answer))}\b", n):
        return None
    return f"conclusion: does not state the answer {answer_text!r}"


def check_length(text: str | None, target: int, tolerance: float) -> str | None:
    reason = check_text("reasoning", text)
    if reason:
        return reason
    n = words(text or "")
    lo, hi = target * (1 - tolerance), target * (1 + tolerance)
    if not lo <= n <= hi:
        return f"reasoning: {n} words, outside {target} ± {int(tolerance * 100)} % ({lo:.0f}..{hi:.0f})"
    return None
