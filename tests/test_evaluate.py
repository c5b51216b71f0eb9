"""Robustness evaluation: benchmarks, scripted models on the local test server, tiny model, resume."""

from __future__ import annotations

import base64
import csv
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from _source_fixture import encode
from factory.chains.format import render_chain
from factory.chains.llm import image_data_url
from factory.cli import app
from fake_llm_server import ServerConfig, make_server, stop_server
from trainers.benchmarks import answer_index, load_benchmark, split_inline_options
from trainers.evaluate import (
    EndpointModel,
    EvalConfig,
    Generation,
    degraded_image,
    eval_recipe,
    evaluate,
    parse_levels,
    predicted_types,
    summarize,
)

runner = CliRunner()
LEVELS = (0.0, 0.23, 0.45, 0.9)
ANSWERS = [0, 2, 1, 0, 3, 0, 1, 2, 0, 1, 3, 2]
"""Correct option per fixture question: 4 of 12 are option 0."""
CHOICES = [["a cat", "a dog", "a bird", "a fish"], ["red", "green", "blue", "yellow"], ["one", "two", "three", "four"]]


def _img(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    base = np.linspace(0, 255, 48 * 64, dtype=np.float32).reshape(48, 64)
    rgb = np.stack([base, np.roll(base, 7 * i, axis=1), 255 - base], -1) + rng.normal(0, 8, (48, 64, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def make_bench(root, *, bad: bool = False):
    """A local multiple-choice benchmark (parquet: image bytes, question, choices, answer index)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for i, a in enumerate(ANSWERS):
        rows.append(
            {
                "qid": f"q{i}",
                "img": {"bytes": encode(_img(i)), "path": None},
                "q": f"Question number {i}: what is shown?",
                "opts": CHOICES[i % 3],
                "label": a,
            }
        )
    if bad:
        rows.append(
            {
                "qid": "broken",
                "img": {"bytes": b"not an image", "path": None},
                "q": "Broken?",
                "opts": ["x", "y"],
                "label": 0,
            }
        )
    root.mkdir(parents=True, exist_ok=True)
    path = root / "bench.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


COLUMNS = "id=qid,image=img,question=q,choices=opts,answer=label"


def _truth_table(path, seed=0, levels=LEVELS):
    """data URL of every image a run shows → (correct option, injected TYPE), as a perceiving model would know."""
    bench = load_benchmark(str(path), columns=COLUMNS)
    table = {}
    for s in bench:
        try:
            img = s.load_image()
        except ValueError:
            continue
        for lv in levels:
            recipe = eval_recipe(s.id, lv, seed)
            url = image_data_url(degraded_image(img, s.id, lv, seed), 1024)
            table[url] = (int(s.answer), recipe.type_pairs() if recipe else [])
    return table


def _image_url(req: dict) -> str:
    for part in req["messages"][0]["content"]:
        if part.get("type") == "image_url":
            return part["image_url"]["url"]
    raise AssertionError("no image in the request")


def perfect_responder(table):
    def respond(req: dict) -> str:
        answer, pairs = table[_image_url(req)]
        return render_chain(
            pairs,
            "The damage hides fine detail.",
            "Seen clean, the answer is clear.",
            "So it is that option.",
            str(answer),
        )

    return respond


@pytest.fixture(scope="module")
def bench_path(tmp_path_factory):
    return make_bench(tmp_path_factory.mktemp("bench"), bad=True)


def _cfg(path, out, **kw) -> EvalConfig:
    return EvalConfig(**{"model": "scripted", "out": str(out), "benchmark": str(path), "columns": COLUMNS, **kw})


def test_perfect_scripted_model_scores_one_everywhere_and_the_broken_image_is_recorded(bench_path, tmp_path):
    server, url, stats = make_server(ServerConfig(responder=perfect_responder(_truth_table(bench_path))))
    try:
        run = evaluate(_cfg(bench_path, tmp_path / "perfect", endpoint=url, model="perfect"), progress=False)
    finally:
        stop_server(server)
    assert run.generated == len(ANSWERS) * 4 and run.errors == 1
    errs = [json.loads(x) for x in (tmp_path / "perfect" / "errors.jsonl").read_text().splitlines()]
    assert errs[0]["id"].endswith(":broken") and errs[0]["stage"] == "image"
    levels = {sc["level"]: sc for sc in run.summary["levels"]}
    assert sorted(levels) == list(LEVELS)
    for lv, sc in levels.items():
        assert sc["n"] == len(ANSWERS)
        assert sc["accuracy"] == 1.0 and sc["drop"] == 0.0
        assert sc["type_precision"] == sc["type_recall"] == sc["type_f1"] == 1.0
        assert sc["format_valid"] == 1.0
        assert sc["intensity_mae"] == (None if lv == 0 else pytest.approx(0.0))
        assert sc["reasoning_words"] == 6.0  # "Seen clean, the answer is clear."
        assert sc["output_tokens"] is not None  # the server reports usage
    for name in ("summary.md", "summary.csv", "summary.json", "breakdown.csv", "accuracy_vs_intensity.png", "run.json"):
        assert (tmp_path / "perfect" / name).stat().st_size > 0
    assert (tmp_path / "perfect" / "accuracy_vs_intensity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every request carried the robust instruction and a PNG image
    body = json.loads(stats.bodies[0])
    assert "<TYPE>" in body["messages"][0]["content"][1]["text"] and body["temperature"] == 0.0


def test_always_option_zero_scores_the_share_of_answer_zero(bench_path, tmp_path):
    server, url, stats = make_server(ServerConfig(responder=lambda req: "A"))
    try:
        run = evaluate(_cfg(bench_path, tmp_path / "zero", endpoint=url, model="zero", prompt="plain"), progress=False)
    finally:
        stop_server(server)
    share = ANSWERS.count(0) / len(ANSWERS)
    for sc in run.summary["levels"]:
        assert sc["accuracy"] == pytest.approx(share)
        assert sc["type_f1"] is None and sc["format_valid"] == 0.0  # no TYPE block: no perception scores
    prompts = [json.loads(b)["messages"][0]["content"][1]["text"] for b in stats.bodies]
    assert all("Answer with the option's letter from the given choices directly." in p for p in prompts)
    assert all("<TYPE>" not in p for p in prompts)
    # requests run concurrently, so they arrive in any order: find the first question's
    assert any(p.startswith("Question number 0:") and "\nA. a cat\nB. a dog\n" in p for p in prompts)


def test_plain_prompt_reads_numbers_as_values_not_indices(bench_path, tmp_path):
    """Under the letter-labelled plain prompt "0" names no option (it is not an option's text)."""
    server, url, _ = make_server(ServerConfig(responder=lambda req: "0"))
    try:
        run = evaluate(_cfg(bench_path, tmp_path / "zero", endpoint=url, model="zero", prompt="plain"), progress=False)
    finally:
        stop_server(server)
    assert all(sc["accuracy"] == 0.0 for sc in run.summary["levels"])


def test_predictions_hold_the_recipe_that_reproduces_each_image(bench_path, tmp_path):
    server, url, _ = make_server(ServerConfig(responder=perfect_responder(_truth_table(bench_path, seed=5))))
    try:
        evaluate(_cfg(bench_path, tmp_path / "r", endpoint=url, seed=5), progress=False)
    finally:
        stop_server(server)
    rows = [json.loads(x) for x in (tmp_path / "r" / "predictions.jsonl").read_text().splitlines()]
    by_id: dict[str, set] = {}
    for r in rows:
        if r["level"] == 0:
            assert r["recipe"] is None and r["degradation"] is None
            continue
        (step,) = r["recipe"]["degradations"]
        assert step["intensity"] == r["level"] and r["recipe"]["seed"] == 5
        by_id.setdefault(r["id"], set()).add((step["name"], step["seed"]))
    assert all(len(v) == 1 for v in by_id.values())  # nested: one degradation per image at every level
    from factory.degrade import Recipe, render

    r = next(r for r in rows if r["level"] == 0.45)
    i = int(r["id"].split(":q")[1])
    assert np.array_equal(render(_img(i), Recipe.from_dict(r["recipe"])), degraded_image(_img(i), r["id"], 0.45, 5))


class Counting:
    """A Python-side model: answers option 1 always and counts what it was asked."""

    def __init__(self):
        self.calls = 0

    def generate(self, images, prompts):
        self.calls += len(prompts)
        return [Generation("<ANSWER>1<ANSWER_END>", 3) for _ in prompts]


def test_resume_skips_done_answers_and_repairs_a_torn_line(tmp_path):
    path = make_bench(tmp_path / "b")
    cfg = _cfg(path, tmp_path / "run")
    m = Counting()
    first = evaluate(cfg, model=m, progress=False)
    assert m.calls == first.generated == 48 and first.skipped == 0
    pred = tmp_path / "run" / "predictions.jsonl"
    lines = pred.read_text().splitlines(keepends=True)
    pred.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed mid-write
    m2 = Counting()
    second = evaluate(cfg, model=m2, progress=False)
    assert m2.calls == second.generated == 1 and second.skipped == 47
    rows = [json.loads(x) for x in pred.read_text().splitlines()]
    assert len(rows) == 48 and len({(r["id"], r["level"]) for r in rows}) == 48
    # a new level is added to the finished run: only that level is generated
    m3 = Counting()
    third = evaluate(_cfg(path, tmp_path / "run", levels=(0.0, 0.23, 0.45, 0.6, 0.9)), model=m3, progress=False)
    assert m3.calls == 12 and third.skipped == 48
    # a different seed in the same folder would mix two runs
    with pytest.raises(ValueError, match="different seed"):
        evaluate(_cfg(path, tmp_path / "run", seed=1), model=Counting(), progress=False)


def test_failed_requests_are_recorded_and_retried_by_the_next_run(tmp_path):
    path = make_bench(tmp_path / "b")
    server, url, _ = make_server(ServerConfig(fault_rate=1.0, faults=("500",)))
    try:
        model = EndpointModel("m", url, max_retries=0)
        run = evaluate(_cfg(path, tmp_path / "run", limit=2), model=model, progress=False)
        assert run.generated == 0 and run.errors == 8
        errs = [json.loads(x) for x in (tmp_path / "run" / "errors.jsonl").read_text().splitlines()]
        assert {e["stage"] for e in errs} == {"generate"} and "gave up" in errs[0]["error"]
    finally:
        stop_server(server)
    server, url, _ = make_server(ServerConfig(responder=lambda req: "<ANSWER>0<ANSWER_END>"))
    try:
        run = evaluate(_cfg(path, tmp_path / "run", limit=2), model=EndpointModel("m", url), progress=False)
    finally:
        stop_server(server)
    assert run.generated == 8 and run.errors == 0
    assert (tmp_path / "run" / "errors.jsonl").read_text() == ""


def test_tiny_model_full_run_then_a_second_run_generates_nothing(tmp_path):
    res = runner.invoke(
        app,
        [
            "eval",
            "tiny",
            "--out",
            str(tmp_path / "tiny"),
            "--limit",
            "3",
            "--max-new-tokens",
            "12",
            "--batch-size",
            "4",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "12 answers generated, 0 already done, 0 failed" in res.output
    rows = [json.loads(x) for x in (tmp_path / "tiny" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(0 < r["output_tokens"] <= 12 for r in rows)
    for name in ("summary.md", "summary.csv", "breakdown.csv", "accuracy_vs_intensity.png"):
        assert (tmp_path / "tiny" / name).is_file()
    again = runner.invoke(
        app, ["eval", "tiny", "--out", str(tmp_path / "tiny"), "--limit", "3", "--max-new-tokens", "12"]
    )
    assert again.exit_code == 0, again.output
    assert "0 answers generated, 12 already done" in again.output
    assert len((tmp_path / "tiny" / "predictions.jsonl").read_text().splitlines()) == 12


def test_eval_compare_puts_runs_in_one_table_and_plot(bench_path, tmp_path):
    for name, ans in (("good", "<ANSWER>{a}<ANSWER_END>"), ("zero", "0")):

        class Fixed:
            def generate(self, images, prompts, ans=ans):
                out = []
                for p in prompts:
                    i = int(re.search(r"Question number (\d+)", p).group(1))
                    out.append(Generation(ans.format(a=ANSWERS[i])))
                return out

        evaluate(_cfg(bench_path, tmp_path / name, name=name), model=Fixed(), progress=False)
    res = runner.invoke(
        app, ["eval-compare", str(tmp_path / "good"), str(tmp_path / "zero"), "--out", str(tmp_path / "cmp")]
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "cmp" / "comparison.csv").open()))
    assert [r["run"] for r in rows] == ["good", "zero"]
    assert float(rows[0]["clean"]) == 1.0 and float(rows[1]["100%"]) == pytest.approx(4 / 12)
    assert (tmp_path / "cmp" / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    assert "| good |" in (tmp_path / "cmp" / "comparison.md").read_text()
    bad = runner.invoke(app, ["eval-compare", str(tmp_path / "nothing")])
    assert bad.exit_code == 2 and "not an evaluation run" in bad.output


# ---------------------------------------------------------------- scores and benchmarks


def _row(level, degradation, types, correct=1.0, has_type=True, recipe_s=None):
    recipe = (
        None
        if degradation is None
        else {"degradations": [{"name": degradation, "intensity": recipe_s if recipe_s is not None else level}]}
    )
    return {
        "id": "x",
        "level": level,
        "degradation": degradation,
        "stage": "acquisition" if degradation else None,
        "types": types,
        "has_type": has_type,
        "correct": correct,
        "format_ok": True,
        "recipe": recipe,
        "output_tokens": 10,
        "reasoning_words": 4,
    }


def test_type_scores_count_misses_extras_and_intensity_errors():
    rows = [
        _row(0.45, "lens blur", [["lens blur", 0.55]]),  # right type, off by 0.1
        _row(0.45, "lens blur", [["lens blur", 0.45], ["jpeg compression", 0.2]]),  # one extra
        _row(0.45, "gaussian noise", [["none", None]], correct=0.0),  # missed
        _row(0.45, "gaussian noise", [], has_type=False, correct=0.0),  # no TYPE block: missed
    ]
    sc = summarize(rows)["levels"][0]
    assert sc["type_precision"] == pytest.approx(2 / 4) and sc["type_recall"] == pytest.approx(2 / 4)
    assert sc["type_f1"] == pytest.approx(0.5) and sc["intensity_mae"] == pytest.approx(0.05)
    assert sc["accuracy"] == 0.5
    clean = summarize([_row(0.0, None, [["none", None]]), _row(0.0, None, [["lens blur", 0.3]])])["levels"][0]
    assert clean["type_precision"] == 0.5 and clean["type_recall"] == 0.5 and clean["intensity_mae"] is None
    br = {(b["by"], b["name"]): b for b in summarize(rows)["breakdown"]}
    assert (
        br[("degradation", "lens blur")]["type_recall"] == 1.0
        and br[("degradation", "gaussian noise")]["type_recall"] == 0.0
    )
    assert br[("stage", "acquisition")]["n"] == 4


def test_predicted_types_reads_the_type_block():
    assert predicted_types("no tags at all") == (False, [])
    assert predicted_types("<TYPE>none<TYPE_END>") == (True, [("none", None)])
    assert predicted_types("<TYPE>Lens Blur(0.3), JPEG(0.5)<TYPE_END>") == (
        True,
        [("lens blur", 0.3), ("jpeg compression", 0.5)],
    )
    assert predicted_types("<TYPE>something odd<TYPE_END>")[1] == [("<unparsed>", None)]


def test_inline_options_and_answer_formats():
    stem, opts = split_inline_options("Which is it?\nOptions: A: a cat, B: a dog, C: two birds")
    assert stem == "Which is it?" and opts == ["a cat", "a dog", "two birds"]
    stem, opts = split_inline_options("Where does it point?\nA. Left\nB. Straight\nC. Right")
    assert stem == "Where does it point?" and opts == ["Left", "Straight", "Right"]
    assert split_inline_options("Is the light red?") == ("Is the light red?", [])
    assert answer_index("B", ["x", "y"], "letter") == 1 and answer_index("C", ["x", "y"], "letter") is None
    assert (
        answer_index(1, ["x", "y"]) == 1 and answer_index("y", ["x", "y"]) == 1 and answer_index("1", ["x", "y"]) == 1
    )
    assert answer_index(None, ["x"]) is None and answer_index(float("nan"), ["x"]) is None


def test_mmbench_and_mmstar_layouts_load_from_local_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    img = encode(_img(1))
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "index": 7,
                    "image": {"bytes": img, "path": None},
                    "question": "What colour?",
                    "hint": "Look closely.",
                    "A": "red",
                    "B": "blue",
                    "C": "green",
                    "D": None,
                    "answer": "C",
                },
            ]
        ),
        tmp_path / "mmb.parquet",
    )
    (s,) = list(load_benchmark(str(tmp_path / "mmb.parquet"), options="columns", answer="letter"))
    assert s.id == "mmb:7" and s.choices == ["red", "blue", "green"] and s.answer == "2"
    assert s.question == "Look closely.\nWhat colour?" and s.load_image().shape == (48, 64, 3)
    with open(tmp_path / "star.jsonl", "w") as f:  # MMStar-style, base64 image as in VLMEvalKit TSVs
        f.write(
            json.dumps(
                {
                    "index": 1,
                    "image": base64.b64encode(img).decode(),
                    "answer": "B",
                    "question": "Which animal?\nOptions: A: cat, B: dog, C: cow, D: owl",
                }
            )
            + "\n"
        )
    (s,) = list(load_benchmark(str(tmp_path / "star.jsonl"), options="inline", answer="letter"))
    assert s.question == "Which animal?" and s.choices == ["cat", "dog", "cow", "owl"] and s.answer_text == "dog"
    assert s.load_image().shape == (48, 64, 3)
    demo = list(load_benchmark("demo"))
    assert len(demo) == 8 and all(s.choices and s.answer for s in demo)


def test_bad_inputs_fail_clearly(tmp_path, bench_path):
    with pytest.raises(ValueError, match=r"missing .*--columns"):
        load_benchmark(str(bench_path))  # its columns need a mapping
    with pytest.raises(ValueError, match="--levels"):
        parse_levels("clean,heavy")
    with pytest.raises(ValueError, match="--prompt"):
        evaluate(_cfg(bench_path, tmp_path / "x", prompt="fancy"), model=Counting(), progress=False)
    with pytest.raises(ValueError, match="options layout"):
        load_benchmark("demo", options="grid")
    res = runner.invoke(
        app, ["eval", "tiny", "--benchmark", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "no such file" in res.output
    res = runner.invoke(app, ["eval", "tiny", "--levels", "0.2,2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--levels" in res.output


def test_a_duplicate_question_id_is_recorded_and_skipped_not_mixed(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {
            "qid": q,
            "img": {"bytes": encode(_img(i)), "path": None},
            "q": f"Question number {i}?",
            "opts": ["a", "b"],
            "label": 0,
        }
        for i, q in enumerate(["q0", "q1", "q0"])
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "dup.parquet")
    m = Counting()
    run = evaluate(_cfg(tmp_path / "dup.parquet", tmp_path / "run"), model=m, progress=False)
    assert m.calls == 8 and run.errors == 1
    (err,) = [json.loads(x) for x in (tmp_path / "run" / "errors.jsonl").read_text().splitlines()]
    assert err["stage"] == "benchmark" and "--columns id=" in err["error"]


def test_resume_with_a_larger_limit_and_fewer_levels_opens_the_model_and_summarizes_this_run(tmp_path):
    path = make_bench(tmp_path / "b")
    evaluate(_cfg(path, tmp_path / "run", limit=2), model=Counting(), progress=False)
    # 8 rows on disk; now 4 questions at clean only: 2 new answers although len(done) > 4 x 1
    opened = []

    import trainers.eval.runner as ev

    real = ev.open_model
    ev.open_model = lambda cfg: opened.append(cfg) or Counting()
    try:
        run = evaluate(_cfg(path, tmp_path / "run", limit=4, levels=(0.0,)), progress=False)
        assert len(opened) == 1 and run.generated == 2 and run.skipped == 2
        again = evaluate(_cfg(path, tmp_path / "run", limit=4, levels=(0.0,)), progress=False)
        assert len(opened) == 1 and again.generated == 0  # a finished run never loads the model
    finally:
        ev.open_model = real
    (only,) = run.summary["levels"]
    assert only["level"] == 0.0 and only["n"] == 4  # the degraded rows of the first run are not in this summary


def test_drop_from_clean_pairs_the_questions_answered_at_both_levels():
    rows = [
        _row(0.0, None, [], correct=1.0) | {"id": "a"},
        _row(0.0, None, [], correct=0.0) | {"id": "b"},
        _row(0.9, "lens blur", [], correct=0.0) | {"id": "a"},
    ]  # b was never answered at 0.9 (interrupted)
    sc = {s["level"]: s for s in summarize(rows)["levels"]}
    assert sc[0.0]["accuracy"] == 0.5 and sc[0.9]["accuracy"] == 0.0
    assert sc[0.9]["drop"] == 1.0 and sc[0.9]["drop_n"] == 1  # not 0.5 - 0.0 over different questions


def test_rows_that_cannot_be_asked_are_recorded_not_scored(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    img = {"bytes": encode(_img(0)), "path": None}
    base = {"image": img, "question": "Which?", "hint": "nan"}
    pq.write_table(
        pa.Table.from_pylist(
            [
                {**base, "index": 1, "A": "x", "B": "y", "C": None, "D": "z", "answer": "D"},  # gap before D: still z
                {**base, "index": 2, "A": "x", "B": "y", "C": None, "D": None, "answer": "D"},  # D is empty
                {**base, "index": 3, "A": "x", "B": "nan", "C": None, "D": None, "answer": "A"},  # "nan" cell is empty
            ]
        ),
        tmp_path / "cols.parquet",
    )
    items = list(load_benchmark(str(tmp_path / "cols.parquet"), options="columns", answer="letter"))
    assert items[0].choices == ["x", "y", "z"] and items[0].answer_text == "z" and items[0].question == "Which?"
    assert items[1].id == "cols:2" and "names none of the options" in items[1].error
    assert items[2].choices == ["x"]
    with open(tmp_path / "lists.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "image", "question", "choices", "answer"])
        w.writerow(["ok", "img.png", "Q?", "['x', 'y']", "1"])
        w.writerow(["bad", "img.png", "Q?", "x and y", "1"])
    from PIL import Image

    Image.fromarray(_img(0)).save(tmp_path / "img.png")
    ok, bad = list(load_benchmark(str(tmp_path / "lists.csv"), answer="index"))
    assert ok.choices == ["x", "y"] and ok.answer_text == "y"
    assert bad.id == "lists:bad" and "not a list" in bad.error
    m = Counting()
    run = evaluate(
        EvalConfig(model="m", out=str(tmp_path / "run"), benchmark=str(tmp_path / "lists.csv"), answer_format="index"),
        model=m,
        progress=False,
    )
    assert m.calls == 4 and run.errors == 1 and run.summary["levels"][0]["n"] == 1
    (err,) = [json.loads(x) for x in (tmp_path / "run" / "errors.jsonl").read_text().splitlines()]
    assert err["stage"] == "benchmark" and err["id"] == "lists:bad"
    with pytest.raises(ValueError, match="two decimals"):
        EvalConfig(model="m", levels=(0.0, 0.004))


def test_a_run_that_never_answered_does_not_lock_its_folder(tmp_path):
    path = make_bench(tmp_path / "b")
    res = runner.invoke(
        app,
        [
            "eval",
            str(tmp_path / "no-such-model"),
            "--benchmark",
            str(path),
            "--columns",
            COLUMNS,
            "--out",
            str(tmp_path / "run"),
            "--limit",
            "1",
        ],
    )
    assert res.exit_code == 2 and "no-such-model" in res.output
    run = evaluate(_cfg(path, tmp_path / "run", limit=1), model=Counting(), progress=False)
    assert run.generated == 4


def test_the_runner_object_resumes_and_asks_only_the_levels_still_missing(tmp_path, monkeypatch):
    import trainers.eval.runner as runner_module
    from factory.errors import ConfigError
    from trainers.eval import Runner

    path = make_bench(tmp_path / "b")
    first = Runner(_cfg(path, tmp_path / "run", limit=3, levels=(0.0, 0.45)), model=Counting(), progress=False)
    assert len(first.prepare()) == 3 and first.done == set()
    assert first.levels_to_answer("bench:q0") == (0.0, 0.45)
    run = first.run()
    assert run.generated == 6 and run.skipped == 0 and first.seen == {"bench:q0", "bench:q1", "bench:q2"}
    # one more level in the same folder: only that level is asked
    m = Counting()
    again = Runner(_cfg(path, tmp_path / "run", limit=3, levels=(0.0, 0.45, 0.9)), model=m, progress=False)
    again.prepare()
    assert len(again.done) == 6 and again.levels_to_answer("bench:q0") == (0.9,)
    run = again.run()
    assert m.calls == 3 and run.generated == 3 and run.skipped == 6
    assert [sc["level"] for sc in run.summary["levels"]] == [0.0, 0.45, 0.9]
    # nothing left to ask: the model the config names is never opened
    monkeypatch.setattr(runner_module, "open_model", lambda cfg: pytest.fail("opened a model for a finished run"))
    done = Runner(_cfg(path, tmp_path / "run", limit=3, levels=(0.0, 0.45, 0.9)), progress=False).run()
    assert done.generated == 0 and done.skipped == 9
    # the folder belongs to one run: another seed is refused, naming the field
    with pytest.raises(ConfigError, match="different seed") as err:
        Runner(_cfg(path, tmp_path / "run", limit=3, seed=1), model=Counting(), progress=False).prepare()
    assert err.value.field == "out"


def test_python_models_may_answer_with_strings_and_bad_answers_fail_alone(tmp_path):
    from trainers.eval import ObjectModel, as_model

    class Plain:
        def generate(self, images, prompts):
            return ["<ANSWER>0<ANSWER_END>"] * (len(prompts) - 1) + [{"text?": 1}]

    outs = ObjectModel(Plain()).generate([None, None], ["a", "b"])
    assert outs[0] == Generation("<ANSWER>0<ANSWER_END>") and isinstance(outs[1], TypeError)
    with pytest.raises(TypeError, match="generate"):
        as_model(object())
    run = evaluate(
        _cfg(make_bench(tmp_path / "b"), tmp_path / "run", limit=2, levels=(0.0,)),
        model=Plain(),
        progress=False,
        chunk=2,
    )
    assert run.generated == 1 and run.errors == 1


def test_configuration_errors_name_the_config_field():
    from factory.errors import ConfigError

    for kw, field in [
        ({"prompt": "fancy"}, "prompt"),
        ({"batch_size": 0}, "batch_size"),
        ({"levels": (0.0, 1.5)}, "levels"),
        ({"seed": -1}, "seed"),
        ({"only": ("no such blur",)}, "only"),
        ({"limit": -2}, "limit"),
    ]:
        with pytest.raises(ConfigError) as err:
            EvalConfig(model="m", **kw).validate()
        assert err.value.field == field, kw
    with pytest.raises(ConfigError) as err:
        parse_levels("clean,heavy")
    assert err.value.field == "levels" and "'heavy'" in str(err.value)
