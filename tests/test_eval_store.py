"""`robust-r1 eval` resumes from any predictions.jsonl (issue 14, item 5): valid JSON of the wrong
shape, invalid UTF-8 and duplicated lines are moved out (nothing lost), recorded with their line
numbers, and their answers asked again; every answer counts once; one run per folder."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from trainers.eval import EvalConfig, evaluate

runner = CliRunner()
OUTPUT = "<TYPE>none<TYPE_END><ANSWER>0<ANSWER_END>"


class Counting:
    """A scripted model that counts the prompts it is asked."""

    def __init__(self):
        self.calls = 0

    def generate(self, images, prompts):
        self.calls += len(prompts)
        return [OUTPUT] * len(prompts)


def _cfg(out):
    return EvalConfig(model="scripted", benchmark="demo", out=str(out), limit=3, levels="clean,0.45")


def _first_run(tmp_path):
    out = tmp_path / "run"
    first = evaluate(_cfg(out), model=Counting(), progress=False)
    assert first.generated == 6
    return out, out / "predictions.jsonl"


def _summary_n(run) -> dict[float, int]:
    return {lv["level"]: lv["n"] for lv in run.summary["levels"]}


@pytest.mark.parametrize(
    "line,what",
    [
        (b"null", "a JSON null, not a prediction row"),
        (b"[1, 2]", "a JSON list, not a prediction row"),
        (b"42", "a JSON int, not a prediction row"),
        (b'{"foo": 1}', "no field 'id'"),
        (b'{"id": "caf\xe9"}', "not UTF-8 text (byte 11)"),
        (b"{not json", "not JSON"),
    ],
)
def test_a_line_of_the_wrong_shape_is_moved_out_and_the_run_goes_on(tmp_path, line, what):
    out, pred = _first_run(tmp_path)
    good = pred.read_bytes()
    pred.write_bytes(good + line + b"\n")
    m = Counting()
    run = evaluate(_cfg(out), model=m, progress=False)
    assert m.calls == 0 and run.skipped == 6 and _summary_n(run) == {0.0: 3, 0.45: 3}
    assert pred.read_bytes() == good
    assert (out / "predictions.rejected.jsonl").read_bytes() == line + b"\n"  # nothing is lost
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert [e["stage"] for e in errors] == ["predictions"]
    assert errors[0]["error"].startswith("predictions.jsonl line 7: ") and what in errors[0]["error"]


def test_a_row_without_its_fields_is_asked_again(tmp_path):
    out, pred = _first_run(tmp_path)
    lines = pred.read_bytes().splitlines(keepends=True)
    row = json.loads(lines[2])
    broken = json.dumps({"id": row["id"], "level": row["level"], "output": row["output"]}).encode() + b"\n"
    pred.write_bytes(b"".join(lines[:2]) + broken + b"".join(lines[3:]))
    m = Counting()
    run = evaluate(_cfg(out), model=m, progress=False)
    assert m.calls == 1 and run.generated == 1 and _summary_n(run) == {0.0: 3, 0.45: 3}
    (err,) = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert err["id"] == row["id"] and "line 3: no field 'correct'" in err["error"] and "asked again" in err["error"]


def test_duplicated_lines_count_once(tmp_path):
    out, pred = _first_run(tmp_path)
    lines = pred.read_bytes().splitlines(keepends=True)
    pred.write_bytes(b"".join(lines) + lines[0] + lines[1] + lines[0])
    m = Counting()
    run = evaluate(_cfg(out), model=m, progress=False)
    assert m.calls == 0 and _summary_n(run) == {0.0: 3, 0.45: 3}
    assert len(pred.read_bytes().splitlines()) == 6
    assert len((out / "predictions.rejected.jsonl").read_bytes().splitlines()) == 3


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    from factory.lock import FolderBusy, OutputLock

    out = tmp_path / "run"
    with OutputLock(out, "eval", command="robust-r1 eval scripted --out run"):
        with pytest.raises(FolderBusy, match="robust-r1 eval scripted --out run"):
            evaluate(_cfg(out), model=Counting(), progress=False)
    assert not (out / "predictions.jsonl").exists()


def test_an_echoed_secret_is_never_written(tmp_path, monkeypatch):
    secret = "sk-test-live-key-000111222333444"
    monkeypatch.setenv("OPENAI_API_KEY", secret)

    class Echo(Counting):
        def generate(self, images, prompts):
            return [f"{OUTPUT} debug {secret}"] * len(prompts)

    out = tmp_path / "run"
    evaluate(_cfg(out), model=Echo(), progress=False)
    assert secret not in (out / "predictions.jsonl").read_text()
    assert "debug ***" in (out / "predictions.jsonl").read_text()


def test_the_eval_command_exit_status_says_whether_a_rerun_helps(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from factory.cli import app
    from trainers.eval import runner as eval_runner

    class Failing:
        def generate(self, images, prompts):
            raise RuntimeError("model exploded")

    monkeypatch.setattr(eval_runner, "open_model", lambda cfg: Failing())
    res = runner.invoke(app, ["eval", "tiny", "--out", str(tmp_path / "run"), "--limit", "2", "--levels", "clean"])
    assert res.exit_code == 3, res.output  # failed answers: the same command retries them
    assert "run the same command again" in res.output

    bench = tmp_path / "broken.parquet"
    pq.write_table(pa.table({"image": [b"not an image"] * 2, "question": ["q?", "r?"], "choices": [["a", "b"]] * 2,
                             "answer": [0, 1]}), bench)
    res = runner.invoke(app, ["eval", "tiny", "--out", str(tmp_path / "run2"), "--benchmark", str(bench),
                              "--options", "list", "--levels", "clean"])
    assert res.exit_code == 1, res.output  # nothing answered, and nothing a re-run would change
    assert "no question was answered" in res.output


def test_eval_compare_names_a_damaged_run_instead_of_crashing(tmp_path):
    from factory.cli import app

    out, pred = _first_run(tmp_path)
    pred.write_bytes(pred.read_bytes() + b"null\n")
    before = pred.read_bytes()
    res = runner.invoke(app, ["eval-compare", str(out), "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 2, res.output
    assert "predictions.jsonl line 7: a JSON null" in res.output and "robust-r1 eval" in res.output
    assert pred.read_bytes() == before  # compare only reads


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path):
    out = tmp_path / "run"
    cfg = EvalConfig(model="scripted", benchmark=str(tmp_path / "no-such.parquet"), out=str(out))
    with pytest.raises(ValueError):
        evaluate(cfg, model=Counting(), progress=False)
    assert not out.exists()
