"""Which option is the answer: the one resolver of stored answers, and the matcher of model output.

Two questions, one module (the factory owns the answer contract; the trainers' rewards and the
evaluation import it, never the reverse):

* :func:`option_index` resolves an answer *as stored or typed* (a dataset's label, a benchmark's
  answer column, a person's ``--answer``) to a 0-based option. It runs a pipeline of *readers*
  chosen by a format (:data:`FORMATS`): ``index``, ``letter``, ``text``, ``auto`` (the benchmark
  formats), ``typed`` (what a person types: an index, the option's text in any case, a letter)
  and ``truth`` (the rewards' ground truth: an index, else whatever the matcher reads).
* :func:`normalize_choice` reads *free-form model output* ("The answer is (B)", "a cat", "Option
  2") as an option, through the pipeline of :data:`MATCHERS`; :func:`score_answer` scores one
  predicted answer against the ground truth (options, A-OKVQA direct answers or an open answer).

Both pipelines share one convention: a reader returns ``None`` when it does not apply (the next
reader is asked), or an index, which decides; an index outside the options (for instance
:data:`NO_OPTION`) means "this names no option" and the answer is ``None``. A new way of reading
answers is one function added to :data:`READERS` (and a format) or inserted into :data:`MATCHERS`.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FORMATS",
    "MATCHERS",
    "NO_OPTION",
    "READERS",
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
"""An answer longer than this is cut before matching (answers are short; this bounds the work)."""


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
_PUNCT_RE = re.compile(r"[^\w\s]|_")
_TRAILING_ZEROS_RE = re.compile(r"(?<=\d)\.0+(?![0-9])")
_THOUSANDS_RE = re.compile(r"(?<=[0-9]),(?=[0-9]{3}(?![0-9]))")
_NUMBER_RE = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[-+]?[0-9]+)?")
_ANSWER_PREFIX_RE = re.compile(r"(?:the\s+)?(?:final\s+|correct\s+)?answer\s*(?:is\b|:|=)?\s*", re.IGNORECASE)


def norm_text(s: Any) -> str:
    """Words of ``s`` for matching: NFKC, case-folded, punctuation and articles dropped, number
    words as digits ("twenty-one" → "21"), "3.0" → "3", "1,000" → "1000". Only ``\\w`` and single
    spaces."""
    t = unicodedata.normalize("NFKC", str(s)).casefold()
    t = _TRAILING_ZEROS_RE.sub("", _THOUSANDS_RE.sub("", t))
    words: list[str] = []
    for w in _PUNCT_RE.sub(" ", t).split():
        if w in _ARTICLES:
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


def answers_match(predicted: Any, truth: Any) -> bool:
    """Open-answer equality: numbers by value, yes/no by the first word, else normalised words."""
    p = _strip_answer_prefix(unicodedata.normalize("NFKC", str(predicted))[:MAX_ANSWER_CHARS])
    g = str(truth)
    a, b = _as_number(p), _as_number(g)
    if a is not None and b is not None:
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    np_, ng = norm_text(p), norm_text(g)
    if not np_ or not ng:
        return False
    if ng in ("yes", "no"):
        return np_.split()[0] == ng
    return np_ == ng


def label_index(label: str, n: int) -> int | None:
    """A 0-based index from an option label: digits as they are, letters A = 0, B = 1, ...;
    ``None`` outside ``0..n-1``."""
    i = int(label) if label.isdigit() else ord(label.lower()) - ord("a")
    return i if 0 <= i < n else None


# ---------------------------------------------------------------- the matcher (model output)

_LABEL = r"(?:[A-Za-z]|[0-9]{1,3})"
_BARE_RE = re.compile(rf"[(\[]?\s*({_LABEL})\s*[)\]]?\s*[.:,;!?]?")
_HEAD_RE = re.compile(rf"([(\[])?\s*({_LABEL})(?![A-Za-z0-9])\s*([)\]])?(?=$|[\s.,:;!?])")
_LEADING_LABEL_RE = re.compile(rf"[(\[]?({_LABEL})\s*[)\].:]\s+(\S.*)", re.DOTALL)
_CUE_RE = re.compile(
    r"\b(answer|option|choice)\b(?:\s+(?:is|would\s+be|should\s+be|will\s+be))?\s*[:=\-]?\s*", re.IGNORECASE
)
_CLAUSE_END_RE = re.compile(r"[;!?\n]|\.(?=\s|$)")  # a sentence end, not a decimal point
_MAX_CUES = 8


@dataclass
class Reading:
    """A cleaned model answer and the options, with their normalised words (what matchers read)."""

    text: str
    """The answer: NFKC, markdown emphasis and quotes dropped, whitespace collapsed."""
    choices: list[str]
    norm_choices: list[str] = field(init=False)
    words: str = field(init=False)
    """``norm_text(text)``."""

    def __post_init__(self) -> None:
        self.norm_choices = [norm_text(c) for c in self.choices]
        self.words = norm_text(self.text)

    @property
    def n(self) -> int:
        return len(self.choices)


Matcher = Callable[[Reading], "int | None"]


def _clean_answer(text: Any) -> str:
    s = unicodedata.normalize("NFKC", str(text)[: MAX_ANSWER_CHARS * 2])[:MAX_ANSWER_CHARS]
    s = s.replace("**", "").replace("__", "").replace("`", "")
    return " ".join(s.split()).strip(" \"'“”‘’")


def _contained(words: str, norm_choices: Sequence[str]) -> int | None:
    """The one option whose text occurs (as whole words) in ``words``; ``None`` if none or several.

    An option found only as part of a longer option that is also found ("cat" in "black cat")
    does not count."""
    padded = f" {words} "
    hits = [i for i, c in enumerate(norm_choices) if c and f" {c} " in padded]
    keep = [
        i
        for i in hits
        if not any(
            norm_choices[j] != norm_choices[i] and f" {norm_choices[i]} " in f" {norm_choices[j]} " for j in hits
        )
    ]
    return keep[0] if keep and len({norm_choices[i] for i in keep}) == 1 else None


def _head_choice(rest: str, norm_choices: Sequence[str]) -> int | None:
    """The option named right after a cue: a bare label, an option's text, or a leading label."""
    n = len(norm_choices)
    clause = _CLAUSE_END_RE.split(rest.strip(), maxsplit=1)[0].strip()
    m = _BARE_RE.fullmatch(clause)
    if m and (i := label_index(m.group(1), n)) is not None:
        return i
    nc = norm_text(clause)
    if nc and nc in norm_choices:
        return norm_choices.index(nc)
    if (i := _contained(nc, norm_choices)) is not None:
        return i
    m = _HEAD_RE.match(clause)
    if m:
        label, bracketed = m.group(2), bool(m.group(1) or m.group(3))
        after = clause[m.end() :]
        # A lower-case lone letter followed by words is an article or pronoun ("the answer is a cat").
        if not (label.isalpha() and label.islower() and not bracketed and re.match(r"\s*\w", after)):
            return label_index(label, n)
    return None


def match_bare_label(r: Reading) -> int | None:
    """A bare label: "B", "(B)", "B.", "[b]", "2" (a label outside the options reads on)."""
    m = _BARE_RE.fullmatch(r.text)
    return label_index(m.group(1), r.n) if m else None


def match_option_text(r: Reading) -> int | None:
    """An option's text, normalised ("A cat." for "a cat", "three" for "3")."""
    return r.norm_choices.index(r.words) if r.words and r.words in r.norm_choices else None


def match_number_word(r: Reading) -> int | None:
    """A number in words as an index ("one")."""
    if re.fullmatch(r"[0-9]{1,3}", r.words) and not re.search(r"[0-9]", r.text):
        return label_index(r.words, r.n)
    return None


def match_cue(r: Reading) -> int | None:
    """After a cue, the last "answer ..." cue first, then the last "option/choice ..." cue."""
    cues = list(_CUE_RE.finditer(r.text))
    answer_cues = [c for c in cues if c.group(1).lower() == "answer"][-_MAX_CUES:]
    other_cues = [c for c in cues if c.group(1).lower() != "answer"][-_MAX_CUES:]
    for cue in (*reversed(answer_cues), *reversed(other_cues)):
        if (i := _head_choice(r.text[cue.end() :], r.norm_choices)) is not None:
            return i
    return None


def match_leading_label(r: Reading) -> int | None:
    """A leading label with text: "B. a cat", "1) a cat"; no option when the text names another."""
    m = _LEADING_LABEL_RE.fullmatch(r.text)
    if not m or (i := label_index(m.group(1), r.n)) is None:
        return None
    padded = f" {norm_text(m.group(2))} "
    named = {c for c in r.norm_choices if c and f" {c} " in padded}
    if named - {r.norm_choices[i]}:
        return NO_OPTION  # "1. a dog" where option 1 is "a cat", or a copy of the option list
    return i


def match_contained(r: Reading) -> int | None:
    """Exactly one option's text inside ("It is a cat"; "dog or cat" names none)."""
    return _contained(r.words, r.norm_choices)


MATCHERS: list[Matcher] = [
    match_bare_label,
    match_option_text,
    match_number_word,
    match_cue,
    match_leading_label,
    match_contained,
]
"""How :func:`normalize_choice` reads model output, in order; the first that decides wins."""


def _decide(results: Any, n: int) -> int | None:
    """The first decision of a pipeline (an iterable of reader results), as an option or ``None``."""
    for i in results:
        if i is not None:
            return i if 0 <= i < n else None
    return None


def normalize_choice(text: Any, choices: Sequence[str]) -> int | None:
    """The 0-based option a free-form answer names, or ``None`` (no option, or ambiguous).

    Tried in this order (:data:`MATCHERS`):

    1. a bare label: "B", "(B)", "B.", "[b]", "2" (letters A = 0; numbers are 0-based indices,
       as the dataset shows options ``0. x 1. y ...`` and stores the index in ``answer``);
    2. an option's text ("a cat", "A cat.", "three" for "3"; case, punctuation, articles, number
       words normalised), else a number in words ("one") as an index;
    3. after a cue, the last "answer ..." cue first, then the last "option/choice ..." cue:
       "the answer is 1", "Option 2" (= index 2), "choice: c", "the answer is a cat", "The answer
       is C, not B";
    4. a leading label with text: "B. a cat", "1) a cat" (``None`` if the text names another
       option, as in "1. a dog" or a copy of the whole option list);
    5. exactly one option's text inside ("It is a cat"; "dog or cat" is ``None``).

    A number or letter outside the options falls through to the text rules (options "7", "8", "9":
    "7" is option 0).
    """
    if text is None:
        return None
    if isinstance(choices, (str, bytes)):
        choices = as_list(choices) or []
    options = [str(c) for c in (choices or [])]
    if not options:
        return None
    s = _clean_answer(text)
    if not s:
        return None
    reading = Reading(s, options)
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
) -> float:
    """Score one predicted answer in [0, 1] (the rewards' accuracy and the evaluation's).

    * multiple choice (``choices`` non-empty; ``answer`` the 0-based index, or a letter or the
      option's text): 1 if :func:`normalize_choice` names the right option, else 0 (also 0 when
      ``answer`` names no option);
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
        return 1.0 if truth is not None and normalize_choice(predicted, options) == truth else 0.0
    direct = [a for a in (as_list(direct_answers) or []) if a is not None and str(a).strip()]
    if direct:
        return min(sum(1 for a in direct if answers_match(predicted, a)) / 3.0, 1.0)
    if answer is None or not str(answer).strip():
        return 0.0
    return 1.0 if answers_match(predicted, answer) else 0.0
