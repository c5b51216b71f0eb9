"""The chain format: strict rendering, tolerant parsing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory import degrade
from factory.chains.format import FIELDS, format_type, parse_chain, parse_type, render_chain

TEXT = st.text(alphabet=st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), min_size=1, max_size=60).filter(lambda s: s.strip())


def test_render_is_exactly_the_spec_format():
    out = render_chain([("lens blur", 0.31), ("Compression", 0.584)], "infl", "reas", "concl", "2")
    assert out == (
        "<TYPE>lens blur(0.31), jpeg compression(0.58)<TYPE_END>\n"
        "<INFLUENCE>infl<INFLUENCE_END>\n<REASONING>reas<REASONING_END>\n"
        "<CONCLUSION>concl<CONCLUSION_END>\n<ANSWER>2<ANSWER_END>"
    )


def test_type_uses_two_decimals_no_space_and_canonical_names():
    assert format_type([("Shifting", 0.5), ("noise", 1)]) == "mean shift(0.50), gaussian noise(1.00)"
    with pytest.raises(ValueError, match="unknown degradation"):
        format_type([("fog", 0.5)])


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.sampled_from(degrade.names()), st.floats(0, 1)), max_size=6),
    fields=st.lists(TEXT, min_size=4, max_size=4),
)
def test_round_trip(pairs, fields):
    text = render_chain(pairs, *fields)
    p = parse_chain(text)
    assert p.is_complete and not p.problems()
    assert [f.strip() for f in fields] == [p.influence, p.reasoning, p.conclusion, p.answer]
    parsed = p.type_pairs
    assert [t.name for t in parsed] == [n for n, _ in pairs]
    assert all(abs(t.intensity - round(s, 2)) < 1e-9 and t.known for t, (_, s) in zip(parsed, pairs))


def test_tolerant_parsing_reports_what_is_wrong():
    p = parse_chain("  <type> Darkness (0.4) and Block_Change(.3) </TYPE>\n<answer>B")
    assert [(t.name, t.intensity) for t in p.type_pairs] == [("dark illumination", 0.4), ("block exchange", 0.3)]
    assert p.missing == ["influence", "reasoning", "conclusion"]
    assert p.unclosed == ["answer"] and p.answer == "B"
    assert not p.is_complete
    assert any("missing" in x for x in p.problems())


def test_order_repeats_and_empty_blocks_are_detected():
    good = render_chain([("graffiti", 0.2)], "a", "b", "c", "1")
    swapped = good.replace("<INFLUENCE>a<INFLUENCE_END>\n<REASONING>b<REASONING_END>", "<REASONING>b<REASONING_END>\n<INFLUENCE>a<INFLUENCE_END>")
    assert not parse_chain(swapped).in_order
    assert parse_chain(good + "\n<ANSWER>2<ANSWER_END>").repeated == ["answer"]
    assert parse_chain(good.replace(">c<", "> <")).empty == ["conclusion"]
    assert parse_chain(None).missing == list(FIELDS)


def test_unknown_names_are_kept_but_marked():
    pairs = parse_type("fog(0.5), lens blur(0.2)")
    assert [(t.name, t.known) for t in pairs] == [("fog", False), ("lens blur", True)]


def test_render_refuses_tags_inside_fields():
    with pytest.raises(ValueError, match="contains a chain tag"):
        render_chain([("graffiti", 0.2)], "a <ANSWER>x", "b", "c", "1")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_parser_never_raises(text):
    p = parse_chain(text)
    assert isinstance(p.problems(), list)
    for t in p.type_pairs:
        assert isinstance(t.name, str)
