"""Which option is the answer: the one resolver of stored answers, and the matcher of model output.

Two questions, one module (the factory owns the answer contract; the trainers' rewards and the
evaluation import it, never the reverse):

* :func:`option_index` resolves an answer *as stored or typed* (a dataset's label, a benchmark's
  answer column, a person's ``--answer``) to a 0-based option. It runs a pipeline of *readers*
  chosen by a format (:data:`FORMATS`): ``index``, ``letter``, ``text``, ``auto`` (the benchmark
  formats), ``typed`` (what a person types: an index, the option's text in any case, a letter)
  and ``truth`` (the rewards' ground truth: an index, else whatever the matcher reads).
* :func:`normalize_choice` reads *free-form model output* ("The answer is (B)", "a cat", "B,
  because ...", ``\\boxed{B}``) as an option, through the pipeline of :data:`MATCHERS`, under the
  option labels the prompt showed (:data:`LABELS`: ``index`` or ``letter``);
  :func:`score_answer` scores one predicted answer against the ground truth (options, A-OKVQA
  direct answers or an open answer).

Both pipelines share one convention: a reader returns ``None`` when it does not apply (the next
reader is asked), or an index, which decides; an index outside the options (for instance
:data:`NO_OPTION`) means "this names no option" and the answer is ``None``. A new way of reading
answers is one function added to :data:`READERS` (and a format) or inserted into :data:`MATCHERS`.
The rules, the worked cases and how they differ from VLMEvalKit's are in docs/answer-matching.md.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FORMATS",
    "LABELS",
    "MATCHERS",
    "NO_OPTION",
    "READERS",
    "Reading",
    "answers_match",
    "as_list",
    "label_index",
    "normalize_choice",
    "norm_text",
    "option_index",
    "score_answer",
]

NO_OPTION = -1
"""What a reader returns for a value it recognises that names no option (it stops the pipeline)."""

MAX_ANSWER_CHARS = 2000
"""An answer longer than this keeps its first 500 and last 1,500 characters before matching (a
leading label and a closing "the answer is ..." both survive; this bounds the work)."""

LABELS = ("index", "letter")
"""How the prompt labelled the options, which decides what a bare number in an answer means:

* ``index``: options shown as ``0. x 1. y ...``; a number is the option's 0-based index (the
  Robust-R1 chain format: ``<ANSWER>`` holds the index). The ``robust`` and ``reference`` prompts.
* ``letter``: options shown as ``A. x B. y ...``; numbers are never labels, a bare number is a
  value matched to the option with that text (options "2 / 3 / 4 / 5", answer "3": the option
  "3"), as VLMEvalKit and lmms-eval read it. The ``plain`` prompt.

Letters are labels under both (A = 0)."""


def as_list(value: Any) -> list[Any] | None:
    """A list column value (list, tuple, numpy/pyarrow array, JSON text) as a list, else ``None``."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


# ---------------------------------------------------------------- normalised text

_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_NUMBER_WORDS = {w: i for i, w in enumerate(_UNITS)}
_TENS = {
    w: 10 * i
    for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split())
    if i >= 2
}
_TENS_DIGITS = {str(v) for v in _TENS.values()}
_ARTICLES = {"a", "an", "the"}
_TOKEN_RE = re.compile(r"[^\W_]+|[.!?;:\n]")
"""Words, and the punctuation that starts a new sentence (everything else separates words)."""
_BOUNDARY = frozenset(".!?;:\n")
_TRAILING_ZEROS_RE = re.compile(r"(?<=\d)\.0+(?![0-9])")
_THOUSANDS_RE = re.compile(r"(?<=[0-9]),(?=[0-9]{3}(?![0-9]))")
_NUMBER_RE = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[-+]?[0-9]+)?")
_ANSWER_PREFIX_RE = re.compile(r"(?:the\s+)?(?:final\s+|correct\s+)?answer\s*(?:is\b|:|=)?\s*", re.IGNORECASE)


def norm_text(s: Any) -> str:
    """Words of ``s`` for matching: NFKC, case-folded, punctuation dropped, number words as digits
    ("twenty-one" → "21"), "3.0" → "3", "1,000" → "1000". Only ``\\w`` and single spaces.

    Articles are dropped only where they are articles: "a", "an", "the" followed by a word ("a
    cat" → "cat"), but a capital "A" only at the start of a sentence ("A cat." → "cat"), so the
    letter in "Lane A", "Lane A." and "Lane A is closed" is kept ("lane a")."""
    t = unicodedata.normalize("NFKC", str(s))
    t = _TRAILING_ZEROS_RE.sub("", _THOUSANDS_RE.sub("", t))
    tokens = _TOKEN_RE.findall(t)
    words: list[str] = []
    start = True
    for k, tok in enumerate(tokens):
        if tok in _BOUNDARY:
            start = True
            continue
        w = tok.casefold()
        followed = k + 1 < len(tokens) and tokens[k + 1] not in _BOUNDARY
        at_start, start = start, False
        if w in _ARTICLES and followed and (tok != "A" or at_start):
            continue
        if w in _NUMBER_WORDS:
            unit = _NUMBER_WORDS[w]
            if unit < 10 and words and words[-1] in _TENS_DIGITS:  # "twenty one" → "21"
                words[-1] = str(int(words[-1]) + unit)
                continue
            w = str(unit)
        elif w in _TENS:
            w = str(_TENS[w])
        words.append(w)
    return " ".join(words)


def _as_number(s: Any) -> float | None:
    """A finite number written as digits or words ("3", "3.0", "three", "1,000", "2e3"), else ``None``."""
    t = unicodedata.normalize("NFKC", str(s)).casefold().strip().rstrip(".!")
    if not t or len(t) > 64:
        return None
    t = _THOUSANDS_RE.sub("", t)
    if _NUMBER_RE.fullmatch(t):
        v = float(t)
    else:
        words = norm_text(t).split()
        if len(words) != 1 or not re.fullmatch(r"[0-9]{1,15}", words[0]):
            return None
        v = float(words[0])
    return v if math.isfinite(v) else None


def _strip_answer_prefix(s: str) -> str:
    m = _ANSWER_PREFIX_RE.match(s.strip())
    return s.strip()[m.end() :] if m and m.end() < len(s.strip()) else s.strip()


_EXPLANATION_RE = re.compile(r"\s*[,;]?\s+(?:because|since)\b", re.IGNORECASE)
"""Where an explanation starts after an open answer ("3, because ...")."""


def _open_core(predicted: str, truth: str) -> str:
    """The answer part of an open answer: the last ``\\boxed{...}`` if any, without a trailing
    explanation ("STOP, because ..." -> "STOP"), unless the ground truth itself explains."""
    boxed = _BOXED_RE.findall(predicted)
    if boxed:
        predicted = boxed[-1]
    if not _EXPLANATION_RE.search(" " + truth):
        head = _EXPLANATION_RE.split(predicted, maxsplit=1)[0]
        predicted = head if head.strip() else predicted
    return predicted


def answers_match(predicted: Any, truth: Any) -> bool:
    """Open-answer equality: numbers by value, yes/no by the first word, else normalised words
    (after :func:`_open_core`: ``\\boxed{3}`` and "3, because ..." read as "3")."""
    g = str(truth)
    p = _strip_answer_prefix(unicodedata.normalize("NFKC", str(predicted))[:MAX_ANSWER_CHARS])
    p = _strip_answer_prefix(_open_core(p, g))
    a, b = _as_number(p), _as_number(g)
    if a is not None and b is not None:
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    np_, ng = norm_text(p), norm_text(g)
    if not np_ or not ng:
        return False
    if ng in ("yes", "no"):
        return np_.split()[0] == ng
    return np_ == ng


def label_index(label: str, n: int, labels: str = "index") -> int | None:
    """A 0-based index from an option label: letters A = 0, B = 1, ... (any case); digits as they
    are under ``labels="index"`` and never under ``"letter"``; ``None`` outside ``0..n-1``."""
    if label.isdigit():
        if labels != "index":
            return None
        i = int(label)
    elif len(label) == 1 and label.isascii() and label.isalpha():
        i = ord(label.lower()) - ord("a")
    else:
        return None
    return i if 0 <= i < n else None


# ---------------------------------------------------------------- the matcher (model output)

_LABEL = r"(?:[A-Za-z]|[0-9]{1,3})"
_BARE_RE = re.compile(rf"[(\[]?\s*({_LABEL})\s*[)\]]?\s*[.:,;!?]?")
_HEAD_RE = re.compile(rf"([(\[])?\s*({_LABEL})(?![A-Za-z0-9])\s*([)\]])?(?=$|[\s.,:;!?/])")
_LEAD_RE = re.compile(rf"([(\[])?\s*({_LABEL})(?![A-Za-z0-9])\s*([)\]])?")
_ENUM_RE = re.compile(rf"(?:^|(?<=\s))[(\[]?({_LABEL})[.)\]]\s+(?=\S)")
"""An enumerated option ("B. x", "(2) x", "c) x"): two different ones mean a copy of the list."""
_ANSWER_CUE_RE = re.compile(
    r"\b(?:final\s+|correct\s+|right\s+|best\s+)?answer\b(?:\s+(?:to|for)\s+(?:the|this)\s+question)?"
    r"(?:\s+(?:is|would\s+be|should\s+be|will\s+be|must\s+be|seems\s+to\s+be))?\s*(?:[:=\-]\s*)?",
    re.IGNORECASE,
)
_OPTION_CUE_RE = re.compile(
    r"\b(?:option|choice|letter)\b(?:\s+(?:is|would\s+be|should\s+be|will\s+be|must\s+be))?\s*(?:[:=\-]\s*)?",
    re.IGNORECASE,
)
_CHOOSING_RE = re.compile(
    r"\b(?:correct|right|best|final|likely|answer|choose|chose|choosing|select|selected|pick|picked|go\s+with)"
    r"\s+(?:(?:is|the|an?|would\s+be)\s+)*$",
    re.IGNORECASE,
)
"""Words before "option X" that make it a choice ("the correct option is B", "I choose option 2")."""
_NEGATED_RE = re.compile(r"\s*(?:is|are|seems|looks)?\s*(?:not\b|n't\b|wrong|incorrect|false|unlikely|ruled\s+out)",
                         re.IGNORECASE)
_HEDGE_RE = re.compile(rf"\s*(?:,|/|&|\bor\b|\band\b)\s*(?:maybe\s+|possibly\s+|perhaps\s+)?[(\[]?({_LABEL})[)\]]?"
                       r"(?![A-Za-z0-9])", re.IGNORECASE)
_CLOSES_RE = re.compile(r"\s*(?:$|[.,;:!?)\]]|(?:because|since|as|is|would|should|seems|fits|matches|best)\b)",
                        re.IGNORECASE)
"""What may follow the label of a choice that opens the answer ("Option 2.", "Option B is correct")."""
_OPTION_WORD_RE = re.compile(r"(?:the\s+)?(?:option|choice|letter)\s+", re.IGNORECASE)
_CLAUSE_END_RE = re.compile(r"[;!?\n]|\.(?=\s|$)")  # a sentence end, not a decimal point
_SENTENCE_END_RE = re.compile(r"(?:[.!?](?=\s|$)|\n)\s*")
_BOXED_RE = re.compile(r"\\boxed\s*\{([^{}]*)\}")
_LATEX_WRAP_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox|fbox)\s*\{([^{}]*)\}")
_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_MARKUP_RE = re.compile(r"\\[()\[\]]|\*+|`+|\$+|(?<![^\W_])_+|_+(?![^\W_])|^\s*#+\s*|^\s*>\s*", re.MULTILINE)
_QUOTES = str.maketrans("", "", "\"“”„«»")
_CONNECTIVES = frozenset(
    "because since as is was would should seems looks fits matches corresponds and or it this that "
    "which correct right best".split()
)
"""Words after "A" or "I" that make the letter an answer ("A because ...", "A is correct"), not an
article or a pronoun ("A cat", "I think")."""
_MAX_CUES = 8
_LONG_WORDS = 15
"""In an answer of more words than this, a lone letter counts only in the last sentence."""


@dataclass
class Reading:
    """A cleaned model answer and the options, with their normalised words (what matchers read)."""

    text: str
    """The answer: NFKC, ``<think>`` blocks, markdown emphasis, LaTeX text wrappers and double
    quotes dropped, whitespace collapsed to single spaces."""
    choices: list[str]
    labels: str = "index"
    """How the prompt labelled the options (:data:`LABELS`)."""
    lines: list[str] = field(default_factory=list)
    """The answer's non-empty lines (a label alone on the first line is the answer)."""
    norm_choices: list[str] = field(init=False)
    words: str = field(init=False)
    """``norm_text(text)``."""

    def __post_init__(self) -> None:
        self.norm_choices = [norm_text(c) for c in self.choices]
        self.words = norm_text(self.text)
        if not self.lines:
            self.lines = [self.text] if self.text else []

    @property
    def n(self) -> int:
        return len(self.choices)

    def label(self, token: str) -> int | None:
        """The option ``token`` labels under this reading's :attr:`labels`, else ``None``."""
        return label_index(token, self.n, self.labels)


Matcher = Callable[[Reading], "int | None"]


def _clean_answer(text: Any) -> tuple[str, list[str]]:
    """``(text, lines)`` of a model answer (see :class:`Reading`)."""
    s = unicodedata.normalize("NFKC", str(text)[: MAX_ANSWER_CHARS * 8])
    s = _THINK_RE.sub("\n", s)
    if "</think>" in s.lower():  # an unclosed <think> before the answer: keep what follows it
        s = s[s.lower().rfind("</think>") + len("</think>") :]
    if len(s) > MAX_ANSWER_CHARS:
        s = s[:500] + "\n" + s[-(MAX_ANSWER_CHARS - 500) :]
    s = _LATEX_WRAP_RE.sub(r"\1", s)
    s = _MARKUP_RE.sub("", s).translate(_QUOTES)
    lines = [" ".join(line.split()).strip(" '‘’") for line in s.splitlines()]
    lines = [line for line in lines if line]
    return " ".join(lines), lines


def _hits(words: str, norm_choices: Sequence[str]) -> list[int]:
    """The options whose text occurs (as whole words) in ``words``; an option found only as part
    of a longer option that is also found ("cat" in "black cat") does not count."""
    padded = f" {words} "
    hits = [i for i, c in enumerate(norm_choices) if c and f" {c} " in padded]
    return [
        i
        for i in hits
        if not any(
            norm_choices[j] != norm_choices[i] and f" {norm_choices[i]} " in f" {norm_choices[j]} " for j in hits
        )
    ]


def _contained(words: str, norm_choices: Sequence[str]) -> int | None:
    """The one option whose text occurs (as whole words) in ``words``; ``None`` if none or several."""
    keep = _hits(words, norm_choices)
    return keep[0] if keep and len({norm_choices[i] for i in keep}) == 1 else None


def _hedged(after: str, r: Reading) -> bool:
    """Whether the text after a label names another label: "B, C", "B or C", "B/C", "B and C"."""
    m = _HEDGE_RE.match(after)
    return bool(m and r.label(m.group(1)) is not None and (m.group(1).isupper() or m.group(1).isdigit()))


def _head_choice(rest: str, r: Reading) -> int | None:
    """The option named right after a cue: a bare label, an option's text, or a leading label."""
    clause = _CLAUSE_END_RE.split(rest.strip(), maxsplit=1)[0].strip()
    clause = _OPTION_WORD_RE.sub("", clause, count=1) if _OPTION_WORD_RE.match(clause) else clause
    m = _BARE_RE.fullmatch(clause)
    if m and (i := r.label(m.group(1))) is not None:
        return i
    nc = norm_text(clause)
    if nc and nc in r.norm_choices:
        return r.norm_choices.index(nc)
    if (i := _contained(nc, r.norm_choices)) is not None:
        return i
    m = _HEAD_RE.match(clause)
    if m:
        label, bracketed = m.group(2), bool(m.group(1) or m.group(3))
        after = clause[m.end() :]
        # A lower-case lone letter followed by words is an article or pronoun ("the answer is a cat").
        if label.isalpha() and label.islower() and not bracketed and re.match(r"\s*\w", after):
            return None
        if (i := r.label(label)) is not None:
            return NO_OPTION if _hedged(after, r) else i
    return None


def _sub_reading(text: str, r: Reading) -> Reading:
    return Reading(" ".join(text.split()), r.choices, r.labels)


def match_boxed(r: Reading) -> int | None:
    """The last ``\\boxed{...}``, read as a whole answer: ``\\boxed{B}``, ``\\boxed{\\text{a cat}}``."""
    found = _BOXED_RE.findall(r.text)
    inner = found[-1].strip() if found else ""
    if not inner:
        return None
    sub = _sub_reading(inner, r)
    return _first(m(sub) for m in (match_bare_label, match_option_text, match_number_word, match_leading_label,
                                   match_mentions))


def match_bare_label(r: Reading) -> int | None:
    """A bare label: "B", "(B)", "B.", "[b]", "2" (an index under ``labels="index"``; a label
    outside the options reads on)."""
    m = _BARE_RE.fullmatch(r.text)
    return r.label(m.group(1)) if m else None


def match_option_text(r: Reading) -> int | None:
    """An option's text, normalised ("A cat." for "a cat", "three" or "3.0" for "3")."""
    return r.norm_choices.index(r.words) if r.words and r.words in r.norm_choices else None


def match_number_word(r: Reading) -> int | None:
    """A number in words as an index ("one"), under ``labels="index"`` only."""
    if r.labels == "index" and re.fullmatch(r"[0-9]{1,3}", r.words) and not re.search(r"[0-9]", r.text):
        return r.label(r.words)
    return None


def match_answer_cue(r: Reading) -> int | None:
    """After the last "answer" cue that names an option: "Answer: B", "Final Answer: (B)", "the
    answer is a cat", "The correct answer is C, not B"; "the answer is B or C" names none."""
    for cue in reversed(list(_ANSWER_CUE_RE.finditer(r.text))[-_MAX_CUES:]):
        if (i := _head_choice(r.text[cue.end() :], r)) is not None:
            return i
    return None


def match_leading_label(r: Reading) -> int | None:
    """A label that opens the answer, then a restatement or an explanation.

    * label alone on the first line ("B\\n\\nThe image shows ..."), or followed by ``,`` ``;``
      ("B, because ...") or, for a capital letter, a word ("B because ...", "A is correct"; but
      "A cat" is an article): the label;
    * followed by ``.`` ``)`` ``:`` ``-`` (or in brackets) and text ("B. a cat", "1) a cat", "(B)
      a cat", "B. Lane B."): the label, unless the text starts with *another* option's text ("1. a
      dog" where option 1 is "a cat": no option);
    * no option for a hedge ("B, C", "B or C") or a copy of the option list ("0. a dog 1. a cat").
    """
    first = r.lines[0] if r.lines else ""
    m = _LEAD_RE.match(first)
    if not m:
        return None
    label, bracketed = m.group(2), bool(m.group(1) or m.group(3))
    i = r.label(label)
    if i is None:
        return None
    rest = first[m.end() :]
    if not rest.strip():
        return i if len(r.lines) > 1 or bracketed else None  # alone on its line (a bare label is matched earlier)
    if len({t.upper() for t in _ENUM_RE.findall(r.text) if r.label(t) is not None}) >= 2:
        return NO_OPTION  # a copy of the option list
    if _hedged(rest, r):
        return NO_OPTION
    sep = rest[0]
    if sep in ",;":
        return i
    if sep in ".:-–—)]" and not (sep == "." and rest[1:2].isdigit()):
        restated = norm_text(_CLAUSE_END_RE.split(rest.lstrip(".:-–—)] "), maxsplit=1)[0])
        starts = [j for j, c in enumerate(r.norm_choices) if c and (restated == c or restated.startswith(c + " "))]
        if starts:
            longest = max(starts, key=lambda j: len(r.norm_choices[j]))
            if r.norm_choices[longest] != r.norm_choices[i]:
                return NO_OPTION  # "1. a dog" where option 1 is "a cat"
        return i
    if sep.isspace():
        nxt = rest.split(maxsplit=1)[0].casefold().strip(".,;:")
        if bracketed:
            return i
        if label.isupper() and (label not in "AI" or nxt in _CONNECTIVES):
            return i
        if label.isdigit() and nxt in _CONNECTIVES:
            return i
    return None


def match_option_cue(r: Reading) -> int | None:
    """After an "option"/"choice" cue that makes a choice: "Option 2", "choice: c", "The correct
    option is (B)", "I choose option B"; a mention ("Option A shows a dog", "option A is wrong")
    is no choice."""
    for cue in reversed(list(_OPTION_CUE_RE.finditer(r.text))[-_MAX_CUES:]):
        before = r.text[: cue.start()]
        chosen = bool(before.strip()) and _CHOOSING_RE.search(before) is not None
        if before.strip() and not chosen:
            continue
        rest = r.text[cue.end() :]
        m = _HEAD_RE.match(rest.strip())
        after = rest.strip()[m.end() :] if m else ""
        if m and _NEGATED_RE.match(after):
            continue
        if m and not chosen and not _CLOSES_RE.match(after):
            continue  # "Option A shows a dog ...": a mention at the start, not a choice
        if (i := _head_choice(rest, r)) is not None:
            return i
    return None


def _last_sentence_start(text: str) -> int:
    starts = [m.end() for m in _SENTENCE_END_RE.finditer(text) if re.search(r"\w", text[m.end() :])]
    return starts[-1] if starts else 0


def match_mentions(r: Reading) -> int | None:
    """What the answer mentions: capital option letters standing alone ("So, C.", "It is the cat
    (B)"; "A"/"I" before a word are an article or a pronoun), in the last sentence of a long
    answer, and option texts (whole words: "It is a cat"). One option named, by letter or by
    text or both in agreement: that option; two different ones ("A or C", "a dog or a cat", "It
    is a dog, C"): no option."""
    start = _last_sentence_start(r.text) if len(r.words.split()) > _LONG_WORDS else 0
    letters: set[int] = set()
    for m in re.finditer(r"(?<![A-Za-z0-9'’\-])([A-Z])(?![A-Za-z0-9'’\-])", r.text):
        if m.start() < start:
            continue
        ch = m.group(1)
        if _NEGATED_RE.match(r.text[m.end() :]):
            continue  # "A is wrong, so C"
        if ch in "AI":
            nxt = re.match(r"\s+([a-z]\w*)", r.text[m.end() :])
            if nxt and nxt.group(1) not in _CONNECTIVES:
                continue  # "A cat", "I think"
        i = r.label(ch)
        if i is not None:
            letters.add(i)
    hits = _hits(r.words, r.norm_choices)
    texts = {r.norm_choices[j] for j in hits}
    by_text = hits[0] if len(texts) == 1 else None
    if len(letters) > 1:
        return NO_OPTION
    if letters:
        (i,) = letters
        if len(texts) > 1 and r.norm_choices[i] not in texts:
            return NO_OPTION
        if by_text is not None and r.norm_choices[by_text] != r.norm_choices[i]:
            return NO_OPTION  # "It is a dog, C" where C is "a cat"
        return i
    return by_text


match_cue = match_answer_cue  # the former name


MATCHERS: list[Matcher] = [
    match_boxed,
    match_bare_label,
    match_option_text,
    match_number_word,
    match_answer_cue,
    match_leading_label,
    match_option_cue,
    match_mentions,
]
"""How :func:`normalize_choice` reads model output, in order; the first that decides wins."""


def _first(results: Iterable[int | None]) -> int | None:
    """The first result that is not ``None`` (a decision, possibly :data:`NO_OPTION`)."""
    for i in results:
        if i is not None:
            return i
    return None


def _decide(results: Any, n: int) -> int | None:
    """The first decision of a pipeline (an iterable of reader results), as an option or ``None``."""
    i = _first(results)
    return i if i is not None and 0 <= i < n else None


def normalize_choice(text: Any, choices: Sequence[str], labels: str = "index") -> int | None:
    """The 0-based option a free-form answer names, or ``None`` (no option, or several).

    ``labels`` is how the prompt labelled the options (:data:`LABELS`): ``index`` (``0. x 1. y``:
    a bare number is the index) or ``letter`` (``A. x B. y``: a bare number is a value, matched
    to the option with that text). Tried in this order (:data:`MATCHERS`):

    1. the last ``\\boxed{...}``, read as a whole answer;
    2. a bare label: "B", "(B)", "B.", "[b]", and under ``index`` "2";
    3. an option's text ("a cat", "A cat.", "three" or "3.0" for "3"; case, punctuation,
       articles, number words normalised), else under ``index`` a number in words ("one");
    4. after the last "answer" cue that names an option: "Answer: B", "Final Answer: (B)", "the
       answer is a cat", "The answer is C, not B";
    5. a label that opens the answer: "B, because ...", "B\\n\\nThe image shows ...", "B. Lane
       B.", "1) a cat" (no option if the text starts with another option's text, for a hedge "B,
       C" or a copy of the option list);
    6. after an "option"/"choice" cue that makes a choice: "Option 2", "the correct option is
       (B)" (not a mention such as "Option A shows a dog");
    7. what the answer mentions: a capital letter standing alone (in the last sentence of a long
       answer) and/or exactly one option's text ("It is a cat"); two different options named
       ("A or C", "dog or cat") is no option.

    A number or letter outside the options falls through to the text rules (options "7", "8", "9":
    "7" is option 0).
    """
    if text is None:
        return None
    if labels not in LABELS:
        raise ValueError(f"labels {labels!r}: use one of {', '.join(LABELS)}.")
    if isinstance(choices, (str, bytes)):
        choices = as_list(choices) or []
    options = [str(c) for c in (choices or [])]
    if not options:
        return None
    s, lines = _clean_answer(text)
    if not s:
        return None
    reading = Reading(s, options, labels, lines)
    return _decide((m(reading) for m in MATCHERS), len(options))


# ---------------------------------------------------------------- the resolver (stored answers)

Reader = Callable[[Any, str, Sequence[str]], "int | None"]
"""``reader(value, text, choices)``: ``text`` is ``str(value).strip()``."""

_INDEX_RE = re.compile(r"[-+]?[0-9]{1,6}")
_LETTER_RE = re.compile(r"\(?([A-Za-z])\)?\.?")


def read_number(value: Any, text: str, choices: Sequence[str]) -> int | None:
    """A number value (not text): an int as the index, an integral float too, other floats name none."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float):
        return int(value) if value.is_integer() else NO_OPTION
    return int(value)


def read_index(value: Any, text: str, choices: Sequence[str]) -> int | None:
    """Digits as the 0-based index: "2", "-1", "+3" (at most six digits; longer reads on as text)."""
    return int(text) if _INDEX_RE.fullmatch(text) else None


def read_letter(value: Any, text: str, choices: Sequence[str]) -> int | None:
    """An option letter, A = 0: "B", "b", "(B)", "B."."""
    m = _LETTER_RE.fullmatch(text)
    return ord(m.group(1).upper()) - ord("A") if m else None


def read_text(value: Any, text: str, choices: Sequence[str]) -> int | None:
    """The option's text, exactly (after stripping the answer)."""
    return list(choices).index(text) if text in choices else None


def read_words(value: Any, text: str, choices: Sequence[str]) -> int | None:
    """The option's text, ignoring case and runs of whitespace ("a  Horse" for "a horse")."""
    key = " ".join(text.split()).lower()
    low = [" ".join(str(c).split()).lower() for c in choices]
    return low.index(key) if key in low else None


def read_free(value: Any, text: str, choices: Sequence[str]) -> int | None:
    """Whatever the model-output matcher (:func:`normalize_choice`) reads; decides either way."""
    i = normalize_choice(text, choices)
    return NO_OPTION if i is None else i


READERS: dict[str, Reader] = {
    "number": read_number,
    "index": read_index,
    "letter": read_letter,
    "text": read_text,
    "words": read_words,
    "free": read_free,
}
"""The readers a format can chain, by name."""

FORMATS: dict[str, tuple[str, ...]] = {
    "index": ("number", "index", "text"),
    "letter": ("letter",),
    "text": ("text",),
    "auto": ("number", "text", "letter", "index"),
    "typed": ("index", "words", "letter"),
    "truth": ("number", "index", "free"),
}
"""Answer formats: the readers tried, in order. ``index``/``letter``/``text``/``auto`` are the
benchmark formats (``auto``: a number or digits as the index, a lone letter as the letter unless
it is an option's text); ``typed`` is what a person types (``robust-r1 chain --answer``); ``truth``
is the rewards' reading of a dataset's ``answer`` (the index, else what the matcher reads)."""


def option_index(value: Any, choices: Sequence[str], fmt: str = "auto") -> int | None:
    """The 0-based option ``value`` names under answer format ``fmt`` (:data:`FORMATS`), else ``None``.

    ``None``, booleans, NaN and blank text name no option. Raises ``ValueError`` for an unknown
    format."""
    try:
        names = FORMATS[fmt]
    except (KeyError, TypeError):
        raise ValueError(f"answer format {fmt!r}: use one of {', '.join(FORMATS)}.") from None
    if value is None or isinstance(value, bool) or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    if not text:
        return None
    options = [str(c) for c in choices]
    return _decide((READERS[name](value, text, options) for name in names), len(options))


def score_answer(
    predicted: Any,
    answer: Any,
    choices: Sequence[str] | None = (),
    direct_answers: Sequence[str] | None = None,
    labels: str = "index",
) -> float:
    """Score one predicted answer in [0, 1] (the rewards' accuracy and the evaluation's).

    * multiple choice (``choices`` non-empty; ``answer`` the 0-based index, or a letter or the
      option's text): 1 if :func:`normalize_choice` (with the prompt's ``labels``) names the right
      option, else 0 (also 0 when ``answer`` names no option);
    * open question with ``direct_answers`` (A-OKVQA): the VQA soft score
      ``min(#direct answers equal to the prediction / 3, 1)``;
    * otherwise equality with ``answer``: numbers by value ("3" = "three" = "3.0"), yes/no by the
      first word ("Yes, it is." = "yes"), else normalised words (case, punctuation, articles; a
      leading "the answer is" is ignored).
    """
    if predicted is None:
        return 0.0
    options = [str(c) for c in (as_list(choices) or [])]
    if options:
        truth = option_index(answer, options, "truth")
        return 1.0 if truth is not None and normalize_choice(predicted, options, labels) == truth else 0.0
    direct = [a for a in (as_list(direct_answers) or []) if a is not None and str(a).strip()]
    if direct:
        return min(sum(1 for a in direct if answers_match(predicted, a)) / 3.0, 1.0)
    if answer is None or not str(answer).strip():
        return 0.0
    return 1.0 if answers_match(predicted, answer) else 0.0
