"""Rewards on hostile completions (issue 14, item 12): every spelling of a non-finite intensity is
one case with one documented score, and the work per completion is bounded (the first
``MAX_COMPLETION_CHARS`` characters are read; speed itself is shown by bench/rewards.py)."""

from __future__ import annotations

import pytest

from trainers.rewards import accuracy_reward, degradation_reward, format_reward, inputs, length_reward

DEGS = [[
    {"name": "lens blur", "stage": "acquisition", "intensity": 0.69, "params": "{}"},
    {"name": "graffiti", "stage": "post-processing", "intensity": 0.43, "params": "{}"},
]]  # fmt: skip
SPELLINGS = ["inf", "nan", "1e309", "-inf", "+inf", "Infinity", "-Infinity", "-nan", "NaN", "-1e309", "\u2212inf",
             " inf "]


@pytest.mark.parametrize("mode,documented", [("matched", 0.5), ("paper", 1.0), ("reference", 2.0)])
def test_every_non_finite_spelling_scores_the_documented_value(mode, documented):
    # docs/rewards.md: `lens blur(1e309), graffiti(0.43)` scores 0.500 / 1.00 / 2.00
    scores = {
        v: degradation_reward([f"<TYPE>lens blur({v}), graffiti(0.43)<TYPE_END>"], degradations=DEGS, mode=mode)[0]
        for v in SPELLINGS
    }
    assert set(scores.values()) == {documented}, scores


def test_canonical_nonfinite_leaves_numbers_alone():
    assert inputs.canonical_nonfinite("a(-inf), b(0.5), c(Infinity), d(-1.5e3)") == "a(nan), b(0.5), c(nan), d(-1.5e3)"


def test_only_the_first_chars_of_a_completion_are_read():
    MAX_COMPLETION_CHARS, completion_text = inputs.MAX_COMPLETION_CHARS, inputs.completion_text
    pad = "x" * MAX_COMPLETION_CHARS
    chain = "<ANSWER>1<ANSWER_END>"
    cols = {"answer": ["1"], "choices": [["a dog", "a cat"]]}
    assert accuracy_reward([chain + pad], **cols) == [1.0]
    assert accuracy_reward([pad + chain], **cols) == [0.0]  # beyond the bound: not read
    assert len(completion_text("y" * (10 * MAX_COMPLETION_CHARS))) == MAX_COMPLETION_CHARS
    conversational = [{"role": "assistant", "content": [{"type": "text", "text": "z" * (3 * MAX_COMPLETION_CHARS)}]}]
    assert len(completion_text(conversational)) == MAX_COMPLETION_CHARS
    assert len(completion_text(b"w" * (10 * MAX_COMPLETION_CHARS))) == MAX_COMPLETION_CHARS


def test_no_parser_sees_more_than_the_bound(monkeypatch):
    import trainers.rewards.accuracy as acc
    import trainers.rewards.degradation as deg
    import trainers.rewards.format as fmt
    import trainers.rewards.length as ln

    seen: list[int] = []

    def spy(real):
        def wrapped(text, *a, **kw):
            seen.append(len(text))
            return real(text, *a, **kw)

        return wrapped

    for mod, name in ((acc, "parse_chain"), (fmt, "parse_chain"), (ln, "parse_chain"), (deg, "read_type")):
        monkeypatch.setattr(mod, name, spy(getattr(mod, name)))
    huge = "<TYPE>" * 2_000_000  # 12 MB of open tags: seconds per reward when read whole
    cols = {"degradations": DEGS, "answer": ["1"], "choices": [["a", "b"]], "target_words": [2],
            "solution": ["<REASONING>a b<REASONING_END>"]}
    for reward in (degradation_reward, length_reward, format_reward, accuracy_reward):
        (value,) = reward([huge], **cols)
        assert value is not None and value == value
    assert len(seen) >= 4 and max(seen) <= inputs.MAX_COMPLETION_CHARS
