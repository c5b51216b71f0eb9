"""The method's rewards: exact values, TRL compatibility, fuzzing and gaming checks."""

from __future__ import annotations

import functools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory import degrade
from factory.chains.format import render_chain
from trainers.rewards import (
    accuracy_reward,
    build_rewards,
    combined_reward,
    degradation_reward,
    degradation_score,
    format_reward,
    length_reward,
    normalize_choice,
    pair_term,
    score_answer,
)

GT = [{"name": "lens blur", "stage": "acquisition", "intensity": 0.69, "params": "{}"},
      {"name": "graffiti", "stage": "post-processing", "intensity": 0.43, "params": "{}"}]
REASONING = " ".join(["word"] * 40)
SOLUTION = render_chain([("lens blur", 0.69), ("graffiti", 0.43)], "infl", REASONING, "so a cat", "1")
COLS = {"solution": [SOLUTION], "answer": ["1"], "choices": [["a dog", "a cat", "a bird"]], "degradations": [GT], "target_words": [40]}


def chain(type_text: str = "lens blur(0.45), graffiti(0.44)", reasoning: str = REASONING, answer: str = "1") -> str:
    return f"<TYPE>{type_text}<TYPE_END><INFLUENCE>i<INFLUENCE_END><REASONING>{reasoning}<REASONING_END><CONCLUSION>c<CONCLUSION_END><ANSWER>{answer}<ANSWER_END>"


# ---------------------------------------------------------------- the paper's Figure 2


def test_figure_2_pair_terms_under_paper_scoring():
    assert pair_term(0.45, 0.69) == pytest.approx(0.76)
    assert pair_term(0.44, 0.43) == pytest.approx(0.99)
    assert degradation_score([("noise", 0.5)], [("lens blur", 0.69)], "paper") == -1.0
    got = degradation_reward([chain()], mode="paper", degradations=[GT])[0]
    assert got == pytest.approx(0.76 + 0.99)


def test_matched_mode_is_normalised_and_one_to_one():
    honest = degradation_reward([chain()], degradations=[GT])[0]
    assert honest == pytest.approx((0.76 + 0.99) / 2)
    perfect = degradation_reward([chain("lens blur(0.69), graffiti(0.43)")], degradations=[GT])[0]
    assert perfect == pytest.approx(1.0)
    one_missed = degradation_reward([chain("lens blur(0.69)")], degradations=[GT])[0]
    assert one_missed == pytest.approx((1 - 1) / 2)
    assert degradation_reward([chain("gaussian noise(0.5)")], degradations=[GT])[0] == pytest.approx(-1.0)
    assert degradation_score([], [], "matched") == 1.0  # clean image, nothing claimed
    # aliases and case
    assert degradation_reward([chain("Defocus Blur(0.69), GRAFFITI(0.43)")], degradations=[GT])[0] == pytest.approx(1.0)


def test_reference_mode_reproduces_the_reference_code():
    # +1 + (0.5 - |ds|) per matched name, -1 per extra prediction, -1 per missed ground truth
    got = degradation_reward([chain("lens blur(0.45), gaussian noise(0.2)")], mode="reference", degradations=[GT])[0]
    assert got == pytest.approx((1 + 0.5 - 0.24) - 1 - 1)


def test_ground_truth_falls_back_to_the_solution_and_none_when_missing():
    assert degradation_reward([chain()], solution=[SOLUTION])[0] == pytest.approx(0.875)
    assert degradation_reward([chain()])[0] is None
    assert accuracy_reward([chain()])[0] is None
    assert length_reward([chain()])[0] is None
    with pytest.raises(ValueError, match="unknown mode"):
        degradation_reward([chain()], mode="eq6", degradations=[GT])


# ---------------------------------------------------------------- gaming


def test_gaming_type_cannot_beat_an_honest_answer():
    honest = degradation_reward([chain()], degradations=[GT])[0]
    repeated = degradation_reward([chain("lens blur(0.45), lens blur(0.45), graffiti(0.44), graffiti(0.44)")], degradations=[GT])[0]
    everything = degradation_reward([chain(", ".join(f"{n}(0.5)" for n in degrade.names()))], degradations=[GT])[0]
    assert repeated < honest and everything < honest
    # Eq. 6 itself is gameable by repetition (why `matched` is the default)
    assert degradation_reward([chain("lens blur(0.45), lens blur(0.45), graffiti(0.44)")], mode="paper", degradations=[GT])[0] > \
        degradation_reward([chain()], mode="paper", degradations=[GT])[0]


def test_padding_the_reasoning_cannot_raise_r_len():
    honest = length_reward([chain()], **COLS)[0]
    assert honest == pytest.approx(1.0)
    for k in (2, 5, 50):
        padded = length_reward([chain(reasoning=REASONING * k)], **COLS)[0]
        assert padded < honest
    assert length_reward([chain(reasoning="word " * 4000)], **COLS)[0] == -1.0  # clipped
    assert length_reward([chain(reasoning="word " * 4000)], clip=False, **COLS)[0] < -1.0


# ---------------------------------------------------------------- format and accuracy


def test_format_strict_and_partial():
    assert format_reward([chain()]) == [1.0]
    broken = "<TYPE>x<TYPE_END><REASONING>r<REASONING_END><INFLUENCE>i<INFLUENCE_END><ANSWER>1<ANSWER_END>"
    assert format_reward([broken]) == [0.0]
    assert format_reward([broken], partial=True) == [pytest.approx(4 / 5 / 2)]
    assert format_reward([chain() + "<ANSWER>2<ANSWER_END>"]) == [0.0]
    assert format_reward([chain(answer=" ")]) == [0.0]


@pytest.mark.parametrize(
    "pred,expected",
    [("1", 1), ("(B)", 1), ("B.", 1), ("b", 1), ("Option 1", 1), ("the answer is 1", 1), ("a cat", 1),
     ("A cat.", 1), ("It is a cat", 1), ("1. a cat", 1), ("choice: c", 2), ("2", 2), ("7", None), ("", None), ("dog or cat", None)],
)
def test_normalize_choice(pred, expected):
    assert normalize_choice(pred, ["a dog", "a cat", "a bird"]) == expected


def test_score_answer_open_numbers_yes_no_and_vqa_soft_score():
    assert score_answer("three", "3") == 1.0 and score_answer("3.0", "3") == 1.0 and score_answer("3", "three") == 1.0
    assert score_answer("Yes, it is.", "yes") == 1.0 and score_answer("No", "yes") == 0.0
    assert score_answer("The Car", "car") == 1.0
    da = ["car", "car", "auto", "vehicle", "car", "car"]
    assert score_answer("car", None, direct_answers=da) == 1.0
    assert score_answer("auto", None, direct_answers=da) == pytest.approx(1 / 3)
    assert score_answer("bus", None, direct_answers=da) == 0.0


def test_accuracy_reward_reads_the_answer_block():
    comps = [chain(answer="(B)"), chain(answer="0"), "no tags at all 1", chain(answer="a cat")]
    assert accuracy_reward(comps, answer=["1"] * 4, choices=[["a dog", "a cat"]] * 4) == [1.0, 0.0, 0.0, 1.0]


# ---------------------------------------------------------------- TRL compatibility


def test_conversational_completions_and_extra_trl_kwargs():
    conv = [[{"role": "assistant", "content": chain()}], [{"role": "assistant", "content": [{"type": "text", "text": chain()}]}]]
    extra = dict(prompts=["p", "p"], completion_ids=[[1], [2]], trainer_state=None, image=[None, None], log_metric=None)
    cols = {k: v * 2 for k, v in COLS.items()}
    assert format_reward(conv, **extra, **cols) == [1.0, 1.0]
    assert accuracy_reward(conv, **extra, **cols) == [1.0, 1.0]
    assert length_reward(conv, **extra, **cols) == [1.0, 1.0]
    assert degradation_reward(conv, **extra, **cols) == [pytest.approx(0.875)] * 2


def test_build_rewards_names_weights_and_partial():
    funcs, weights = build_rewards()
    assert [f.__name__ for f in funcs] == ["r_deg", "r_len", "accuracy", "format"] and weights == [1.0] * 4
    out = [f([chain()], **COLS)[0] for f in funcs]
    assert out == [pytest.approx(0.875), pytest.approx(1.0), 1.0, 1.0]
    funcs, weights = build_rewards({"degradation": 2.0, "length": 0.0}, degradation_mode="paper")
    assert [f.__name__ for f in funcs] == ["r_deg"] and weights == [2.0]
    assert funcs[0]([chain()], **COLS)[0] == pytest.approx(1.75)
    paper = functools.partial(degradation_reward, mode="paper")
    assert paper([chain()], **COLS)[0] == pytest.approx(1.75)
    assert combined_reward([chain()], **COLS)[0] == pytest.approx(0.875 + 1 + 1 + 1)
    with pytest.raises(ValueError, match="unknown reward"):
        build_rewards({"speed": 1.0})


def test_length_in_tokens_with_a_tokenizer_built_once():
    calls = []

    class Tok:
        def encode(self, text, add_special_tokens=False):
            calls.append(text)
            return list(text.replace(" ", ""))

    funcs, _ = build_rewards({"length": 1.0}, length_unit="tokens", tokenizer=Tok())
    r = funcs[0]([chain()], solution=[SOLUTION])[0]
    assert r == pytest.approx(1.0) and calls
    # 2 characters against a 199-character target: 1 - 197/199
    assert length_reward([chain(reasoning="ab")], unit="tokens", tokenizer=lambda t: list(t), solution=[SOLUTION])[0] == pytest.approx(2 / 199)
    with pytest.raises(ValueError, match="tokenizer"):
        length_reward([chain()], unit="tokens", solution=[SOLUTION])


# ---------------------------------------------------------------- fuzzing

NASTY = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["", "<TYPE>", "<TYPE><TYPE>lens blur(nan)<TYPE_END>", "<TYPE>noise(1e309), blur(-inf)<TYPE_END>",
                     "<TYPE>" + "graffiti(0.5), " * 500 + "<TYPE_END>", "<ANSWER><ANSWER>1<ANSWER_END>", "\x00\ud7ff\uffff",
                     "<REASONING>" + "x " * 5000, "<TYPE_END><TYPE>watermark(inf)"]),
    st.builds(lambda a, b: chain(a, b), st.text(max_size=80), st.text(max_size=80)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=NASTY, conv=st.booleans())
def test_no_reward_raises_and_values_are_finite_and_in_range(text, conv):
    comp = [[{"role": "assistant", "content": text}]] if conv else [text]
    checks = [
        (format_reward(comp, **COLS), 0.0, 1.0),
        (format_reward(comp, partial=True, **COLS), 0.0, 1.0),
        (accuracy_reward(comp, **COLS), 0.0, 1.0),
        (degradation_reward(comp, **COLS), -1.0, 1.0),
        (degradation_reward(comp, mode="paper", **COLS), -64.0, 64.0),
        (degradation_reward(comp, mode="reference", **COLS), -66.0, 96.0),
        (length_reward(comp, **COLS), -1.0, 1.0),
        (length_reward(comp, scope="chain", **COLS), -1.0, 1.0),
    ]
    for values, lo, hi in checks:
        assert len(values) == 1 and values[0] is not None
        assert math.isfinite(values[0]) and lo <= values[0] <= hi
