"""The chain writer's offline parts: prompts, length target, validation, template backend, Python API."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory import degrade
from factory.chains import template as tpl
from factory.chains.format import parse_chain
from factory.chains.prompting import (
    STEP_TEMPLATES,
    build_prompt,
    format_question,
    reload_prompts,
    render_prompt,
    target_words,
)
from factory.chains.validate import check_conclusion, check_length, check_text, clean_reply, length_bounds
from factory.chains.writer import (
    BatchReport,
    ChainConfig,
    ChainRequest,
    ChainResult,
    awrite_chains,
    request_from_image,
    resolve_answer,
    write_chains,
)
from factory.degrade.recipes import Recipe, make_step

CHOICES = ["a dog", "a cat", "a bird", "a horse"]


def _req(
    i: int, *, seed: int = 0, choices=CHOICES, answer="1", answer_text="a cat", question=None, recipe=None
) -> ChainRequest:
    r = recipe if recipe is not None else degrade.sample_recipe("train", seed, f"q{i}")
    return ChainRequest(
        f"q{i}", question or f"What animal is shown in photo {i}?", list(choices), answer, answer_text, r
    )


def _recipe(*pairs: tuple[str, float]) -> Recipe:
    return Recipe(tuple(make_step(n, s, k) for k, (n, s) in enumerate(pairs)), "train", 0, "t")


# ---------------------------------------------------------------- length target


def test_target_words_formula_clamps_and_grows():
    assert target_words(0) == 25 and target_words(1.0) == 55 and target_words(2.03) == 86
    assert target_words(5.8) == 199 and target_words(9) == 200 and target_words(float("inf")) == 200
    assert target_words(1.0, base=10, per_unit=10, lo=5, hi=50) == 20
    assert target_words(0.1, base=10, per_unit=10, lo=15, hi=50) == 15
    values = [target_words(t / 10) for t in range(0, 80)]
    assert values == sorted(values)
    for bad in (float("nan"), -0.1):
        with pytest.raises(ValueError, match="non-negative"):
            target_words(bad)
    cfg = ChainConfig(length_base=40, length_per_unit=10, length_min=30, length_max=60)
    assert (cfg.target(0), cfg.target(1), cfg.target(10)) == (40, 50, 60)


def test_length_bounds_are_inclusive_integers():
    assert length_bounds(100, 0.25) == (75, 125)
    assert length_bounds(25, 0.25) == (19, 31)
    assert check_length(" ".join(["w"] * 75), 100, 0.25) is None
    assert check_length(" ".join(["w"] * 125), 100, 0.25) is None
    assert "74 words" in check_length(" ".join(["w"] * 74), 100, 0.25)
    assert "126 words" in check_length(" ".join(["w"] * 126), 100, 0.25)


# ---------------------------------------------------------------- prompts


def test_question_and_prompt():
    assert format_question("What  is\nit?", ["a", " b  c "]) == "What is it? 0. a 1. b c"
    assert format_question("What is it?", []) == "What is it?"
    p = build_prompt("What is it?", ["a", "b"])
    assert p.startswith("What is it? 0. a 1. b")
    assert "number of the correct option" in p
    positions = [p.index(t) for t in ("<TYPE>", "<INFLUENCE>", "<REASONING>", "<CONCLUSION>", "<ANSWER>")]
    assert positions == sorted(positions)
    assert "number of the correct option" not in build_prompt("What is it?", [])


def test_bundled_step_templates_render_with_the_writers_context():
    ctx = dict(
        question="Q? 0. a 1. b",
        choices=["a", "b"],
        answer="1",
        answer_text="b",
        total_intensity=1.2,
        target_words=61,
        degradations=[{"name": "lens blur", "stage": "acquisition", "intensity": 0.5, "description": "d"}],
        degradation_list="lens blur (0.50)",
        influence="inf",
        reasoning="reas",
        min_words=50,
        max_words=70,
        longer=True,
        vision=True,
    )
    for name in STEP_TEMPLATES:
        out = render_prompt(name, **ctx)
        assert out and "{{" not in out and "{%" not in out
    assert "lens blur (0.50)" in render_prompt("influence", **ctx)
    assert "about 61 words" in render_prompt("length_scaling", **ctx)
    assert "clean photo" in render_prompt("influence", **ctx)
    assert "No images are attached" in render_prompt("influence", **{**ctx, "vision": False})


def test_prompts_are_strict_sandboxed_and_overridable(tmp_path):
    with pytest.raises(ValueError, match="'question' is undefined"):
        render_prompt("conclusion", reasoning="r", answer_text="a", choices=[])
    (tmp_path / "instruction.j2").write_text("CUSTOM {{ question }}")
    assert build_prompt("Q?", [], prompts_dir=tmp_path) == "CUSTOM Q?"
    # Templates missing from the user's folder fall back to the bundled ones.
    assert "Correct answer: x" in render_prompt(
        "conclusion", tmp_path, question="q", reasoning="r", answer_text="x", choices=[]
    )
    with pytest.raises(ValueError, match="no such folder"):
        build_prompt("Q?", [], prompts_dir=tmp_path / "missing")
    (tmp_path / "evil.j2").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(ValueError, match="sandbox"):
        render_prompt("evil", tmp_path)
    (tmp_path / "broken.j2").write_text("{% if %}")
    with pytest.raises(ValueError, match="broken.j2, line 1"):
        render_prompt("broken", tmp_path)
    with pytest.raises(ValueError, match="not found"):
        render_prompt("nope", tmp_path)


def test_edited_templates_are_picked_up_after_reload(tmp_path):
    (tmp_path / "instruction.j2").write_text("ONE {{ question }}")
    assert build_prompt("Q", [], prompts_dir=tmp_path) == "ONE Q"
    (tmp_path / "instruction.j2").write_text("TWO {{ question }}")
    reload_prompts()
    assert build_prompt("Q", [], prompts_dir=tmp_path) == "TWO Q"
    # write_chains reloads at the start of a batch.
    (tmp_path / "instruction.j2").write_text("THREE {{ question }}")
    (res,) = write_chains([_req(0)], ChainConfig(prompts_dir=str(tmp_path)))
    assert res.prompt.startswith("THREE What animal")


# ---------------------------------------------------------------- validation


def test_check_text():
    assert check_text("influence", "Blur hides the text.") is None
    assert check_text("influence", "  ") == "influence: empty"
    assert check_text("influence", None) == "influence: empty"
    assert "chain tags" in check_text("reasoning", "x <REASONING_END> y")
    assert "chain tags" in check_text("reasoning", "x </answer> y")
    assert "chain tags" in check_text("reasoning", "x <STEP_1> y")
    for refusal in (
        "I'm sorry, but I can't help with that.",
        "As an AI language model, I cannot see images.",
        "I am unable to view the image.",
        "I cannot determine the answer from this picture.",
        "Unfortunately no image was provided.",
    ):
        assert check_text("reasoning", refusal) == "reasoning: refusal boilerplate", refusal
    for fine in (
        "The small text cannot be read, but the shape is clear.",
        "The blur makes the sign unable to be read.",
        "Sorry-looking faces are visible in the crowd.",
    ):
        assert check_text("reasoning", fine) is None, fine
    assert check_text("reasoning", "... !!!") == "reasoning: no words"


def test_check_conclusion():
    assert check_conclusion("So the animal is a cat.", "a cat", "1", CHOICES) is None
    assert check_conclusion("So the animal is A CAT!", "a cat", "1", CHOICES) is None
    assert check_conclusion("The answer is option 1.", "a cat", "1", CHOICES) is None
    assert "does not state the answer" in check_conclusion("So the animal is a dog.", "a cat", "1", CHOICES)
    assert "names option 0" in check_conclusion("It is a cat, option 0.", "a cat", "1", CHOICES)
    assert "does not state" in check_conclusion("Concatenate.", "cat", "1", ["dog", "cat"])  # whole words only
    # A longer option that contains the answer does not count as stating it.
    assert "does not state" in check_conclusion("The flag is red and white.", "red", "0", ["red", "red and white"])
    assert check_conclusion("The flag is red.", "red", "0", ["red", "red and white"]) is None
    # Small numbers as digits or words.
    assert check_conclusion("There are two dogs.", "2", "2", []) is None
    assert check_conclusion("There are 3 dogs.", "three", "three", []) is None
    assert "refusal" in check_conclusion("I'm sorry, I can't answer.", "a cat", "1", CHOICES)


def test_clean_reply():
    assert clean_reply("<think>hmm <ANSWER>x</ANSWER></think>\n The blur hides text.") == "The blur hides text."
    assert clean_reply("lots of thoughts</think>The blur hides text.") == "The blur hides text."
    assert clean_reply("Reasoning: The cat is visible.") == "The cat is visible."
    assert clean_reply("**Conclusion:** So it is a cat.") == "So it is a cat."
    assert clean_reply('"The cat is visible."') == "The cat is visible."
    assert clean_reply("“The cat is visible.”") == "The cat is visible."
    assert clean_reply('He said "hi" and "bye"') == 'He said "hi" and "bye"'
    assert clean_reply("Line one.\n\nLine   two.") == "Line one. Line two."
    assert clean_reply("Reasoning-wise this is fine.") == "Reasoning-wise this is fine."
    assert clean_reply(None) == "" and clean_reply("") == ""


# ---------------------------------------------------------------- template backend


def test_template_chains_are_valid_deterministic_and_varied():
    reqs = [_req(i) for i in range(80)]
    a = write_chains(reqs, ChainConfig())
    b = write_chains(reqs, ChainConfig())
    assert [r.solution for r in a] == [r.solution for r in b]
    for req, res in zip(reqs, a):
        assert res.ok, res.reason
        p = parse_chain(res.solution)
        assert p.is_complete and p.answer == "1" and res.answer == "1" and res.backend == "template"
        assert [(t.name, t.intensity) for t in p.type_pairs] == req.recipe.type_pairs()
        assert (res.type, res.influence, res.reasoning, res.conclusion) == (
            p.type,
            p.influence,
            p.reasoning,
            p.conclusion,
        )
        assert res.target_words == target_words(req.recipe.total_intensity)
        lo, hi = length_bounds(res.target_words, 0.25)
        assert lo <= len(res.reasoning.split()) <= hi
        assert '"a cat"' in res.conclusion and "option 1" in res.conclusion
        assert res.question == format_question(req.question, req.choices)
        assert res.prompt == build_prompt(req.question, req.choices)
        for step in req.recipe.steps:
            assert step.name in res.influence
        sentences = re.split(r"(?<=[.!?\"])\s+(?=[A-Z\"])", res.reasoning)
        assert len(sentences) == len(set(sentences)), "a sentence is repeated"
    assert len({r.influence for r in a}) == len(a)  # wording varies between samples
    assert len({r.reasoning.split(".")[0] for r in a}) >= 3


def test_template_wording_depends_on_the_op_and_its_intensity_band():
    for name in degrade.names():
        texts = {}
        for s in (0.1, 0.5, 0.95):
            text = tpl.influence(_recipe((name, s)), "same-id")
            band = tpl.band(s)
            assert any(e.lower() in text.lower() for e in tpl.op_text(name).effect[band]), (name, s, text)
            assert f"{s:.2f}" in text and name in text
            texts[band] = text
        assert len(set(texts.values())) == 3
    assert (tpl.band(0.23), tpl.band(0.45), tpl.band(0.9)) == ("low", "medium", "high")


def test_template_length_follows_the_damage():
    reqs = [_req(i) for i in range(300)]
    res = write_chains(reqs, ChainConfig())
    ti = np.array([r.recipe.total_intensity for r in reqs])
    lens = np.array([len(x.reasoning.split()) for x in res])
    assert np.corrcoef(ti, lens)[0, 1] > 0.95
    rel = np.abs(lens - np.array([x.target_words for x in res])) / np.array([x.target_words for x in res])
    assert rel.max() <= 0.25 and np.median(rel) < 0.1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sid=st.text(min_size=1, max_size=20),
    seed=st.integers(0, 10**6),
    n_choices=st.integers(0, 6),
    answer_idx=st.integers(0, 5),
    base=st.integers(10, 80),
    per_unit=st.integers(0, 60),
    hi=st.integers(60, 300),
    question=st.text(
        alphabet=st.characters(blacklist_characters="<>", blacklist_categories=("Cs", "Cc")), min_size=1, max_size=150
    ).filter(str.strip),
)
def test_template_hits_any_target_within_tolerance(sid, seed, n_choices, answer_idx, base, per_unit, hi, question):
    choices = [f"option text {k}" for k in range(n_choices)]
    if choices:
        answer, answer_text = str(answer_idx % n_choices), choices[answer_idx % n_choices]
    else:
        answer = answer_text = "forty two"
    recipe = degrade.sample_recipe("train", seed, sid)
    req = ChainRequest(sid, question, choices, answer, answer_text, recipe)
    cfg = ChainConfig(length_base=base, length_per_unit=per_unit, length_min=20, length_max=hi)
    (res,) = write_chains([req], cfg)
    assert res.ok, res.reason
    lo, up = length_bounds(res.target_words, cfg.length_tolerance)
    assert lo <= len(res.reasoning.split()) <= up
    assert parse_chain(res.solution).is_complete


def test_open_question_and_undamaged_image():
    clean = Recipe((), "train", 0, "clean")
    req = ChainRequest("open", "What colour is the bus?", [], "red", "red", clean)
    (res,) = write_chains([req], ChainConfig())
    assert res.ok, res.reason
    p = parse_chain(res.solution)
    assert p.type == "none" and p.type_pairs == [] and p.answer == "red"
    assert res.target_words == 25 and "option" not in res.conclusion and '"red"' in res.conclusion


def test_answers_with_quotes_and_unicode():
    req = _req(0, choices=["l'été", 'the "big" one'], answer="1", answer_text='the "big" one')
    (res,) = write_chains([req], ChainConfig())
    assert res.ok, res.reason
    assert "big" in res.conclusion and parse_chain(res.solution).is_complete


def test_template_is_fast_enough_for_a_whole_dataset():
    reqs = [_req(i) for i in range(500)]
    rep = write_chains(reqs, ChainConfig())
    assert len(rep.ok) == 500  # speed itself is measured by bench/chains.py, not asserted here


# ---------------------------------------------------------------- batch API


def test_bad_samples_are_recorded_and_the_batch_goes_on():
    reqs = [
        _req(0),
        _req(1, answer="7"),  # option index out of range
        _req(2, question="   "),
        _req(3, answer="1", answer_text=""),
        _req(4, answer="cat"),  # not an index for multiple choice
        _req(5),
    ]
    seen: list[ChainResult] = []
    rep = write_chains(reqs, ChainConfig(), progress=seen.append)
    assert [r.ok for r in rep] == [True, False, False, False, False, True]
    assert [r.sample_id for r in seen] == [r.sample_id for r in reqs]
    assert "not an option index" in rep[1].reason and "question: empty" in rep[2].reason
    assert "answer: empty" in rep[3].reason and "not an option index" in rep[4].reason
    assert all(r.solution == "" for r in rep.failed)
    assert len(rep.failed) == 4 and len(rep.ok) == 2


def test_report_is_a_list_with_results_and_usage():
    rep = write_chains([_req(0), _req(1)])
    assert isinstance(rep, BatchReport) and isinstance(rep, list) and len(rep) == 2
    assert rep.results == list(rep) and rep.usage == {} and rep.cost_usd is None
    assert isinstance(rep[0], ChainResult)
    assert set(rep[0].fields()) >= {
        "type",
        "influence",
        "reasoning",
        "conclusion",
        "answer",
        "solution",
        "target_words",
        "backend",
    }


def test_async_api_and_sync_api_inside_a_running_loop():
    reqs = [_req(i) for i in range(5)]
    sync = write_chains(reqs)

    async def main():
        a = await awrite_chains(reqs)
        b = write_chains(reqs)  # from inside a running loop (Jupyter): runs in a worker thread
        return a, b

    a, b = asyncio.run(main())
    assert [r.solution for r in a] == [r.solution for r in b] == [r.solution for r in sync]


def test_config_validation_fingerprint_and_secret_hiding():
    with pytest.raises(ValueError, match="backend"):
        write_chains([_req(0)], ChainConfig(backend="claude"))
    with pytest.raises(ValueError, match="tolerance"):
        write_chains([_req(0)], ChainConfig(length_tolerance=0))
    cfg = ChainConfig(backend="openai", model="m", api_key="sk-secret-value", cache_dir="/tmp/x", concurrency=3)
    assert "sk-secret-value" not in repr(cfg)
    fp = cfg.fingerprint()
    assert "api_key" not in fp and "cache_dir" not in fp and "concurrency" not in fp
    assert fp["model"] == "m" and fp["length_base"] == 25
    assert ChainConfig().backend_label == "template" and cfg.backend_label == "openai:m"


def test_resolve_answer_and_request_from_image():
    assert resolve_answer("2", CHOICES) == ("2", "a bird")
    assert resolve_answer("a Horse", CHOICES) == ("3", "a horse")
    assert resolve_answer("B", CHOICES) == ("1", "a cat")
    assert resolve_answer("forty two", []) == ("forty two", "forty two")
    for bad in ("9", "zebra", ""):
        with pytest.raises(ValueError, match="--answer"):
            resolve_answer(bad, CHOICES if bad else [])
    img = (np.arange(24 * 32 * 3) % 251).astype(np.uint8).reshape(24, 32, 3)
    req = request_from_image(img, question="What?", answer="1", choices=["x", "y"], seed=3, sample_id="s")
    assert req.recipe.type_pairs() == degrade.sample_recipe("train", 3, "s").type_pairs()
    assert req.degraded_image.shape == img.shape and req.degraded_image.dtype == np.uint8
    assert (req.answer, req.answer_text) == ("1", "y")
    assert np.array_equal(req.clean_image, img)
