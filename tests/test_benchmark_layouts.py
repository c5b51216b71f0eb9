"""Every preset on a local copy in its real layout: loading, split names, VLMEvalKit TSVs, and a
scripted model that always answers right, in ten answer styles, scoring 100 % on each.

The copies are built by ``_bench_layouts.py`` (each builder says where its layout comes from)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from _bench_layouts import (
    LETTERS,
    Truth,
    b64_jpeg,
    make_aokvqa,
    make_mmbench,
    make_mmdbench,
    make_mmmb,
    make_mmstar,
    make_rbench,
    make_realworldqa,
    picture,
    write_tsv,
)
from factory.cli import app
from factory.sources import UnknownSplitError
from trainers.eval import EvalConfig, evaluate
from trainers.eval.benchmarks import BadRow, load_benchmark, split_inline_options
from trainers.eval.scoring import score_output
from trainers.eval.tsv import MultiImage, read_tsv

runner = CliRunner()

# ---------------------------------------------------------------- the ten answer styles


def _styled(style: str, t: Truth) -> str:
    """A correct answer to ``t`` written in ``style`` (open questions use the answer text)."""
    if t.index is None:
        x = t.text
        return {"letter": x, "paren": f"({x})", "letter_text": x, "text": x, "answer_is": f"The answer is {x}.",
                "boxed": f"\\boxed{{{x}}}", "bold": f"**{x}**", "answer_colon": f"Answer: {x}",
                "because": f"{x}, because that is what the picture shows.", "index": x}[style]
    letter, text = LETTERS[t.index], t.choices[t.index]
    return {
        "letter": letter,                                            # "B"
        "paren": f"({letter})",                                      # "(B)"
        "letter_text": f"{letter}. {text}",                          # "B. Lane B."
        "text": text,                                                # the option's text ("3" on a counting question)
        "answer_is": f"The answer is {letter}.",                     # "The answer is B."
        "boxed": f"\\boxed{{{letter}}}",                             # "\boxed{B}"
        "bold": f"**{letter}**",                                     # "**B**"
        "answer_colon": f"Answer: {letter}",                         # "Answer: B"
        "because": f"{letter}, because the picture shows {text}.",   # leading letter + explanation
        "index": str(t.index),                                       # 0-based, as our prompts number the options
    }[style]


STYLES = ("letter", "paren", "letter_text", "text", "answer_is", "boxed", "bold", "answer_colon", "because", "index")


def _ws(text: str) -> str:
    return " ".join(str(text).split())


class Scripted:
    """A model that always answers right, in one style: it finds the question in the prompt (and,
    for questions asked twice with rolled options, the option order)."""

    def __init__(self, samples, truth: dict[str, Truth], style: str):
        self.items = [(_ws(s.question), [_ws(c) for c in s.choices], truth[s.id.split("@", 1)[0]]) for s in samples]
        self.style = style
        self.asked: list[str] = []

    def _find(self, prompt: str) -> Truth:
        prompt = _ws(prompt)
        hits = [(q, c, t) for q, c, t in self.items if q and q in prompt]
        if len(hits) > 1:
            def in_order(choices):
                pos, at = [], 0
                for c in choices:
                    at = prompt.find(c, at)
                    if at < 0:
                        return False
                    pos.append(at)
                return True
            hits = [h for h in hits if in_order(h[1])] or hits
            hits.sort(key=lambda h: -len(h[0]))
        assert hits, f"no question of the benchmark in the prompt {prompt[:200]!r}"
        return hits[0][2]

    def generate(self, images, prompts):
        self.asked += list(prompts)
        return [_styled(self.style, self._find(p)) for p in prompts]


# ---------------------------------------------------------------- the copies (built once per module)


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    root = tmp_path_factory.mktemp("layouts")
    out = {
        "mmstar": make_mmstar(root),
        "realworldqa": make_realworldqa(root),
        "mmbench": make_mmbench(root),
        "mmmb": make_mmmb(root),
        "aokvqa": make_aokvqa(root),
        "rbench": make_rbench(root / "rb"),
        "mmdbench:mmstar": make_mmdbench(root, bases=("MMStar", "MMBench_DEV_EN_V11", "MMVet")),
    }
    return out


PRESET_LEVELS = {"rbench": (0.0, 1.0), "mmdbench:mmstar": (0.0, 0.23, 0.45, 0.9)}


def _samples(preset: str, copies):
    path, truth = copies[preset]
    levels = PRESET_LEVELS.get(preset)
    bench = load_benchmark(f"{preset}@{path}", levels=levels)
    samples = list(bench)
    assert not [s for s in samples if isinstance(s, BadRow)]
    return bench, samples, truth


@pytest.mark.parametrize("preset", ["mmstar", "realworldqa", "mmbench", "mmmb", "aokvqa", "rbench", "mmdbench:mmstar"])
@pytest.mark.parametrize("style", STYLES)
def test_a_model_that_always_answers_right_scores_100_percent_in_every_style(preset, style, copies):
    """Each style read with the option labels of a prompt that asks for it: the 0-based index under our
    index-numbered prompts (robust, reference), everything else under the letter-labelled plain prompt
    (where a bare value such as "3" on a counting question is the option's text, as in VLMEvalKit)."""
    _, samples, truth = _samples(preset, copies)
    assert samples
    labels = "index" if style == "index" else "letter"
    wrong = []
    for s in samples:
        out = _styled(style, truth[s.id.split("@", 1)[0]])
        if score_output(out, s, 0.0, None, labels=labels)["correct"] != 1.0:
            wrong.append((s.id, out, s.choices))
    assert not wrong, f"{style}: read wrongly: {wrong}"


@pytest.mark.parametrize("preset", ["mmstar", "realworldqa", "mmbench", "mmmb", "aokvqa", "rbench", "mmdbench:mmstar"])
def test_every_preset_runs_end_to_end_on_its_copy(preset, copies, tmp_path):
    bench, samples, truth = _samples(preset, copies)
    levels = PRESET_LEVELS.get(preset, (0.0, 0.45))
    model = Scripted(samples, truth, "letter")
    cfg = EvalConfig(model="scripted", benchmark=f"{preset}@{copies[preset][0]}", out=str(tmp_path / "run"),
                     levels=levels, prompt="plain")
    run = evaluate(cfg, model=model, progress=False)
    assert run.errors == 0
    assert {sc["level"] for sc in run.summary["levels"]} == set(levels)
    for sc in run.summary["levels"]:
        assert sc["accuracy"] == 1.0, (preset, sc)
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["benchmark"]["name"].startswith(preset.split(":")[0])
    rows = [json.loads(x) for x in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    pre = "predegraded" in meta["benchmark"]
    assert all((r["recipe"] is None) == (pre or r["level"] == 0) for r in rows)  # no degradation of ours there


# ---------------------------------------------------------------- split names


def test_split_names_pass_through_and_a_wrong_split_lists_the_declared_ones(copies, tmp_path):
    path = copies["mmstar"][0]
    assert load_benchmark(f"mmstar@{path}").split == "val"
    with pytest.raises(UnknownSplitError, match=r"no split 'validation'.*declares 'val'") as err:
        load_benchmark(f"mmstar@{path}", split="validation")
    assert err.value.available == ["val"]
    mmb = copies["mmbench"][0]
    assert load_benchmark(f"mmbench@{mmb}").split == "dev"
    test = list(load_benchmark(f"mmbench@{mmb}", split="test"))
    assert len(test) == 1 and isinstance(test[0], BadRow)  # MMBench's test answers are withheld
    with pytest.raises(UnknownSplitError, match=r"'dev', 'test'"):
        load_benchmark(f"mmbench@{mmb}", split="val")
    res = runner.invoke(app, ["eval", "tiny", "--benchmark", f"mmstar@{path}", "--split", "validation",
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "'val'" in res.output, res.output


def test_renamed_configs_and_splits_of_older_copies_still_load(tmp_path):
    old_star, _ = make_mmstar(tmp_path / "a", config_name="mmstar")  # the first commit's configuration name
    assert len(list(load_benchmark(f"mmstar@{old_star}"))) == 6
    old_rwqa, _ = make_realworldqa(tmp_path / "b", split="test_0412")  # before the split was renamed test
    bench = load_benchmark(f"realworldqa@{old_rwqa}")
    assert bench.split == "test_0412" and len(list(bench)) == 5
    with pytest.raises(UnknownSplitError, match="test_0412"):  # a split given explicitly is never substituted
        load_benchmark(f"realworldqa@{old_rwqa}", split="test")


def test_a_local_plain_folder_accepts_the_declared_and_the_factory_split_names(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from _source_fixture import encode

    d = tmp_path / "plain"
    d.mkdir()
    row = {"image": {"bytes": encode(picture(1)), "path": None}, "question": "Q?", "choices": ["a", "b"], "answer": 1}
    pq.write_table(pa.Table.from_pylist([row]), d / "val.parquet")
    for split in ("val", "validation"):
        (s,) = list(load_benchmark(str(d), split=split))
        assert s.answer == "1"


# ---------------------------------------------------------------- VLMEvalKit TSVs


def test_vlmevalkit_tsv_cells_are_read_as_vlmevalkit_reads_them(tmp_path):
    img = b64_jpeg(picture(3))
    rows = [
        {"index": 10, "question": "Which?", "hint": "nan", "A": "x", "B": "y", "C": None, "D": "w", "answer": "D",
         "image": img, "category": "c1"},
        {"index": 1000010, "question": "Which?", "hint": None, "A": "y", "B": "w", "C": "x", "D": None, "answer": "B",
         "image": "10", "category": "c1"},  # a rolled copy: its image is a reference to index 10
        {"index": 11, "question": "Two pictures: which is brighter?", "hint": "Look at both.", "A": "left",
         "B": "right", "answer": "A", "image": str([b64_jpeg(picture(4)), b64_jpeg(picture(5, h=20, w=20))])},
        {"index": 12, "question": "Bad reference?", "A": "p", "B": "q", "answer": "A", "image": "99"},
        {"index": 13, "question": "Reference to a reference?", "A": "p", "B": "q", "answer": "B", "image": "1000010"},
    ]
    path = write_tsv(tmp_path / "Mixed_DEV.tsv", rows, ["index", "question", "hint", "A", "B", "C", "D", "answer",
                                                         "image", "category"])
    table = read_tsv(path)
    assert [r["index"] for r in table] == [10, 1000010, 11, 12, 13]  # integer-like index → int
    assert table.option_columns == ("A", "B", "C", "D")
    assert table[0]["hint"] is None and table[0]["C"] is None
    assert isinstance(table[2]["image"], MultiImage)
    out = list(load_benchmark(str(path)))
    s0, s1, s2, bad1, bad2 = out
    assert s0.choices == ["x", "y", "w"] and s0.answer == "2" and s0.question == "Which?"  # D after an empty C
    assert s1.choices == ["y", "w", "x"] and s1.answer == "1"
    assert np.array_equal(s1.load_image(), s0.load_image())  # the reference resolved to row 10's picture
    assert s2.question == "Look at both.\nTwo pictures: which is brighter?"
    assert s2.load_image().shape == (40, 56 + 40, 3)  # side by side; the 20x20 one scaled to height 40
    assert isinstance(bad1, BadRow) and "index 99" in bad1.error and "no row" in bad1.error
    assert isinstance(bad2, BadRow) and "holds no image of its own" in bad2.error
    text_idx = write_tsv(tmp_path / "t.tsv", [{"index": "q-1", "question": "Q?", "A": "a", "B": "b", "answer": "A",
                                               "image": img}], ["index", "question", "A", "B", "answer", "image"])
    assert read_tsv(text_idx)[0]["index"] == "q-1"
    with pytest.raises(ValueError, match="not a VLMEvalKit TSV"):
        read_tsv(write_tsv(tmp_path / "x.tsv", [{"a": 1}], ["a"]))


def test_tsv_option_texts_none_and_na_are_kept_not_dropped(tmp_path):
    path = write_tsv(tmp_path / "n.tsv", [{"index": 0, "question": "Which is empty?", "A": "None", "B": "NA",
                                           "C": "null", "answer": "A", "image": b64_jpeg(picture(0))}],
                     ["index", "question", "A", "B", "C", "answer", "image"])
    (s,) = list(load_benchmark(str(path)))
    assert s.choices == ["None", "NA", "null"] and s.answer == "0"


def test_inline_options_whose_text_starts_with_a_label_are_split_on_the_outer_labels():
    q = "Which statement is right?\nOptions: A: (A) the cup, B: (B) the plate, C: (C) both, D: (D) neither"
    assert split_inline_options(q) == ("Which statement is right?", ["(A) the cup", "(B) the plate", "(C) both",
                                                                    "(D) neither"])
    q = "Where is it?\nA. (A) left\nB. (B) right"
    assert split_inline_options(q) == ("Where is it?", ["(A) left", "(B) right"])
    q = "Is point A. nearer than point B.?\nA. yes\nB. no"
    assert split_inline_options(q) == ("Is point A. nearer than point B.?", ["yes", "no"])
    assert split_inline_options("A.running; B.Play football; C.Play tennis") == ("", ["running", "Play football",
                                                                                     "Play tennis"])


# ---------------------------------------------------------------- R-Bench


def test_rbench_levels_come_from_the_strength_column_and_clean_from_the_reference_file(tmp_path):
    path, truth = make_rbench(tmp_path, full=True)
    bench = load_benchmark(f"rbench@{path}", levels=(0.0, 0.23, 0.45, 0.9))
    assert bench.predegraded["applied_by_us"] is False
    assert bench.scorer_names() == {"match", "judge:rbench-vqa", "judge:rbench-cap"}
    samples = list(bench)
    plans = {s.id: {p.level: p for p in bench.plan(s, (0.0, 0.23, 0.45, 0.9))} for s in samples}
    assert sorted(plans["rbench:0"]) == [0.0, 0.23]  # strength 1 = low
    assert sorted(plans["rbench:1"]) == [0.0, 0.45] and sorted(plans["rbench:2"]) == [0.0, 0.9]
    assert plans["rbench:1"][0.45].extra["distortion"] == "12"
    clean = plans["rbench:1"][0.0].sample.load_image()
    dist = plans["rbench:1"][0.45].sample.load_image()
    assert np.abs(clean.astype(int) - dist.astype(int)).mean() > 3  # the distorted file's picture, not the reference
    cap = next(s for s in samples if s.id == "rbench:4")
    assert cap.choices == [] and len(cap.direct_answers) == 5
    assert bench.scorer_name(cap) == "judge:rbench-cap"
    # VQA and CAP answers need the LLM judge: without it the run stops before generating anything
    from trainers.eval import scoring

    if not hasattr(scoring, "get_scorer"):
        with pytest.raises(ValueError, match="needs the judge scorer"):
            evaluate(EvalConfig(model="m", benchmark=f"rbench@{path}", out=str(tmp_path / "r"), levels=(0.0, 0.45)),
                     model=Scripted(samples, truth, "letter"), progress=False)
    with pytest.raises(ValueError, match=r"no images at 0\.6.*holds clean"):
        load_benchmark(f"rbench@{path}", levels=(0.6,))


def test_rbench_without_a_strength_column_puts_the_distorted_rows_at_all_strengths(copies):
    bench = load_benchmark(f"rbench@{copies['rbench'][0]}")
    assert bench.levels == [0.0, 1.0]
    with pytest.raises(ValueError, match=r"--levels clean,1"):
        load_benchmark(f"rbench@{copies['rbench'][0]}", levels=(0.23,))


# ---------------------------------------------------------------- MMD-Bench


def _mmd_truth_model(path: Path, truth, spec: str, levels=(0.0, 0.23, 0.45, 0.9), style="letter"):
    samples = [s for s in load_benchmark(f"{spec}@{path}", levels=levels) if not isinstance(s, BadRow)]
    return Scripted(samples, truth, style)


def test_mmdbench_reads_the_published_images_per_level_and_per_degradation(copies, tmp_path):
    path, truth = copies["mmdbench:mmstar"]
    bench = load_benchmark(f"mmdbench:mmstar@{path}", levels=(0.0, 0.23, 0.45, 0.9))
    samples = list(bench)
    assert len(bench) == len(samples) == 6 * (1 + 3)  # 6 questions + 3 per-degradation files
    s = samples[0]
    plan = {p.level: p for p in bench.plan(s, (0.0, 0.23, 0.45, 0.9))}
    assert sorted(plan) == [0.0, 0.23, 0.45, 0.9]
    assert plan[0.9].extra == {"source": "MMStar_LOW_LEVEL_HIGH.tsv", "type_truth": "unknown"}
    from _bench_layouts import _mmd_row_image

    high = read_tsv(path / "MMStar_LOW_LEVEL_HIGH.tsv")[0]["image"]
    assert high == _mmd_row_image(0, 0.9, "motion_blur", 0)  # the file's own image
    import base64
    import io

    from PIL import Image

    want = np.asarray(Image.open(io.BytesIO(base64.b64decode(high))).convert("RGB"))
    assert np.array_equal(plan[0.9].sample.load_image(), want)  # shown as published: no degradation of ours
    per = [x for x in samples if "@" in x.id]
    assert {x.id.split("@")[1] for x in per} == {"lens_blur", "gaussian_noise", "jpeg_compression"}
    (p,) = bench.plan(per[0], (0.0, 0.23, 0.45, 0.9))
    assert p.level == 0.9 and p.extra["variant"] == "per-degradation" and p.extra["degradation"] == "lens blur"
    assert bench.plan(per[0], (0.23,)) == []
    only = load_benchmark(f"mmdbench:mmstar@{path}", levels=(0.9,), only=["jpeg compression"])
    assert {x.id.split("@")[1] for x in only if "@" in x.id} == {"jpeg_compression"}
    mixed = load_benchmark(f"mmdbench:mmstar:mixed@{path}", levels=(0.23, 0.9))
    assert not [x for x in mixed if "@" in x.id]
    per_only = load_benchmark(f"mmdbench:mmstar:per-degradation@{path}", levels=(0.9,))
    assert len(per_only) == 18 and all("@" in x.id for x in per_only)
    with pytest.raises(ValueError, match="no base benchmark 'mmfoo'"):
        load_benchmark(f"mmdbench:mmfoo@{path}")


def test_acceptance_eval_mmdbench_mmstar_low_mid_high_on_a_local_copy(copies, tmp_path, monkeypatch):
    """``robust-r1 eval MODEL --benchmark mmdbench:mmstar --levels low,mid,high`` on a local copy
    found through VLMEvalKit's $LMUData, against an OpenAI-compatible server."""
    from fake_llm_server import ServerConfig, make_server, stop_server

    path, truth = copies["mmdbench:mmstar"]
    monkeypatch.setenv("LMUData", str(path))
    model = _mmd_truth_model(path, truth, "mmdbench:mmstar", levels=(0.23, 0.45, 0.9), style="answer_is")

    def respond(req):
        text = next(p["text"] for p in req["messages"][-1]["content"] if p.get("type") == "text")
        return model.generate([None], [text])[0]

    server, url, _ = make_server(ServerConfig(responder=respond))
    try:
        res = runner.invoke(app, ["eval", "scripted", "--endpoint", url, "--benchmark", "mmdbench:mmstar",
                                  "--levels", "low,mid,high", "--prompt", "plain", "--out", str(tmp_path / "mmd")])
    finally:
        stop_server(server)
    assert res.exit_code == 0, res.output
    out = tmp_path / "mmd"
    summary = json.loads((out / "summary.json").read_text())
    assert [sc["level"] for sc in summary["levels"]] == [0.23, 0.45, 0.9]
    assert [sc["name"] for sc in summary["levels"]] == ["LOW · 25%", "MID · 50%", "HIGH · 100%"]
    for sc in summary["levels"]:
        assert sc["n"] == 6 and sc["accuracy"] == 1.0 and sc["type_f1"] is None  # degradation not recorded
    per = {b["name"]: b for b in summary["breakdown"] if b["by"] == "degradation"}
    assert set(per) == {"lens blur", "gaussian noise", "jpeg compression"}
    assert all(b["level"] == 0.9 and b["n"] == 6 and b["accuracy"] == 1.0 for b in per.values())
    md = (out / "summary.md").read_text()
    assert "no degradation applied by us" in md and "LOW = 0.23" in md and "per-degradation files" in md
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 * 3 + 6 * 3 and all(r["recipe"] is None for r in rows)
    # a second run resumes: nothing asked again
    again = runner.invoke(app, ["eval", "scripted", "--endpoint", url, "--benchmark", "mmdbench:mmstar",
                                "--levels", "low,mid,high", "--prompt", "plain", "--out", str(out)])
    assert again.exit_code == 0 and "0 answers generated" in again.output


def test_eval_compare_puts_our_protocol_and_mmdbench_side_by_side(copies, tmp_path):
    from trainers.eval import compare

    star, star_truth = copies["mmstar"]
    ours_samples = [s for s in load_benchmark(f"mmstar@{star}")]
    ours = evaluate(EvalConfig(model="m", name="ours", benchmark=f"mmstar@{star}", out=str(tmp_path / "ours"),
                               prompt="plain"), model=Scripted(ours_samples, star_truth, "letter"), progress=False)
    path, truth = copies["mmdbench:mmstar"]
    mmd = evaluate(EvalConfig(model="m", name="mmd-bench", benchmark=f"mmdbench:mmstar@{path}",
                              out=str(tmp_path / "mmd"), prompt="plain"),
                   model=_mmd_truth_model(path, truth, "mmdbench:mmstar"), progress=False)
    assert [sc["level"] for sc in ours.summary["levels"]] == [sc["level"] for sc in mmd.summary["levels"]]
    res = compare([tmp_path / "ours", tmp_path / "mmd"], tmp_path / "cmp")
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| ours | 1.0000 | 1.0000 | 1.0000 | 1.0000 |" in table
    assert "| mmd-bench | 1.0000 | 1.0000 | 1.0000 | 1.0000 |" in table
    assert "## Per degradation at 100 % (0.9)" in table and "| lens blur |" in table
    assert len(res["summaries"]) == 2


def test_mmbench_rolls_count_only_when_every_roll_is_right(copies, tmp_path):
    path, truth = copies["mmdbench:mmstar"]

    class FirstRollOnly(Scripted):
        def generate(self, images, prompts):
            outs = super().generate(images, prompts)
            # answer the rolled copy (options rotated by one) with the main row's letter: wrong for the roll
            return [o if not re.search(r"\bA\. a table\b|\bA\. summer\b|\bA\. GO\b", p) else "A"
                    for o, p in zip(outs, prompts)]

    model = _mmd_truth_model(path, truth, "mmdbench:mmbench:mixed", levels=(0.23,))
    model.__class__ = FirstRollOnly
    run = evaluate(EvalConfig(model="m", benchmark=f"mmdbench:mmbench:mixed@{path}", out=str(tmp_path / "c"),
                              levels=(0.23,), prompt="plain"), model=model, progress=False)
    (sc,) = run.summary["levels"]
    assert sc["n"] == 6 and sc["accuracy"] == pytest.approx(0.5) and sc["circular_accuracy"] == 0.0
    assert "circular accuracy" in (tmp_path / "c" / "summary.md").read_text()


def test_mmvet_open_answers_need_the_judge_scorer(copies, tmp_path, monkeypatch):
    from factory.errors import ConfigError
    from trainers.eval.benchmarks import resolve_scorer

    path, truth = copies["mmdbench:mmstar"]
    bench = load_benchmark(f"mmdbench:mmvet@{path}", levels=(0.23,))
    assert bench.scorer_names() == {"judge:mmvet"}
    (s, _) = [x for x in bench if "@" not in x.id]
    assert s.choices == [] and s.answer == "12<OR>$12"
    cfg = EvalConfig(model="m", out=str(tmp_path / "v"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError) as err:  # refused before any answer is generated
        resolve_scorer("judge:mmvet", cfg)
    assert err.value.field == "judge_model" and "OPENAI_API_KEY" in str(err.value)
    res = runner.invoke(app, ["eval", "m", "--benchmark", f"mmdbench:mmvet@{path}", "--levels", "low",
                              "--out", str(tmp_path / "v")])
    assert res.exit_code == 2 and "--judge-model" in res.output and "OPENAI_API_KEY" in res.output, res.output
    monkeypatch.setenv("OPENAI_API_KEY", "test-key-" + "x" * 12)
    assert callable(resolve_scorer("judge:mmvet", cfg))


def test_mmdbench_clean_needs_the_base_file_and_says_where_to_put_it(tmp_path):
    path, _ = make_mmdbench(tmp_path, methods=(), with_clean=False, bases=("MMStar",))
    with pytest.raises(ValueError, match=r"no images at 0;.*MMStar\.tsv"):
        load_benchmark(f"mmdbench:mmstar@{path}", levels=(0.0, 0.23))
    bench = load_benchmark(f"mmdbench:mmstar@{path}", levels=(0.23, 0.45, 0.9))
    assert bench.predegraded["per_degradation"] == []
    with pytest.raises(ValueError, match="no MMD-Bench files"):
        load_benchmark(f"mmdbench:realworldqa@{path}", levels=(0.23,))


def test_a_published_image_that_cannot_be_matched_fails_that_level_only(tmp_path):
    path, truth = make_mmdbench(tmp_path, methods=(), bases=("MMStar",))
    rows = list(read_tsv(path / "MMStar_LOW_LEVEL_MID.tsv"))
    rows[1] = {**rows[1], "question": "A different question entirely?"}
    rows = [r for r in rows if r["index"] != 2]
    write_tsv(path / "MMStar_LOW_LEVEL_MID.tsv", rows, read_tsv(path / "MMStar.tsv").column_names)
    model = _mmd_truth_model(path, truth, "mmdbench:mmstar", levels=(0.23, 0.45))
    run = evaluate(EvalConfig(model="m", benchmark=f"mmdbench:mmstar@{path}", out=str(tmp_path / "e"),
                              levels=(0.23, 0.45), prompt="plain"), model=model, progress=False)
    errs = [json.loads(x) for x in (tmp_path / "e" / "errors.jsonl").read_text().splitlines()]
    assert {(e["id"], e["level"]) for e in errs} == {("mmdbench-mmstar:1", 0.45), ("mmdbench-mmstar:2", 0.45)}
    assert "another question" in errs[0]["error"] and "no row with index 2" in errs[1]["error"]
    assert {sc["level"]: sc["n"] for sc in run.summary["levels"]} == {0.23: 6, 0.45: 4}
