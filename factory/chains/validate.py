"""Checks every generated field passes before it is accepted (distilabel-style: template + validator).

Each check returns ``None`` when the text is acceptable, else a short reason that is both fed
back to the model on regeneration and recorded when the sample finally fails.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from .format import has_tags

REFUSAL = re.compile(
    r"\b(?:i'?m sorry|i am sorry|sorry, but|i apologi[sz]e|"
    r"i (?:can ?not|can'?t|am unable to|'?m unable to|am not able to|'?m not able to|won'?t) "
    r"(?:help|assist|determine|identify|see|view|provide|tell|answer|comply|process|analy[sz]e|access|describe)|"
    r"as an ai\b|as a (?:large )?language model|i do(?: not|n'?t) have (?:the ability|access)|"
    r"(?:unable|not able) to (?:view|see|process|access) (?:the |this |any )?(?:image|picture|photo)s?|"
    r"no (?:image|picture|photo) (?:was|is|has been) (?:provided|attached|shared))",
    re.IGNORECASE,
)
"""First-person refusal or "I cannot see the image" boilerplate (not "the text cannot be read")."""

_TAGLIKE = re.compile(r"<\s*/?\s*[A-Z][A-Z0-9_]{2,}\s*>")
_THINK = re.compile(r"<\s*(think|thinking|reasoning_content)\s*>.*?<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
_THINK_OPEN = re.compile(r"^.*<\s*/\s*(?:think|thinking)\s*>", re.IGNORECASE | re.DOTALL)
_LABEL = re.compile(
    r"^\s*(?:\*\*|#+\s*)?(?:rewritten |scaled |final |the )?(?:influence|reasoning|conclusion|answer|summary|response)"
    r"\s*(?:\*\*)?\s*(?::|\s[-–—]\s)\s*(?:\*\*)?\s*",
    re.IGNORECASE,
)
_QUOTES = (('"', '"'), ("“", "”"), ("'", "'"), ("«", "»"))

NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
).split()


def words(text: str) -> int:
    """Word count used for the length target: whitespace-separated tokens."""
    return len(text.split())


def clean_reply(text: str | None) -> str:
    """Normalise a model reply before validation: drop ``<think>…</think>`` blocks (reasoning
    models on vLLM/Ollama), a leading label such as ``Reasoning:``, wrapping quotes and
    markdown emphasis; collapse whitespace to single spaces (a field is one paragraph)."""
    if not text:
        return ""
    t = _THINK.sub(" ", text)
    t = _THINK_OPEN.sub(" ", t)  # an opening tag lost to truncation of the prompt echo
    t = " ".join(t.split())
    for _ in range(2):
        t = _LABEL.sub("", t, count=1).strip()
        for a, b in _QUOTES:
            if len(t) >= 2 and t.startswith(a) and t.endswith(b) and t.count(a) + (t.count(b) if a != b else 0) == 2:
                t = t[len(a) : -len(b)].strip()
    t = re.sub(r"\*\*(.+?)\*\*", r"\1", t)
    return t.strip()


def _norm(s: str) -> str:
    s = unicodedata.normalize("NFKC", str(s)).lower()
    s = re.sub(r"[^\w\s]", " ", s)
    return " ".join(s.split())


def _variants(answer_text: str) -> list[str]:
    """The normalised answer and, for small numbers, its word/digit twin ("2" ↔ "two")."""
    a = _norm(answer_text)
    out = [a] if a else []
    if a.isdigit() and int(a) < len(NUMBER_WORDS):
        out.append(NUMBER_WORDS[int(a)])
    elif a in NUMBER_WORDS:
        out.append(str(NUMBER_WORDS.index(a)))
    return out


def _contains(haystack: str, needle: str) -> bool:
    return bool(needle) and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack) is not None


MAX_CHARS_PER_WORD = 12
"""A field may hold at most this many characters per allowed word (English averages ~6 with the
space): a "word" of 100,000 characters is not text."""
CONCLUSION_SHARE = 0.5
"""The conclusion (one sentence) may be at most this share of the reasoning's ceiling."""
INFLUENCE_FACTOR = 2
"""The influence (a few sentences, about one per degradation, up to eight degradations) may be this
many times the reasoning's ceiling (the offline template writes up to ~300 words for eight)."""
DRAFT_FACTOR = 4
"""A reasoning draft (before length scaling rewrites it) may be this many times the ceiling."""


def field_limits(length_max: int, tolerance: float) -> dict[str, int]:
    """The most words each generated field may hold, from the length-scaling targets.

    The ceiling is the longest reasoning the length scaling accepts, ``floor(length_max × (1 +
    tolerance))`` with ``length_max`` at least the default 200 (so 250 words with the defaults 200
    and 25 %; a larger ``length_max`` raises every bound, a smaller one lowers none): ``reasoning``
    may not exceed it, ``influence`` (a few sentences about up to eight degradations) twice it
    (500), ``conclusion`` (one sentence) half of it (125). Characters are bounded too
    (:data:`MAX_CHARS_PER_WORD` per word). Any backend's output is checked against these
    (``factory.chains.writer``); a chat model is asked again when it exceeds them. (For a chat
    model the reasoning must moreover lie within the tolerance of its own target.)"""
    from .prompting import LENGTH

    ceiling = max(1, length_bounds(max(int(length_max), LENGTH.hi), tolerance)[1])
    return {
        "influence": INFLUENCE_FACTOR * ceiling,
        "reasoning": ceiling,
        "conclusion": max(1, int(ceiling * CONCLUSION_SHARE)),
    }


def check_bounds(field: str, text: str, max_words: int) -> str | None:
    """``None`` when ``text`` holds at most ``max_words`` words and ``max_words ×``
    :data:`MAX_CHARS_PER_WORD` characters; else the reason (the text itself is never quoted)."""
    max_chars = max_words * MAX_CHARS_PER_WORD
    if len(text) > max_chars:
        return f"{field}: {len(text):,} characters, over the limit of {max_chars:,} ({max_words} words)"
    n = words(text)
    if n > max_words:
        return f"{field}: {n:,} words, over the limit of {max_words}"
    return None


def check_text(field: str, text: str | None, max_words: int | None = None) -> str | None:
    """Common checks: non-empty, within ``max_words`` (:func:`check_bounds`), no chain tags, no
    refusal boilerplate. Returns a reason or None."""
    if text is None or not text.strip():
        return f"{field}: empty"
    if max_words is not None and (reason := check_bounds(field, text, max_words)):
        return reason
    if has_tags(text) or _TAGLIKE.search(text):
        return f"{field}: contains chain tags"
    if REFUSAL.search(text):
        return f"{field}: refusal boilerplate"
    if not re.search(r"\w", text):
        return f"{field}: no words"
    return None


def check_conclusion(text: str | None, answer_text: str, answer: str, choices: Sequence[str]) -> str | None:
    """The conclusion must state the ground-truth answer (its text, or "option N" for multiple
    choice) and must not name a different option number."""
    reason = check_text("conclusion", text)
    if reason:
        return reason
    n = _norm(text or "")
    idx = str(answer).strip()
    if choices:
        for m in re.finditer(r"\b(?:option|choice)\s*(?:number\s*|no\s*)?(\d+)\b", n):
            if m.group(1) != idx:
                return f"conclusion: names option {m.group(1)}, but the answer is option {idx} ({answer_text!r})"
        # A longer option that contains the answer ("red" in "red and white") does not count.
        a = _norm(answer_text)
        for c in choices:
            cn = _norm(c)
            if cn != a and _contains(cn, a):
                n = re.sub(rf"(?<!\w){re.escape(cn)}(?!\w)", " ", n)
    if any(_contains(n, v) for v in _variants(answer_text)):
        return None
    if choices and re.search(rf"\b(?:option|choice|answer)\s*(?:is\s*)?(?:number\s*|no\s*)?{re.escape(idx)}\b", n):
        return None
    return f"conclusion: does not state the answer {answer_text!r}"


def check_length(text: str | None, target: int, tolerance: float) -> str | None:
    """The scaled reasoning must be within ``target × (1 ± tolerance)`` words."""
    reason = check_text("reasoning", text)
    if reason:
        return reason
    n = words(text or "")
    lo, hi = length_bounds(target, tolerance)
    if not lo <= n <= hi:
        return f"reasoning: {n} words, outside {target} ± {round(tolerance * 100)} % ({lo}..{hi} words)"
    return None


def length_bounds(target: int, tolerance: float) -> tuple[int, int]:
    """Inclusive word-count bounds ``ceil(target (1 - tol)) .. floor(target (1 + tol))``."""
    import math

    return math.ceil(target * (1 - tolerance) - 1e-9), math.floor(target * (1 + tolerance) + 1e-9)
