"""The one answer resolver and the TYPE reading: the same results as the three former resolvers.

``EXPECTED`` was computed by the functions this module replaced, at commit a750495:
``trainers.benchmarks.answer_index`` (formats auto, index, letter, text),
``trainers.rewards._truth_index`` (the rewards' ground truth) and
``factory.chains.writer.resolve_answer`` (``--answer`` of ``robust-r1 chain``; strings only, ``None``
for its error). Two cells differ on purpose, marked below: the writer now reads ``(C)`` and ``C.``
as letters, as the benchmarks always did (it refused them).
"""

from __future__ import annotations

import pytest

from factory.chains.answers import FORMATS, NO_OPTION, READERS, normalize_choice, option_index, score_answer
from factory.chains.format import read_type
from factory.chains.writer import resolve_answer
from trainers.benchmarks import answer_index
from trainers.rewards.accuracy import truth_index

ANIMALS = ["a dog", "a cat", "a bird"]
NUMS = ["1.0", "2.5", "3"]
LETTERS = ["B", "A", "C"]
NAN = float("nan")
NA = "n/a"  # the writer takes text only

# value, options, bench auto, bench index, bench letter, bench text, rewards truth, writer
EXPECTED = [
    # option index as a number or digits
    (0, ANIMALS, 0, 0, None, None, 0, NA),
    (2, ANIMALS, 2, 2, None, None, 2, NA),
    (3, ANIMALS, None, None, None, None, None, NA),
    ("0", ANIMALS, 0, 0, None, None, 0, 0),
    ("2", ANIMALS, 2, 2, None, None, 2, 2),
    ("3", ANIMALS, None, None, None, None, None, None),
    ("-1", ANIMALS, None, None, None, None, None, None),
    ("3", NUMS, 2, None, None, 2, None, None),
    # letter
    ("A", ANIMALS, 0, None, 0, None, 0, 0),
    ("b", ANIMALS, 1, None, 1, None, 1, 1),
    ("(C)", ANIMALS, 2, None, 2, None, 2, 2),  # writer: was an error
    ("C.", ANIMALS, 2, None, 2, None, 2, 2),  # writer: was an error
    ("D", ANIMALS, None, None, None, None, None, None),
    ("A", LETTERS, 1, 1, 0, 1, 0, 1),
    # option text
    ("a cat", ANIMALS, 1, 1, None, 1, 1, 1),
    ("A Cat", ANIMALS, None, None, None, None, 1, 1),
    ("a  bird", ANIMALS, None, None, None, None, 2, 2),
    ("the answer is a cat", ANIMALS, None, None, None, None, 1, None),
    ("a horse", ANIMALS, None, None, None, None, None, None),
    # float-looking labels
    (1.0, ANIMALS, 1, 1, None, None, 1, NA),
    (1.5, ANIMALS, None, None, None, None, None, NA),
    ("1.0", ANIMALS, None, None, None, None, None, None),
    (1.0, NUMS, 1, 1, None, 0, 1, NA),
    ("1.0", NUMS, 0, 0, None, 0, 0, 0),
    ("2.5", NUMS, 1, 1, None, 1, 1, 1),
    (2.5, NUMS, None, None, None, 1, None, NA),
    ("2.50", NUMS, None, None, None, None, None, None),
    # nothing
    (None, ANIMALS, None, None, None, None, None, NA),
    ("", ANIMALS, None, None, None, None, None, None),
    (NAN, ANIMALS, None, None, None, None, None, NA),
]


def _writer(value, choices):
    try:
        return int(resolve_answer(value, choices)[0])
    except ValueError as exc:
        assert "--answer" in str(exc)
        return None


@pytest.mark.parametrize("value, choices, auto, index, letter, text, truth, typed", EXPECTED)
def test_the_shared_resolver_gives_what_each_former_caller_gave(
    value, choices, auto, index, letter, text, truth, typed
):
    for fmt, want in (("auto", auto), ("index", index), ("letter", letter), ("text", text)):
        assert answer_index(value, choices, fmt) == want, fmt  # the benchmarks' caller
        assert option_index(value, choices, fmt) == want, fmt
    assert truth_index(value, choices) == truth  # the rewards' caller
    assert option_index(value, choices, "truth") == truth
    if typed != NA:
        assert _writer(value, choices) == typed  # the chain writer's caller
        assert option_index(value, choices, "typed") == typed


def test_formats_chain_known_readers_and_a_bad_format_is_named():
    assert all(name in READERS for names in FORMATS.values() for name in names)
    with pytest.raises(ValueError, match="answer format 'grid'"):
        option_index("A", ANIMALS, "grid")
    # a reader deciding NO_OPTION stops the pipeline: a non-integral number names no option
    assert READERS["number"](1.5, "1.5", ANIMALS) == NO_OPTION and option_index(1.5, ["1.5"], "index") is None
    # "nan" text is an empty cell for the benchmarks only (pandas exports); the resolver reads it
    assert answer_index("nan", ["nan", "x"], "text") is None and option_index("nan", ["nan", "x"], "text") == 0


def test_the_matcher_and_the_scorer_read_model_output():
    assert normalize_choice("The answer is (B), not C.", ANIMALS) == 1
    assert normalize_choice("1. a dog", ANIMALS) is None  # the label and the text disagree
    assert normalize_choice("It is a bird.", ANIMALS) == 2
    assert score_answer("B", "1", ANIMALS) == 1.0 and score_answer("B", "a cat", ANIMALS) == 1.0
    assert score_answer("three", "3.0") == 1.0 and score_answer("no", "yes") == 0.0
    assert score_answer("red", None, [], ["red", "red", "blue"]) == pytest.approx(2 / 3)


def test_read_type_is_the_one_type_reading():
    chain = "<TYPE>Defocus Blur(0.69), graffiti(nan), zoom(2)<TYPE_END><ANSWER>1<ANSWER_END>"
    claims = read_type(chain)
    assert claims.pairs[0] == ("lens blur", 0.69) and claims.pairs[1] == ("graffiti", None)
    assert claims.pairs[2][1] == 2.0  # as written; the rewards clamp, the evaluation keeps it
    assert read_type("<TYPE>  <TYPE_END>") is None and read_type("no blocks") is None
    none = read_type("<TYPE>None.<TYPE_END>")
    assert none.pairs == () and none.says_none and none.mentions_none
    loose = read_type("<TYPE>none that I can see<TYPE_END>")
    assert not loose.says_none and loose.mentions_none
    many = "<TYPE>" + ", ".join(["graffiti(0.5)"] * 100) + "<TYPE_END>"
    assert len(read_type(many).pairs) == 100 and len(read_type(many, max_items=64).pairs) == 64
    long = "<TYPE>" + "x" * 20000 + " lens blur(0.3)<TYPE_END>"
    assert read_type(long).pairs == (("lens blur", 0.3),)
    assert read_type(long, max_chars=16384).pairs == ()  # only the first 16 384 characters are read
