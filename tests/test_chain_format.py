"""The chain format: strict rendering, tolerant parsing (the contract of factory, trainers, evaluation)."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from _spec import PAPER_ALIASES, SPEC_NAMES
from factory import degrade
from factory.chains.format import (
    FIELDS,
    NO_DAMAGE,
    TAGS,
    format_intensity,
    format_type,
    has_tags,
    parse_chain,
    parse_type,
    render_chain,
    strip_tags,
)

# The reference reward's TYPE regex (SPEC): our rendering must stay parseable by it.
REFERENCE_TYPE_RE = re.compile(r"(\w+(?:\s+\w+)*)\(([\d.]+)\)")

# Field text: anything printable without "<" / ">" (so no tags), at least one visible character.
TEXT = st.text(
    alphabet=st.characters(blacklist_characters="<>", blacklist_categories=("Cs", "Cc")), min_size=1, max_size=50
).filter(lambda s: s.strip())
PAIRS = st.lists(st.tuples(st.sampled_from(SPEC_NAMES), st.floats(0, 1, allow_nan=False)), max_size=8)
HYP = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _blocks(pairs, fields) -> list[tuple[str, str]]:
    return list(zip(FIELDS, [format_type(pairs), *fields]))


# ---------------------------------------------------------------- rendering


def test_render_is_exactly_the_spec_format():
    out = render_chain([("lens blur", 0.31), ("Compression", 0.584)], "infl", "reas", "concl", "2")
    assert out == (
        "<TYPE>lens blur(0.31), jpeg compression(0.58)<TYPE_END>\n"
        "<INFLUENCE>infl<INFLUENCE_END>\n<REASONING>reas<REASONING_END>\n"
        "<CONCLUSION>concl<CONCLUSION_END>\n<ANSWER>2<ANSWER_END>"
    )
    assert [TAGS[f] for f in FIELDS][0] == ("<TYPE>", "<TYPE_END>")


def test_catalogue_names_are_the_spec_names():
    assert sorted(degrade.names()) == sorted(SPEC_NAMES)


def test_type_two_decimals_no_space_canonical_names():
    assert format_type([("Shifting", 0.5), ("noise", 1)]) == "mean shift(0.50), gaussian noise(1.00)"
    assert format_type([("LENS_BLUR", 0.006)]) == "lens blur(0.01)"
    assert format_type([]) == NO_DAMAGE == "none"
    assert parse_type(NO_DAMAGE) == []
    with pytest.raises(ValueError, match="unknown degradation"):
        format_type([("fog", 0.5)])


@pytest.mark.parametrize("alias,canon", sorted(PAPER_ALIASES.items()))
def test_paper_aliases_render_and_parse_to_canonical_names(alias, canon):
    assert format_type([(alias, 0.3)]) == f"{canon}(0.30)"
    for variant in (alias, alias.upper(), alias.lower(), alias.replace(" ", "_")):
        (pair,) = parse_type(f"{variant}(0.30)")
        assert (pair.name, pair.intensity, pair.known) == (canon, 0.30, True)


@pytest.mark.parametrize(
    "value,text",
    [(0.0, "0.00"), (0.3, "0.30"), (0.456, "0.46"), (1, "1.00"), (-0.2, "0.00"), (1.7, "1.00"), (0.999, "1.00")],
)
def test_format_intensity_rounds_and_clamps(value, text):
    assert format_intensity(value) == text


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_format_intensity_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="finite"):
        format_intensity(bad)


@pytest.mark.parametrize("field_index", range(4))
@pytest.mark.parametrize("tag", ["<ANSWER>", "<type_end>", "</REASONING>", "< CONCLUSION END >", "<Influence-End>"])
def test_render_refuses_tags_inside_fields(field_index, tag):
    fields = ["a", "b", "c", "1"]
    fields[field_index] = f"x {tag} y"
    with pytest.raises(ValueError, match="contains a chain tag"):
        render_chain([("graffiti", 0.2)], *fields)


def test_has_and_strip_tags():
    assert has_tags("a <TYPE> b") and has_tags("</answer>") and has_tags("<REASONING END>")
    assert not has_tags("a < b > c") and not has_tags("<think>") and not has_tags("")
    assert not has_tags(strip_tags("<TYPE>x<TYPE_END> <answer>1</answer>"))
    assert strip_tags("<TYPE>x<TYPE_END>").split() == ["x"]


@HYP
@given(pairs=PAIRS)
def test_rendered_type_parses_with_the_reference_regex(pairs):
    text = format_type(pairs)
    found = REFERENCE_TYPE_RE.findall(text)
    assert [n for n, _ in found] == [n for n, _ in pairs]
    assert [float(v) for _, v in found] == [float(format_intensity(s)) for _, s in pairs]
    assert " (" not in text  # no space before "("


# ---------------------------------------------------------------- round trips


@HYP
@given(pairs=PAIRS, fields=st.lists(TEXT, min_size=4, max_size=4))
def test_round_trip(pairs, fields):
    text = render_chain(pairs, *fields)
    p = parse_chain(text)
    assert p.is_complete and not p.problems()
    assert [p.influence, p.reasoning, p.conclusion, p.answer] == [f.strip() for f in fields]
    assert p.type == format_type(pairs)
    got = p.type_pairs
    assert [t.name for t in got] == [n for n, _ in pairs]
    assert all(t.known and abs(t.intensity - float(format_intensity(s))) < 1e-12 for t, (_, s) in zip(got, pairs))
    # Rendering what was parsed gives the same text back.
    assert render_chain(p.type, p.influence, p.reasoning, p.conclusion, p.answer) == text


CLOSINGS = st.sampled_from(["<{N}_END>", "</{N}>", "<{N} END>", "<{N}-END>", "< {N}_END >", "</ {N} >", "<{N}_end>"])
OPENINGS = st.sampled_from(["<{N}>", "< {N} >", "<{N} >"])


@HYP
@given(
    pairs=PAIRS,
    fields=st.lists(TEXT, min_size=4, max_size=4),
    opens=st.lists(OPENINGS, min_size=5, max_size=5),
    closes=st.lists(CLOSINGS, min_size=5, max_size=5),
    cases=st.lists(st.sampled_from([str.upper, str.lower, str.title]), min_size=5, max_size=5),
    seps=st.lists(st.sampled_from(["", "\n", "\n\n", " ", "\t", "\r\n"]), min_size=6, max_size=6),
    pads=st.lists(st.sampled_from(["", " ", "\n", "  \n "]), min_size=5, max_size=5),
)
def test_tolerant_round_trip(pairs, fields, opens, closes, cases, seps, pads):
    """Tag case, closing style, whitespace between and inside blocks: same fields come back."""
    parts = [seps[0]]
    for i, (f, value) in enumerate(_blocks(pairs, fields)):
        name = cases[i](f.upper())
        parts.append(opens[i].format(N=name) + pads[i] + value + pads[i] + closes[i].format(N=name) + seps[i + 1])
    p = parse_chain("".join(parts))
    assert p.is_complete, p.problems()
    assert p.as_dict() == {f: v.strip() for f, v in _blocks(pairs, fields)}


@HYP
@given(pairs=PAIRS, fields=st.lists(TEXT, min_size=4, max_size=4), drop=st.sets(st.sampled_from(FIELDS), min_size=1))
def test_missing_blocks_are_reported(pairs, fields, drop):
    text = "\n".join(f"{TAGS[f][0]}{v}{TAGS[f][1]}" for f, v in _blocks(pairs, fields) if f not in drop)
    p = parse_chain(text)
    assert set(p.missing) == drop
    assert not p.is_complete
    assert any(x.startswith("missing: ") for x in p.problems())
    for f, v in _blocks(pairs, fields):
        if f not in drop:
            assert getattr(p, f) == v.strip()


@HYP
@given(fields=st.lists(TEXT, min_size=5, max_size=5), unclosed=st.sets(st.sampled_from(FIELDS), min_size=1))
def test_a_missing_closing_tag_ends_the_block_at_the_next_tag(fields, unclosed):
    text = "".join(f"{TAGS[f][0]}{v}" + ("" if f in unclosed else TAGS[f][1]) for f, v in zip(FIELDS, fields))
    p = parse_chain(text)
    assert set(p.unclosed) == unclosed
    assert p.as_dict() == {f: v.strip() for f, v in zip(FIELDS, fields)}
    assert not p.is_complete


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_parser_never_raises_on_any_text(text):
    p = parse_chain(text)
    assert isinstance(p.problems(), list)
    assert p.is_complete == (not p.problems() and len(p.order) == 5)
    for t in p.type_pairs:
        assert isinstance(t.name, str) and isinstance(t.intensity, float)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["<TYPE>", "<TYPE_END>", "<ANSWER>", "</answer>", "<REASONING>", "x", " ", "(0.3)", "lens blur", "\n"]
        ),
        max_size=30,
    )
)
def test_parser_never_raises_on_tag_soup(tokens):
    p = parse_chain("".join(tokens))
    assert set(p.missing) | {f for f in FIELDS if getattr(p, f) is not None} == set(FIELDS)


@pytest.mark.parametrize("value", [None, 42, b"<TYPE>x<TYPE_END>", ["a"]])
def test_parser_accepts_non_strings(value):
    p = parse_chain(value)
    assert isinstance(p.missing, list)


# ---------------------------------------------------------------- tolerant parsing, problems


def test_tolerant_parsing_reports_what_is_wrong():
    p = parse_chain("  <type> Darkness (0.4) and Block_Change(.3) </TYPE>\n<answer>B")
    assert [(t.name, t.intensity) for t in p.type_pairs] == [("dark illumination", 0.4), ("block exchange", 0.3)]
    assert p.missing == ["influence", "reasoning", "conclusion"]
    assert p.unclosed == ["answer"] and p.answer == "B"
    assert not p.is_complete
    assert any("missing" in x for x in p.problems())


def test_order_repeats_and_empty_blocks_are_detected():
    good = render_chain([("graffiti", 0.2)], "a", "b", "c", "1")
    swapped = good.replace(
        "<INFLUENCE>a<INFLUENCE_END>\n<REASONING>b<REASONING_END>",
        "<REASONING>b<REASONING_END>\n<INFLUENCE>a<INFLUENCE_END>",
    )
    p = parse_chain(swapped)
    assert not p.in_order and p.influence == "a" and p.reasoning == "b"
    assert any(x.startswith("out of order") for x in p.problems())
    rep = parse_chain(good + "\n<ANSWER>2<ANSWER_END>")
    assert rep.repeated == ["answer"] and rep.answer == "1"  # the first occurrence wins
    assert parse_chain(good.replace(">c<", "> <")).empty == ["conclusion"]
    assert parse_chain(None).missing == list(FIELDS)


def test_text_around_the_chain_is_ignored():
    good = render_chain([("graffiti", 0.2)], "a", "b", "c", "1")
    p = parse_chain("<think>let me see</think>\nSure! Here it is:\n" + good + "\nHope this helps.")
    assert p.is_complete and p.answer == "1"


def test_answer_holds_the_option_index_for_multiple_choice():
    text = render_chain([("lens blur", 0.5)], "i", "r", "c", "3")
    assert parse_chain(text).answer == "3"
    assert "<ANSWER>3<ANSWER_END>" in text


@pytest.mark.parametrize(
    "text,expected",
    [
        ("lens blur(0.31), jpeg compression(0.58)", [("lens blur", 0.31, True), ("jpeg compression", 0.58, True)]),
        ("lens blur(0.31),jpeg compression(0.58)", [("lens blur", 0.31, True), ("jpeg compression", 0.58, True)]),
        ("Lens-Blur ( 0.31 ) ; MOTION_BLUR(1)", [("lens blur", 0.31, True), ("motion blur", 1.0, True)]),
        ("I see lens blur(0.3) and heavy noise(0.8)", [("lens blur", 0.3, True), ("gaussian noise", 0.8, True)]),
        ("1. graffiti(0.2)\n2. watermark(0.4)", [("graffiti", 0.2, True), ("watermark damage", 0.4, True)]),
        ("fog(0.5), lens blur(0.2)", [("fog", 0.5, False), ("lens blur", 0.2, True)]),
        ("noise(1e-1)", [("gaussian noise", 0.1, True)]),
        ("noise(-0.2)", [("gaussian noise", -0.2, True)]),
        ("none", []),
        ("", []),
    ],
)
def test_parse_type_cases(text, expected):
    assert [(t.name, t.intensity, t.known) for t in parse_type(text)] == expected


def test_parse_type_keeps_out_of_range_and_non_finite_values_for_the_caller():
    (p,) = parse_type("noise(nan)")
    assert p.known and math.isnan(p.intensity)
    (q,) = parse_type("noise(7)")
    assert q.intensity == 7.0


@HYP
@given(pairs=PAIRS, junk=st.sampled_from(["", " and ", " ; ", "\n", " & ", " with "]))
def test_parse_type_inverts_format_type_with_junk_between_items(pairs, junk):
    assume(pairs)
    text = junk.join(f"{n}({format_intensity(s)})" for n, s in pairs)
    got = parse_type(text)
    assert [(t.name, t.intensity) for t in got] == [(n, float(format_intensity(s))) for n, s in pairs]
