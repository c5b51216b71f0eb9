"""The method's rewards: exact values, every mode, TRL compatibility, fuzzing and gaming checks."""

from __future__ import annotations

import functools
import itertools
import math
import pickle
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from factory import degrade
from factory.chains.format import parse_type, render_chain
from factory.errors import ConfigError
from trainers.rewards import (
    DEFAULT_WEIGHTS,
    LOG_NAMES,
    MAX_TYPE_ITEMS,
    REWARDS,
    Reward,
    RewardSpec,
    accuracy_reward,
    build_rewards,
    combined_reward,
    completion_text,
    degradation_reward,
    degradation_score,
    format_reward,
    length_reward,
    make_length_reward,
    normalize_choice,
    pair_term,
    register_reward,
    score_answer,
    unregister_reward,
)

GT = [
    {"name": "lens blur", "stage": "acquisition", "intensity": 0.69, "params": "{}"},
    {"name": "graffiti", "stage": "post-processing", "intensity": 0.43, "params": "{}"},
]
REASONING = " ".join(["word"] * 40)
CHOICES = ["a dog", "a cat", "a bird"]
SOLUTION = render_chain([("lens blur", 0.69), ("graffiti", 0.43)], "infl", REASONING, "so a cat", "1")
COLS = {"solution": [SOLUTION], "answer": ["1"], "choices": [CHOICES], "degradations": [GT], "target_words": [40]}
NAMES = degrade.names()


def chain(type_text: str = "lens blur(0.45), graffiti(0.44)", reasoning: str = REASONING, answer: str = "1") -> str:
    return (
        f"<TYPE>{type_text}<TYPE_END><INFLUENCE>i<INFLUENCE_END><REASONING>{reasoning}<REASONING_END>"
        f"<CONCLUSION>c<CONCLUSION_END><ANSWER>{answer}<ANSWER_END>"
    )


def r_deg(type_text: str, mode: str = "matched", degradations=GT) -> float:
    return degradation_reward([chain(type_text)], mode=mode, degradations=[degradations])[0]


# ---------------------------------------------------------------- the paper's Figure 2 and Eq. 6


def test_figure_2_pair_terms_under_paper_scoring():
    assert pair_term(0.45, 0.69) == pytest.approx(0.76)  # lens blur
    assert pair_term(0.44, 0.43) == pytest.approx(0.99)  # graffiti
    assert degradation_score([("gaussian noise", 0.5)], [("lens blur", 0.69)], "paper") == -1.0  # no match
    assert r_deg("lens blur(0.45), graffiti(0.44)", "paper") == pytest.approx(0.76 + 0.99)
    assert r_deg("lens blur(0.45), graffiti(0.44), motion blur(0.2)", "paper") == pytest.approx(0.76 + 0.99 - 1)


def test_paper_mode_semantics():
    # one term per predicted item: missed ground truths cost nothing, a repeated type earns again
    assert r_deg("lens blur(0.69)", "paper") == pytest.approx(1.0)
    assert r_deg("lens blur(0.69), lens blur(0.69)", "paper") == pytest.approx(2.0)
    assert r_deg("none", "paper") == 0.0
    # not clipped, but only the first MAX_TYPE_ITEMS items are scored
    assert r_deg(", ".join(["motion blur(0.1)"] * 200), "paper") == -float(MAX_TYPE_ITEMS)


def test_pair_term_hygiene():
    assert pair_term(1.7, 0.9) == pytest.approx(0.9)  # clamped to 1
    assert pair_term(-3, 0.2) == pytest.approx(0.8)  # clamped to 0
    for bad in (float("nan"), float("inf"), "1e309", None, "x"):
        assert pair_term(bad, 0.5) == 0.0


# ---------------------------------------------------------------- matched (default) and reference


def test_matched_mode_values():
    assert r_deg("lens blur(0.45), graffiti(0.44)") == pytest.approx((0.76 + 0.99) / 2)
    assert r_deg("lens blur(0.69), graffiti(0.43)") == pytest.approx(1.0)
    assert r_deg("lens blur(0.69)") == pytest.approx((1 - 1) / 2)  # one match, one missed
    assert r_deg("lens blur(0.69), graffiti(0.43), motion blur(0.3)") == pytest.approx((2 - 1) / 3)
    assert r_deg("gaussian noise(0.5)") == pytest.approx(-1.0)
    assert r_deg("none") == pytest.approx(-1.0)
    # clean image: "none" is exact, anything else is wrong
    assert r_deg("none", degradations=[]) == 1.0
    assert r_deg("graffiti(0.1)", degradations=[]) == -1.0
    assert r_deg("the image looks fine", degradations=[]) == -1.0  # neither none nor an item
    # no TYPE block at all: the floor, whatever the image
    no_type = "<REASONING>r<REASONING_END><ANSWER>1<ANSWER_END>"
    assert degradation_reward([no_type, no_type], degradations=[GT, []]) == [-1.0, -1.0]
    assert degradation_reward([no_type], mode="paper", degradations=[GT]) == [0.0]
    assert degradation_reward([no_type], mode="reference", degradations=[GT]) == [-2.0]


def test_matched_mode_aliases_case_and_separators():
    assert r_deg("Defocus Blur(0.69), GRAFFITI(0.43)") == pytest.approx(1.0)
    assert r_deg("lens_blur (0.69) and Scribbles(0.43)") == pytest.approx(1.0)
    gt = [{"name": "Compression", "intensity": 0.5}, {"name": "Darkness", "intensity": 0.2}]  # paper's names in the GT
    assert r_deg("jpeg compression(0.5), dark illumination(0.2)", degradations=gt) == pytest.approx(1.0)
    assert r_deg("Block-Change(0.3)", degradations=[{"name": "block exchange", "intensity": 0.3}]) == pytest.approx(1.0)


def test_model_intensities_are_clamped_or_count_as_the_worst_match():
    # 1e309 / nan / inf: |Δs| = 1 (type still matched, no intensity credit); 5 → 1; -0.2 → 0
    assert r_deg("lens blur(1e309), graffiti(0.43)") == pytest.approx((0 + 1) / 2)
    assert r_deg("lens blur(nan), graffiti(inf)") == pytest.approx(0.0)
    assert r_deg("lens blur(5), graffiti(-0.2)") == pytest.approx((0.69 + 0.57) / 2)


def _brute_matched(pred, truth):
    """Best score over every one-to-one partial matching of same-type items (independent oracle)."""
    best = -math.inf
    for k in range(min(len(pred), len(truth)) + 1):
        for ps in itertools.permutations(range(len(pred)), k):
            for ts in itertools.combinations(range(len(truth)), k):
                if any(pred[i][0] != truth[j][0] for i, j in zip(ps, ts)):
                    continue
                gain = sum(1 - (1.0 if pred[i][1] is None else abs(pred[i][1] - truth[j][1])) for i, j in zip(ps, ts))
                u, m = len(pred) - k, len(truth) - k
                best = max(best, 1.0 if k + u + m == 0 else (gain - u - m) / (k + u + m))
    return best


ITEM = st.tuples(st.sampled_from(["lens blur", "graffiti", "gaussian noise"]), st.one_of(st.none(), st.floats(0, 1)))


@settings(max_examples=120, deadline=None)
@given(pred=st.lists(ITEM, max_size=4), truth=st.lists(ITEM.filter(lambda t: t[1] is not None), max_size=3))
def test_matched_is_the_optimal_one_to_one_matching(pred, truth):
    assert degradation_score(pred, truth) == pytest.approx(_brute_matched(pred, truth), abs=1e-9)


def test_reference_mode_reproduces_the_reference_code():
    # +1 + (0.5 - |Δs|) per predicted name in the GT, -1 per other prediction, -1 per GT name not predicted
    assert r_deg("lens blur(0.45), gaussian noise(0.2)", "reference") == pytest.approx((1 + 0.5 - 0.24) - 1 - 1)
    assert r_deg("lens blur(0.45), graffiti(0.44)", "reference") == pytest.approx(1.26 + 1.49)
    # a repeated name earns again (as in the reference code); a name listed twice in the GT keeps its last value
    assert r_deg("graffiti(0.43), graffiti(0.43)", "reference") == pytest.approx(1.5 + 1.5 - 1)
    twice = [{"name": "graffiti", "intensity": 0.1}, {"name": "graffiti", "intensity": 0.4}]
    assert r_deg("graffiti(0.4)", "reference", twice) == pytest.approx(1.5)


def test_unknown_mode_and_bad_ground_truth():
    with pytest.raises(ValueError, match="unknown mode"):
        degradation_reward([chain()], mode="eq6", degradations=[GT])
    with pytest.raises(ValueError, match="finite"):
        degradation_score([("graffiti", 0.1)], [("graffiti", float("nan"))])


def test_ground_truth_sources_and_none_when_unusable():
    assert degradation_reward([chain()], solution=[SOLUTION])[0] == pytest.approx(0.875)  # TYPE of the solution
    struct = {"name": ["lens blur", "graffiti"], "intensity": [0.69, 0.43], "stage": ["a", "b"]}  # dict of lists
    as_json = '[{"name": "lens blur", "intensity": 0.69}, {"name": "graffiti", "intensity": 0.43}]'
    tuples = [("lens blur", 0.69), ("graffiti", 0.43)]
    assert degradation_reward([chain()] * 3, degradations=[struct, as_json, tuples]) == [pytest.approx(0.875)] * 3
    unusable = [
        None,
        "not json",
        [{"name": "graffiti"}],
        [{"intensity": 0.3}],
        [{"name": "graffiti", "intensity": "nan"}],
        [42],
    ]
    assert degradation_reward([chain()] * 6, degradations=unusable) == [None] * 6
    assert degradation_reward([chain()], solution=["<ANSWER>1<ANSWER_END>"]) == [None]  # no TYPE in the solution
    assert degradation_reward([chain()], solution=["<TYPE>blurry<TYPE_END>"]) == [None]
    assert degradation_reward([chain()]) == [None]
    # the degradations column wins over the solution, even when it says "clean"
    assert degradation_reward([chain("none")], degradations=[[]], solution=[SOLUTION]) == [1.0]


# ---------------------------------------------------------------- gaming


def test_gaming_the_type_block_cannot_beat_an_honest_answer():
    honest = r_deg("lens blur(0.45), graffiti(0.44)")
    gamed = [
        "lens blur(0.45), lens blur(0.45), graffiti(0.44), graffiti(0.44)",  # repeating correct types
        "lens blur(0.69), lens blur(0.69), lens blur(0.69), graffiti(0.43)",  # repeating an exact one
        ", ".join(f"{n}(0.50)" for n in NAMES),  # all 16 types
        ", ".join(f"{n}({0.69 if n == 'lens blur' else 0.43})" for n in NAMES),  # all 16 at the true values
        ", ".join(["lens blur(0.69), graffiti(0.43)"] * 40),  # flooding past the item cap
    ]
    for t in gamed:
        assert r_deg(t) < honest, t
    # Eq. 6 itself and the reference code are gameable by repetition: why `matched` is the default
    assert r_deg(gamed[0], "paper") > r_deg("lens blur(0.45), graffiti(0.44)", "paper")
    assert r_deg(gamed[0], "reference") > r_deg("lens blur(0.45), graffiti(0.44)", "reference")


TRUTH = st.lists(st.tuples(st.sampled_from(NAMES), st.floats(0, 1)), min_size=1, max_size=5, unique_by=lambda t: t[0])


@settings(max_examples=100, deadline=None)
@given(truth=TRUTH, noise=st.lists(st.floats(-0.3, 0.3), min_size=5, max_size=5), data=st.data())
def test_adding_a_duplicate_or_a_wrong_type_never_raises_matched(truth, noise, data):
    honest = [(n, min(1.0, max(0.0, s + e))) for (n, s), e in zip(truth, noise)]
    base = degradation_score(honest, truth)
    dup = data.draw(st.sampled_from(honest))
    wrong = data.draw(st.sampled_from([n for n in NAMES if n not in {t[0] for t in truth}]))
    assert degradation_score(honest + [dup], truth) < base
    assert degradation_score(honest + [(wrong, 0.5)], truth) < base
    assert degradation_score(honest, truth) >= degradation_score(honest[:-1], truth)  # naming one more true type helps


def test_padding_the_reasoning_cannot_raise_r_len():
    honest = length_reward([chain()], **COLS)[0]
    assert honest == pytest.approx(1.0)
    for k in (2, 3, 5, 50):
        assert length_reward([chain(reasoning=REASONING * k)], **COLS)[0] < honest
        assert (
            length_reward([chain(reasoning=" ".join(["word"] * 40 * k))], scope="chain", **COLS)[0]
            < length_reward([chain()], scope="chain", **COLS)[0]
        )
    assert length_reward([chain(reasoning="word " * 4000)], **COLS)[0] == -1.0  # clipped
    assert length_reward([chain(reasoning="word " * 4000)], clip=False, **COLS)[0] == pytest.approx(1 - 3960 / 40)
    # leaving the block out (or blank) is the floor, never better than writing one
    no_reasoning = "<TYPE>x<TYPE_END><ANSWER>1<ANSWER_END>"
    assert length_reward([no_reasoning, chain(reasoning="  ")], **{k: v * 2 for k, v in COLS.items()}) == [-1.0, -1.0]


def test_gaming_the_answer_block_earns_nothing():
    hedges = (
        "0 1 2",
        "A B C",
        "a dog or a cat",
        "0. a dog 1. a cat 2. a bird",
        "Option 7",
        "B, C",
        "B or C",
        "B/C",
        "the answer is B or A",
        "It is a dog, B",
    )
    for hedge in hedges:
        assert accuracy_reward([chain(answer=hedge)], **COLS) == [0.0], hedge
    # a label that restates its own option commits to it; the contrast that follows is no hedge
    assert accuracy_reward([chain(answer="B. a cat, not a dog")], **COLS) == [1.0]


# ---------------------------------------------------------------- format


def test_format_strict_and_partial():
    assert format_reward([chain()]) == [1.0]
    assert format_reward([SOLUTION]) == [1.0]
    assert format_reward(["preamble " + chain() + " trailer"]) == [1.0]
    broken = "<TYPE>x<TYPE_END><REASONING>r<REASONING_END><INFLUENCE>i<INFLUENCE_END><ANSWER>1<ANSWER_END>"
    assert format_reward([broken]) == [0.0]
    assert format_reward([broken], partial=True) == [pytest.approx(4 / 5 / 2)]
    assert format_reward([chain() + "<ANSWER>2<ANSWER_END>"]) == [0.0]
    assert format_reward([chain() + "<ANSWER>2<ANSWER_END>"], partial=True) == [pytest.approx(4 / 5)]
    assert format_reward([chain(answer=" ")]) == [0.0]
    assert format_reward([chain().replace("<ANSWER_END>", "")]) == [0.0]  # unclosed
    assert format_reward([""], partial=True) == [0.0]


# ---------------------------------------------------------------- accuracy


@pytest.mark.parametrize(
    "pred,expected",
    [
        ("1", 1),
        ("(B)", 1),
        ("B.", 1),
        ("b", 1),
        ("[B]", 1),
        ("**B**", 1),
        ("Option 1", 1),
        ("the answer is 1", 1),
        ("Answer: (b)", 1),
        ("The correct option is (B).", 1),
        ("a cat", 1),
        ("A cat.", 1),
        ("It is a cat", 1),
        ("1. a cat", 1),
        ("B) a cat", 1),
        ("the answer is a cat", 1),
        ("The answer is B. It purrs.", 1),
        ("The answer is a small cat", 1),
        ("I think the answer is B because it purrs", 1),
        ("The answer is C, not B", 2),
        ("Option A is wrong; the answer is option B", 1),
        ("choice: c", 2),
        ("2", 2),
        ("Option 2", 2),
        ("ONE", 1),
        ("7", None),
        ("", None),
        ("dog or cat", None),
        ("1. a dog", None),
        ("0. a dog 1. a cat 2. a bird", None),
        ("A B C", None),
        ("the answer is 12345", None),
        ("1e309", None),
        ("nan", None),
        (None, None),
    ],
)
def test_normalize_choice(pred, expected):
    assert normalize_choice(pred, CHOICES) == expected


def test_normalize_choice_numbers_and_overlapping_options():
    assert normalize_choice("1", ["2", "0", "1"]) == 1  # a bare number is an index (the dataset's contract)
    assert normalize_choice("7", ["7", "8", "9"]) == 0  # ... unless it is no index: then the option's text
    assert normalize_choice("three", ["2", "3"]) == 1
    assert normalize_choice("x", ["x", "y", "z"]) == 0  # letter out of range → text
    assert normalize_choice("a black cat", ["cat", "black cat"]) == 1
    assert normalize_choice("the answer is 3.5 m", ["2.5 m", "3.5 m"]) == 1  # a decimal point is no sentence end
    assert normalize_choice("B", []) is None


def test_score_answer_multiple_choice_ground_truth_forms():
    for truth in ("1", 1, "B", "a cat", 1.0):
        assert score_answer("(B)", truth, CHOICES) == 1.0, truth
        assert score_answer("a dog", truth, CHOICES) == 0.0, truth
    assert score_answer("B", "7", CHOICES) == 0.0  # ground truth names no option
    assert score_answer("B", "-1", CHOICES) == 0.0 and normalize_choice("-1", CHOICES) is None
    assert score_answer(None, "1", CHOICES) == 0.0


def test_score_answer_open_numbers_yes_no_and_vqa_soft_score():
    for pred, truth in [
        ("three", "3"),
        ("3.0", "3"),
        ("3", "three"),
        ("3.50", "3.5"),
        ("1,000", "1000"),
        ("twenty-one", "21"),
        ("The answer is 3", "three"),
        ("Yes, it is.", "yes"),
        ("The Car", "car"),
    ]:
        assert score_answer(pred, truth) == 1.0, (pred, truth)
    for pred, truth in [("No", "yes"), ("4", "3"), ("3", "13"), ("car", "cars"), ("", "car"), ("1e309", "1")]:
        assert score_answer(pred, truth) == 0.0, (pred, truth)
    da = ["car", "car", "auto", "vehicle", "car", "car", "Car", "auto", "truck", "van"]
    assert score_answer("car", None, direct_answers=da) == 1.0
    assert score_answer("auto", None, direct_answers=da) == pytest.approx(2 / 3)
    assert score_answer("truck", None, direct_answers=da) == pytest.approx(1 / 3)
    assert score_answer("bus", None, direct_answers=da) == 0.0


def test_accuracy_reward_reads_the_answer_block_and_needs_ground_truth():
    comps = [chain(answer="(B)"), chain(answer="0"), "no tags at all 1", chain(answer="a cat")]
    assert accuracy_reward(comps, answer=["1"] * 4, choices=[CHOICES] * 4) == [1.0, 0.0, 0.0, 1.0]
    assert accuracy_reward([chain()]) == [None]
    assert accuracy_reward([chain()], answer=[""], choices=[CHOICES]) == [None]
    assert accuracy_reward([chain()], answer=["9"], choices=[CHOICES]) == [None]  # names no option
    assert accuracy_reward([chain(answer="a cat")], answer=[None], answer_text=["a cat"], choices=[CHOICES]) == [1.0]
    assert accuracy_reward([chain(answer="Car.")], answer=["car"], choices=[[]]) == [1.0]
    da = [["car"] * 2 + ["auto"] * 8]
    assert accuracy_reward([chain(answer="car")], answer=[""], choices=[[]], direct_answers=da) == [
        pytest.approx(2 / 3)
    ]


# ---------------------------------------------------------------- length


def test_length_values_targets_and_fallbacks():
    def r(reasoning, **cols):
        return length_reward([chain(reasoning=reasoning)], **cols)[0]

    assert r(" ".join(["w"] * 60), **COLS) == pytest.approx(0.5)
    assert r(" ".join(["w"] * 20), **COLS) == pytest.approx(0.5)
    # target_words absent or unusable: the solution's reasoning (40 words)
    for tw in (None, 0, 0.5, -3, float("nan"), float("inf"), "x", True):
        assert r(" ".join(["w"] * 30), solution=[SOLUTION], target_words=[tw]) == pytest.approx(0.75), tw
    assert r(" ".join(["w"] * 30), solution=[SOLUTION], target_words=[60]) == pytest.approx(0.5)  # target_words wins
    assert r("w") is None  # no ground truth
    assert r("w", solution=["<ANSWER>1<ANSWER_END>"]) is None  # solution without reasoning
    # the whole chain against the whole solution
    assert length_reward([SOLUTION], scope="chain", solution=[SOLUTION]) == [1.0]
    with pytest.raises(ValueError, match="scope"):
        length_reward([chain()], scope="answer", **COLS)
    with pytest.raises(ValueError, match="unit"):
        length_reward([chain()], unit="chars", **COLS)


class CountingTokenizer:
    """An HF-like tokenizer: one token per character, no spaces; counts its calls."""

    def __init__(self):
        self.calls = []

    def encode(self, text, add_special_tokens=True):
        self.calls.append(text)
        return list(text.replace(" ", "")) + ([0] if add_special_tokens else [])


def test_length_in_tokens_with_a_tokenizer_built_once_and_cached():
    tok = CountingTokenizer()
    f = make_length_reward(tok)
    assert f.__name__ == "r_len"
    assert f([chain()], solution=[SOLUTION]) == [pytest.approx(1.0)]  # special tokens not counted
    assert f([chain(reasoning="ab")] * 3, solution=[SOLUTION] * 3) == [pytest.approx(2 / 160)] * 3
    # one probe when built, the solution once (memoised), then one call per completion
    assert tok.calls == ["a b", REASONING, REASONING, "ab", "ab", "ab"]
    # any callable str -> list, a dict with input_ids, or an int count; a processor holding a tokenizer
    assert length_reward([chain(reasoning="ab")], unit="tokens", tokenizer=lambda t: list(t), solution=[SOLUTION]) == [
        pytest.approx(2 / 199)
    ]
    assert length_reward(
        [chain(reasoning="ab")], unit="tokens", tokenizer=lambda t: {"input_ids": list(t)}, solution=[SOLUTION]
    ) == [pytest.approx(2 / 199)]
    assert length_reward([chain(reasoning="ab")], unit="tokens", tokenizer=len, solution=[SOLUTION]) == [
        pytest.approx(2 / 199)
    ]

    class Processor:
        tokenizer = CountingTokenizer()

    assert make_length_reward(Processor())([chain()], solution=[SOLUTION]) == [pytest.approx(1.0)]
    with pytest.raises(ValueError, match="tokenizer"):
        length_reward([chain()], unit="tokens", solution=[SOLUTION])
    with pytest.raises(ValueError, match="not callable"):
        make_length_reward(object())
    with pytest.raises(ValueError, match="fails"):
        make_length_reward(lambda t: 1 / 0)


def test_a_tokenizer_failing_on_model_output_gives_none_not_a_crash(caplog):
    def picky(text):
        text.encode("utf-8")  # like Rust tokenizers: lone surrogates cannot be passed
        if "boom" in text:
            raise RuntimeError("cannot tokenize")
        return text.split()

    f = make_length_reward(picky)
    out = f([chain(reasoning="boom"), chain(reasoning="\ud800 lone surrogate")], solution=[SOLUTION] * 2)
    assert out[0] is None and out[1] == pytest.approx(1 - 37 / 40)  # "? lone surrogate": 3 words
    assert "tokenizer failed" in caplog.text


# ---------------------------------------------------------------- TRL compatibility and the composite


def test_conversational_completions_and_extra_trl_kwargs():
    conv = [
        [{"role": "assistant", "content": chain()}],
        [
            {
                "role": "assistant",
                "content": [{"type": "text", "text": chain()[:50]}, {"type": "text", "text": chain()[50:]}],
            }
        ],
        [
            {"role": "assistant", "content": "draft"},
            {"role": "tool", "content": "x"},
            {"role": "assistant", "content": chain()},
        ],
        {"role": "assistant", "content": chain()},
    ]
    n = len(conv)
    cols = {k: v * n for k, v in COLS.items()}
    # exactly how TRL's GRPOTrainer calls a reward function
    extra = dict(
        prompts=[[{"role": "user", "content": "q"}]] * n,
        completion_ids=[[1, 2]] * n,
        trainer_state=object(),
        log_extra=lambda *a, **k: None,
        log_metric=lambda *a, **k: None,
        image=[None] * n,
        prompt=["p"] * n,
        id=["x"] * n,
        answer_text=["a cat"] * n,
    )
    assert format_reward(completions=conv, **extra, **cols) == [1.0] * n
    assert accuracy_reward(completions=conv, **extra, **cols) == [1.0] * n
    assert length_reward(completions=conv, **extra, **cols) == [1.0] * n
    assert degradation_reward(completions=conv, **extra, **cols) == [pytest.approx(0.875)] * n
    for f in build_rewards()[0]:
        out = f(completions=conv, **extra, **cols)
        assert len(out) == n and all(isinstance(v, float) for v in out)
    assert completion_text([{"type": "text", "text": "a"}, {"type": "image"}, "b"]) == "ab"
    assert completion_text(None) == "" and completion_text(b"x") == "x"


def test_a_column_of_the_wrong_length_is_a_clear_error():
    with pytest.raises(ValueError, match="'answer' has 2 values for 1 completions"):
        accuracy_reward([chain()], answer=["1", "2"], choices=[CHOICES])


def test_build_rewards_names_weights_and_options():
    funcs, weights = build_rewards()
    assert [f.__name__ for f in funcs] == ["r_deg", "r_len", "accuracy", "format"] and weights == [1.0] * 4
    assert [f([chain()], **COLS)[0] for f in funcs] == [pytest.approx(0.875), pytest.approx(1.0), 1.0, 1.0]
    funcs, weights = build_rewards({"r_deg": 2.0, "length": 0.0}, degradation_mode="paper")
    assert [f.__name__ for f in funcs] == ["r_deg"] and weights == [2.0]
    assert funcs[0]([chain()], **COLS)[0] == pytest.approx(1.75)
    funcs, weights = build_rewards({"degradation": 1, "length": 1})  # the paper's R
    assert [f.__name__ for f in funcs] == ["r_deg", "r_len"]
    funcs, _ = build_rewards({"length": 1, "format": 0.5}, tokenizer=CountingTokenizer(), format_partial=True)
    assert funcs[0].options["counter"].unit == "tokens" and funcs[1].options == {"partial": True}
    for bad, match in [
        ({"speed": 1.0}, "unknown reward"),
        ({"format": float("nan")}, "finite"),
        ({"format": 0}, "every weight is 0"),
        ({"length": 1, "r_len": 2}, "twice"),
    ]:
        with pytest.raises(ValueError, match=match):
            build_rewards(bad)
    with pytest.raises(ValueError, match="tokenizer"):
        build_rewards(length_unit="tokens")
    with pytest.raises(ValueError, match="degradation_mode"):
        build_rewards(degradation_mode="eq6")
    assert set(REWARDS) == set(DEFAULT_WEIGHTS) and REWARDS["degradation"] is degradation_reward


def brevity_reward(completions, **_):
    """A reward registered by a test: 1 for a completion of at most 20 characters."""
    return [1.0 if len(completion_text(c)) <= 20 else 0.0 for c in completions]


def test_a_registered_reward_is_built_logged_weighted_and_in_the_grpo_settings_of_a_preset():
    from trainers.presets import settings_for

    register_reward("brevity", RewardSpec(brevity_reward, "r_brev", 0.5))
    try:
        funcs, weights = build_rewards()
        assert [f.__name__ for f in funcs] == ["r_deg", "r_len", "accuracy", "format", "r_brev"]
        assert weights == [1.0, 1.0, 1.0, 1.0, 0.5] and funcs[-1](["short", "x" * 30]) == [1.0, 0.0]
        assert (
            REWARDS["brevity"] is brevity_reward
            and LOG_NAMES["brevity"] == "r_brev"
            and DEFAULT_WEIGHTS["brevity"] == 0.5
        )
        funcs, weights = build_rewards({"r_brev": 2.0})  # by its log name too
        assert [f.__name__ for f in funcs] == ["r_brev"] and weights == [2.0]
        assert pickle.loads(pickle.dumps(funcs[0]))(["short"]) == [1.0]
        assert combined_reward(["short"], weights={"brevity": 1.0, "format": 1.0}) == [1.0]
        s = settings_for("tiny", "grpo")
        assert s.reward_weights == {"degradation": 1.0, "length": 1.0, "accuracy": 1.0, "format": 1.0, "brevity": 0.5}
        # what trainers.grpo.train_grpo does with the settings
        funcs, weights = build_rewards(weights=s.reward_weights, degradation_mode=s.degradation_mode)
        assert funcs[-1].__name__ == "r_brev" and weights[-1] == 0.5
        with pytest.raises(ValueError, match="already names a reward"):
            register_reward("brief", RewardSpec(brevity_reward, "r_len"))  # a log name taken
        with pytest.raises(ValueError, match="already names a reward"):
            register_reward("brevity", RewardSpec(brevity_reward, "r_brev2"))
        with pytest.raises(ValueError, match="finite"):
            register_reward("other", RewardSpec(brevity_reward, "r_other", float("inf")))
    finally:
        unregister_reward("brevity")
    assert "brevity" not in REWARDS and "brevity" not in settings_for("tiny", "grpo").reward_weights
    assert [f.__name__ for f in build_rewards()[0]] == ["r_deg", "r_len", "accuracy", "format"]


def test_build_rewards_configuration_errors_name_the_argument():
    with pytest.raises(ConfigError) as err:
        build_rewards({"speed": 1.0})
    assert err.value.field == "weights" and "speed" in str(err.value)
    with pytest.raises(ConfigError) as err:
        build_rewards({"r_deg": 1.0}, degradation_mode="eq6")
    assert err.value.field == "degradation_mode" and err.value.value == "eq6"


def test_variants_by_partial_and_the_composite():
    paper = functools.partial(degradation_reward, mode="paper")
    assert paper([chain()], **COLS)[0] == pytest.approx(1.75)
    assert combined_reward([chain()], **COLS) == [pytest.approx(0.875 + 1 + 1 + 1)]
    assert combined_reward([chain()], weights={"degradation": 2, "format": 0.5}, **COLS) == [pytest.approx(1.75 + 0.5)]
    # a part without ground truth (here: no accuracy columns) counts 0
    assert combined_reward([chain()], solution=[SOLUTION], target_words=[40]) == [pytest.approx(0.875 + 1 + 0 + 1)]


def test_reward_objects_are_picklable_and_named_for_trl():
    funcs, _ = build_rewards(tokenizer=CountingTokenizer())
    again = pickle.loads(pickle.dumps(funcs))
    assert [f.__name__ for f in again] == ["r_deg", "r_len", "accuracy", "format"]
    assert [f([chain()], **COLS) for f in again] == [f([chain()], **COLS) for f in funcs]
    assert "r_deg" in repr(funcs[0]) and isinstance(funcs[0], Reward)
    trl_utils = pytest.importorskip("trl.trainer.utils")
    if hasattr(trl_utils, "get_callable_name"):
        assert [trl_utils.get_callable_name(f) for f in funcs] == ["r_deg", "r_len", "accuracy", "format"]
        assert trl_utils.get_callable_name(functools.partial(degradation_reward, mode="paper")) == "degradation_reward"
    if hasattr(trl_utils, "is_async_callable"):
        assert not any(trl_utils.is_async_callable(f) for f in funcs)


def test_rewards_import_without_torch_or_transformers():
    code = (
        "import sys, trainers.rewards as r\n"
        "r.combined_reward(['<TYPE>graffiti(0.2)<TYPE_END>'], solution=['<TYPE>graffiti(0.3)<TYPE_END>'])\n"
        "print(sorted(m for m in ('torch', 'transformers', 'trl', 'datasets') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ---------------------------------------------------------------- the TYPE parser the rewards rely on


def test_degenerate_type_blocks_parse_fully():
    # 84 kB of one run of words (quadratic in the TYPE pattern before it was made linear), then the real items
    block = "blurry " * 12000 + ", lens blur(0.69), graffiti(0.43)"
    assert [(p.name, p.intensity) for p in parse_type(block)] == [("lens blur", 0.69), ("graffiti", 0.43)]
    assert r_deg(block[-16000:]) == pytest.approx(1.0)
    assert r_deg(block) == -1.0  # r_deg reads the first 16 384 characters of a TYPE block only
    assert r_deg("<" + " " * 12000 + "x, lens blur(0.69), graffiti(0.43)") == pytest.approx(1.0)  # was quadratic too
    # a 12 kB "name" before a number is junk (one wrong item), whatever the parser makes of it
    assert r_deg("ab " * 4000 + "(0.5), lens blur(0.69), graffiti(0.43)") == pytest.approx((2 - 1) / 3)
    assert r_deg("I can see ab " * 1000 + "(0.5), lens blur(0.69), graffiti(0.43)") == pytest.approx((2 - 1) / 3)


# ---------------------------------------------------------------- fuzzing

FLOATS = st.sampled_from(
    ["nan", "inf", "-inf", "1e309", "-1e309", "1e-400", "5", "-0.2", "0.43", ".5", "1.2.3", "0x1", "٣"]
)
TYPE_TEXT = st.lists(
    st.tuples(st.sampled_from(NAMES + ["Noise", "DARKNESS", "fog", "none", ""]), FLOATS), max_size=8
).map(lambda items: ", ".join(f"{n}({v})" for n, v in items))
NASTY = st.one_of(
    st.text(max_size=300),
    st.sampled_from(
        [
            "",
            "<TYPE>",
            "<TYPE><TYPE>lens blur(nan)<TYPE_END>",
            "<TYPE>noise(1e309), blur(-inf)<TYPE_END>",
            "<TYPE>" + "graffiti(0.5), " * 500 + "<TYPE_END>",
            "<ANSWER><ANSWER>1<ANSWER_END>",
            "\x00\ud7ff\uffff",
            "<REASONING>" + "x " * 5000,
            "<TYPE_END><TYPE>watermark(inf)",
            "<REASONING><REASONING>a<REASONING_END>",
            "<ANSWER>" + "answer is " * 400 + "<ANSWER_END>",
            "<ANSWER>" + "9" * 5000 + "<ANSWER_END>",
            "</TYPE><TYPE END><type-end>",
            "<" + " " * 3000,
            "<ANSWER>1e309<ANSWER_END>",
            "\ud800<ANSWER>\udfff",
        ]
    ),
    st.builds(chain, TYPE_TEXT, st.text(max_size=80), st.one_of(st.text(max_size=40), FLOATS)),
    st.builds(
        lambda a, b: a + b,
        st.sampled_from(["<TYPE>", "<REASONING>", "<ANSWER>", "</ANSWER>", "<INFLUENCE_END>"]),
        st.text(max_size=60),
    ),
)
RANGES = [
    (format_reward, {}, 0.0, 1.0),
    (format_reward, {"partial": True}, 0.0, 1.0),
    (accuracy_reward, {}, 0.0, 1.0),
    (degradation_reward, {}, -1.0, 1.0),
    (degradation_reward, {"mode": "paper"}, -MAX_TYPE_ITEMS, MAX_TYPE_ITEMS),
    (degradation_reward, {"mode": "reference"}, -(MAX_TYPE_ITEMS + 2), 1.5 * MAX_TYPE_ITEMS),
    (length_reward, {}, -1.0, 1.0),
    (length_reward, {"scope": "chain"}, -1.0, 1.0),
    (make_length_reward(str.split), {}, -1.0, 1.0),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=NASTY, conv=st.booleans())
def test_no_reward_raises_and_values_are_finite_and_in_range(text, conv):
    comp = [[{"role": "assistant", "content": text}]] if conv else [text]
    for f, opts, lo, hi in RANGES:
        values = f(comp, **opts, **COLS)
        assert len(values) == 1 and values[0] is not None, (f, opts)
        assert math.isfinite(values[0]) and lo <= values[0] <= hi, (f, opts, values)
    total = combined_reward(comp, **COLS)[0]
    assert math.isfinite(total) and -2.0 <= total <= 4.0


JUNK = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.text(max_size=10), max_size=4),
)
GT_ROW = st.fixed_dictionaries(
    {
        "answer": JUNK,
        "answer_text": JUNK,
        "choices": st.one_of(JUNK, st.lists(st.text(max_size=12), max_size=5)),
        "direct_answers": st.one_of(JUNK, st.lists(st.text(max_size=8), max_size=10)),
        "target_words": JUNK,
        "solution": st.one_of(JUNK, st.builds(chain, TYPE_TEXT, st.text(max_size=40))),
        "degradations": st.one_of(
            JUNK,
            st.lists(
                st.fixed_dictionaries(
                    {"name": st.one_of(st.sampled_from(NAMES), JUNK), "intensity": st.one_of(FLOATS, JUNK)}
                ),
                max_size=4,
            ),
        ),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=NASTY, row=GT_ROW)
def test_any_ground_truth_row_gives_none_or_a_value_in_range(text, row):
    cols = {k: [v] for k, v in row.items()}
    for f, opts, lo, hi in RANGES:
        if f is degradation_reward and opts.get("mode") == "reference":
            hi, lo = 1.5 * MAX_TYPE_ITEMS, -(MAX_TYPE_ITEMS + 16)
        (v,) = f([text], **opts, **cols)
        assert v is None or (math.isfinite(v) and lo <= v <= hi), (f, opts, v)


@settings(max_examples=200, deadline=None)
@given(
    pred=st.one_of(st.text(max_size=80), FLOATS),
    choices=st.lists(st.text(max_size=15), max_size=6),
    answer=JUNK,
    direct=st.one_of(st.none(), st.lists(st.text(max_size=10), max_size=10)),
)
def test_answer_matching_never_raises(pred, choices, answer, direct):
    i = normalize_choice(pred, choices)
    assert i is None or 0 <= i < len(choices)
    s = score_answer(pred, answer, choices, direct)
    assert 0.0 <= s <= 1.0
    assume(choices)
    assert score_answer(choices[0], 0, choices) in (0.0, 1.0)
