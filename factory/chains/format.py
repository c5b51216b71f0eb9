"""The Robust-R1 chain format: render and parse (the contract of factory, trainers and evaluation).

::

    <TYPE>lens blur(0.31), jpeg compression(0.58)<TYPE_END>
    <INFLUENCE>how the damage affects what can be seen<INFLUENCE_END>
    <REASONING>reasoning about the question as if the image were clean<REASONING_END>
    <CONCLUSION>short summary leading to the answer<CONCLUSION_END>
    <ANSWER>final answer<ANSWER_END>

Rendering is strict (canonical names, two decimals, no space before "(", five blocks in order).
Parsing is tolerant: tags in any case, ``</TYPE>`` or ``<TYPE END>`` closings, a missing closing
tag (the block then runs to the next tag), extra whitespace, the paper's alias names; it reports
what is missing, repeated, empty or out of order instead of raising.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from factory.degrade.registry import canonical_name, normalize_name

FIELDS: tuple[str, ...] = ("type", "influence", "reasoning", "conclusion", "answer")
"""The five blocks, in order."""

NO_DAMAGE = "none"
"""The TYPE of an undamaged image."""

TAGS: dict[str, tuple[str, str]] = {f: (f"<{f.upper()}>", f"<{f.upper()}_END>") for f in FIELDS}

_FIELD_ALT = "|".join(f.upper() for f in FIELDS)
# Opening tag: <TYPE>; closing: <TYPE_END>, <TYPE END>, <TYPE-END>, </TYPE>.
# (``<\s*(?:/\s*)?`` rather than ``<\s*/?\s*``: two adjacent ``\s*`` made a "<" followed by a long
# run of spaces quadratic, 10 s for 20 000 spaces.)
_TAG_RE = re.compile(
    rf"<\s*(?:(?P<close>/)\s*)?(?P<name>{_FIELD_ALT})(?P<end>[\s_\-]*END)?\s*>", re.IGNORECASE
)
# name(intensity): a name of words (letters, digits, spaces, - and _) then a number in brackets.
# Matched in linear time: the bracketed number is found first, then the name is the run of name
# characters just before it, from its first letter (one regex with a lazy name tried from every
# start position was quadratic: a 12 kB TYPE block of words took a second, 48 kB seventeen).
_VALUE_RE = re.compile(
    r"\(\s*(?P<val>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)\s*\)", re.IGNORECASE
)
_NAME_CHAR_RE = re.compile(r"[\w\- ]")
_LETTER_RE = re.compile(r"[^\W\d_]")


def _pairs(text: str) -> Iterable[tuple[str, str]]:
    """``(name, value)`` for every ``name(value)`` item, left to right."""
    for m in _VALUE_RE.finditer(text):
        end = m.start()
        while end > 0 and text[end - 1].isspace():
            end -= 1
        start = end
        while start > 0 and _NAME_CHAR_RE.match(text[start - 1]):
            start -= 1
        first = _LETTER_RE.search(text, start, end)
        if first is not None:
            yield text[first.start() : end], m.group("val")


@dataclass(frozen=True)
class TypePair:
    """One ``name(intensity)`` item of a TYPE block."""

    name: str
    """Canonical degradation name when known, else the normalised text as written."""
    intensity: float
    """As written (may be outside [0, 1] or non-finite in model output; check before use)."""
    known: bool
    """Whether ``name`` is a catalogue degradation (aliases resolved)."""


def format_intensity(x: float) -> str:
    """Two decimals, clamped to [0, 1]: ``0.3`` → ``"0.30"``."""
    if not math.isfinite(x):
        raise ValueError(f"chain TYPE: intensity must be a finite number, got {x!r}.")
    return f"{min(1.0, max(0.0, x)):.2f}"


def format_type(pairs: Iterable[tuple[str, float]]) -> str:
    """``[("lens blur", 0.31), ("compression", 0.58)]`` → ``"lens blur(0.31), jpeg compression(0.58)"``.

    Names are written canonically (aliases resolved); unknown names raise ValueError. An image
    without damage has the TYPE ``none`` (:data:`NO_DAMAGE`), which parses back to no pairs.
    """
    items = []
    for name, value in pairs:
        canon = canonical_name(name)
        if canon is None:
            raise ValueError(f"chain TYPE: unknown degradation {name!r}; see `robust-r1 degradations`.")
        items.append(f"{canon}({format_intensity(float(value))})")
    return ", ".join(items) if items else NO_DAMAGE


@functools.lru_cache(maxsize=1)
def _longest_alias() -> int:
    """Words in the longest accepted degradation name (bounds the search for a name's start)."""
    from factory.degrade.registry import alias_table

    return max(len(a.split()) for a in alias_table())


def parse_type(text: str | None) -> list[TypePair]:
    """Parse a TYPE block tolerantly: aliases and case are normalised; junk between items ignored."""
    if not text:
        return []
    out = []
    for name, value in _pairs(str(text)):
        raw = normalize_name(name)
        raw = re.sub(r"^(and|or|with)\s+", "", raw)
        try:
            val = float(value)
        except (OverflowError, ValueError):
            val = float("nan")
        canon = canonical_name(raw)
        if canon is None:  # leading words that are not part of the name: "I see lens blur(0.3)"
            words = raw.split()
            longest = _longest_alias()
            tails = (" ".join(words[k:]) for k in range(max(1, len(words) - longest), len(words)))
            canon = next((c for t in tails if (c := canonical_name(t)) is not None), None)
        out.append(TypePair(canon or raw, val, canon is not None))
    return out


def render_chain(
    type_: str | Sequence[tuple[str, float]],
    influence: str,
    reasoning: str,
    conclusion: str,
    answer: str,
) -> str:
    """Render the five blocks, one per line. ``type_`` is a TYPE string or ``(name, s)`` pairs."""
    type_text = type_ if isinstance(type_, str) else format_type(type_)
    values = dict(zip(FIELDS, (type_text, influence, reasoning, conclusion, answer), strict=True))
    lines = []
    for f in FIELDS:
        v = str(values[f]).strip()
        if _TAG_RE.search(v):
            raise ValueError(f"chain {f.upper()}: text contains a chain tag; remove tags from {v[:60]!r}.")
        o, c = TAGS[f]
        lines.append(f"{o}{v}{c}")
    return "\n".join(lines)


@dataclass
class ParsedChain:
    """What :func:`parse_chain` found. Fields are ``None`` when their block is missing."""

    type: str | None = None
    influence: str | None = None
    reasoning: str | None = None
    conclusion: str | None = None
    answer: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {f: 0 for f in FIELDS})
    """How many times each opening tag appears."""
    order: list[str] = field(default_factory=list)
    """Fields in the order their first opening tag appears."""
    unclosed: list[str] = field(default_factory=list)
    """Blocks whose closing tag is missing (their text ran to the next tag or the end)."""

    @property
    def missing(self) -> list[str]:
        return [f for f in FIELDS if getattr(self, f) is None]

    @property
    def empty(self) -> list[str]:
        return [f for f in FIELDS if getattr(self, f) is not None and not getattr(self, f).strip()]

    @property
    def repeated(self) -> list[str]:
        return [f for f in FIELDS if self.counts.get(f, 0) > 1]

    @property
    def in_order(self) -> bool:
        present = [f for f in FIELDS if f in self.order]
        return self.order == present

    @property
    def is_complete(self) -> bool:
        """All five blocks once each, closed, in order, non-empty: the strict format."""
        return (
            not self.missing
            and not self.empty
            and not self.repeated
            and not self.unclosed
            and self.in_order
            and len(self.order) == len(FIELDS)
        )

    @property
    def type_pairs(self) -> list[TypePair]:
        return parse_type(self.type)

    def problems(self) -> list[str]:
        """Human-readable list of what deviates from the strict format (empty when complete)."""
        out = []
        if self.missing:
            out.append("missing: " + ", ".join(self.missing))
        if self.empty:
            out.append("empty: " + ", ".join(self.empty))
        if self.repeated:
            out.append("repeated: " + ", ".join(self.repeated))
        if self.unclosed:
            out.append("unclosed: " + ", ".join(self.unclosed))
        if not self.in_order:
            out.append("out of order: " + " → ".join(self.order))
        return out

    def as_dict(self) -> dict[str, str | None]:
        return {f: getattr(self, f) for f in FIELDS}


def parse_chain(text: object) -> ParsedChain:
    """Parse a (possibly malformed) chain. Never raises; the first occurrence of a block wins."""
    result = ParsedChain()
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    tags = list(_TAG_RE.finditer(text))
    for i, m in enumerate(tags):
        name = m.group("name").lower()
        is_close = bool(m.group("close") or m.group("end"))
        if is_close:
            continue
        result.counts[name] += 1
        if name not in result.order:
            result.order.append(name)
        if getattr(result, name) is not None:
            continue
        start = m.end()
        content_end = len(text)
        closed = False
        for m2 in tags[i + 1 :]:
            if m2.group("name").lower() == name and (m2.group("close") or m2.group("end")):
                content_end, closed = m2.start(), True
                break
            if not (m2.group("close") or m2.group("end")):  # next block opens first
                content_end = m2.start()
                break
        if not closed:
            result.unclosed.append(name)
        setattr(result, name, text[start:content_end].strip())
    return result


_NONE_RE = re.compile(rf"[\W_]*{NO_DAMAGE}[\W_]*", re.IGNORECASE)
_MAX_NAME_CHARS = 128
"""In a bounded :func:`read_type`, a run of name characters (letters, digits, spaces, ``-``, ``_``)
longer than this is cut to its last this-many characters before parsing: no degradation name is
that long, and the parser's work per item grows with the run."""
_LONG_RUN_RE = re.compile(rf"[\w\- ]{{{_MAX_NAME_CHARS + 1},}}")


@dataclass(frozen=True)
class TypeClaims:
    """What the TYPE block of a (model-written) chain claims, read for scoring: :func:`read_type`."""

    pairs: tuple[tuple[str, float | None], ...]
    """The ``name(intensity)`` items other than ``none``, in order: names as :func:`parse_type`
    gives them, intensities as written or ``None`` when not a finite number."""
    says_none: bool
    """The block is just ``none`` (punctuation around it allowed): an undamaged image."""
    mentions_none: bool
    """``none`` occurs anywhere in the block (a lenient reading of "no damage")."""


def read_type(text: object, *, max_chars: int | None = None, max_items: int | None = None) -> TypeClaims | None:
    """The claims of the TYPE block of ``text`` (a chain); ``None`` when it has no non-empty TYPE block.

    The one reading of a TYPE block for scoring (the rewards' r_deg and ground truth, the
    evaluation's type scores). Bounded with ``max_chars`` (only that many characters of the block
    are read, and runs of name characters are cut to their last 128) and ``max_items`` (only the
    first that many items are kept), for model output of any size."""
    block = parse_chain(text).type
    if block is None or not block.strip():
        return None
    if max_chars is not None:
        block = _LONG_RUN_RE.sub(lambda m: m.group(0)[-_MAX_NAME_CHARS:], block[:max_chars])
    pairs = [
        (p.name, p.intensity if math.isfinite(p.intensity) else None) for p in parse_type(block) if p.name != NO_DAMAGE
    ]
    if max_items is not None:
        pairs = pairs[:max_items]
    return TypeClaims(tuple(pairs), bool(_NONE_RE.fullmatch(block)), NO_DAMAGE in block.lower())


def strip_tags(text: str) -> str:
    """Remove every chain tag from ``text`` (for validation of generated fields)."""
    return _TAG_RE.sub(" ", text)


def has_tags(text: str) -> bool:
    return bool(_TAG_RE.search(text or ""))
