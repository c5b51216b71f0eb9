"""factory.export: the Robust-R1 reference repo's jsonl + image-folder layout (issue #4, part 5).

The reference GRPO loader (jqtangust/Robust-R1, src/open-r1-multimodal/src/open_r1/grpo_jsonl.py)
reads per line ``image`` (joined to --image_folders), ``conversations[0]["value"]`` minus
``<image>`` as the problem (its ``robust`` template is appended right after it) and
``conversations[1]["value"]`` as the solution, whose ``<TYPE>`` and ``<ANSWER>`` blocks its
rewards parse. ``_reference_load`` below re-states that contract independently.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from _dataset_fixture import make_dataset, rows_of
from factory import export
from factory.export import MARKER, export_reference, reference_question

TYPE_RE = re.compile(r"(\w+(?:\s+\w+)*)\(([\d.]+)\)")  # the reference type reward's pattern


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("exp") / "ds", n_sft=3, n_rl=5, n_val=2, rl_shards=2)


def _reference_load(jsonl, image_folder):
    """What the reference loader derives from each line (its field names, our code)."""
    items = []
    for line in open(jsonl, encoding="utf-8"):
        item = json.loads(line)
        paths = [item["image"]] if isinstance(item["image"], str) else item["image"]
        item["image_path"] = [os.path.join(image_folder, p) for p in paths]
        item["problem"] = item["conversations"][0]["value"].replace("<image>", "")
        item["solution"] = item["conversations"][1]["value"]
        items.append(item)
    return items


def test_lines_carry_exactly_the_reference_fields(ds, tmp_path):
    counts = export_reference(ds, tmp_path / "ref")
    rl, val = rows_of(ds, "rl"), rows_of(ds, "validation")
    assert counts == {"train": len(rl), "test": len(val)} == {"train": 5, "test": 2}
    for split, rows in (("train", rl), ("test", val)):
        lines = [json.loads(x) for x in (tmp_path / "ref" / f"{split}.jsonl").read_text().splitlines()]
        assert [x["id"] for x in lines] == [r["id"] for r in rows]
        for line, row in zip(lines, rows):
            assert set(line) == {"id", "image", "conversations"}
            assert isinstance(line["image"], str) and "/" not in line["image"]
            human, gpt = line["conversations"]
            assert set(human) == set(gpt) == {"from", "value"}
            assert human["from"] == "human" and human["value"].startswith("<image>")
            assert gpt == {"from": "gpt", "value": row["solution"]}
            img = tmp_path / "ref" / f"{split}_images" / line["image"]
            assert img.read_bytes() == row["image"]["bytes"]
    assert sorted(p.name for p in (tmp_path / "ref").iterdir()) == sorted(
        [MARKER, "test.jsonl", "test_images", "train.jsonl", "train_images"]
    )


def test_the_reference_loader_finds_images_types_and_answers(ds, tmp_path):
    export_reference(ds, tmp_path / "ref")
    rows = {r["id"]: r for r in rows_of(ds, "rl")}
    items = _reference_load(tmp_path / "ref" / "train.jsonl", str(tmp_path / "ref" / "train_images"))
    for item in items:
        row = rows[item["id"]]
        assert all(os.path.exists(p) for p in item["image_path"])
        types = re.search(r"<TYPE>(.*?)<TYPE_END>", item["solution"], re.S).group(1)
        assert [(n.strip(), float(s)) for n, s in TYPE_RE.findall(types)] == [
            (d["name"], round(d["intensity"], 2)) for d in row["degradations"]
        ]
        assert re.search(r"<ANSWER>(.*?)<ANSWER_END>", item["solution"], re.S).group(1).strip() == row["answer"]
        # the problem is the bare question (the loader appends its own instruction), options one per line
        assert item["problem"] == reference_question(row["question"], row["choices"])
        assert "<TYPE>" not in item["problem"] and item["problem"].endswith("\n")


def test_reference_question_layout():
    assert (
        reference_question("What is it? 0. a dog 1. a cat", ["a dog", "a cat"]) == "What is it?\n0. a dog\n1. a cat\n"
    )
    assert reference_question("How many?", []) == "How many?\n"
    # options not inline as expected: the question is kept whole
    assert reference_question("Pick one (a or b)", ["a", "b"]) == "Pick one (a or b)\n"


def test_sft_config_and_prompt_variant(ds, tmp_path):
    counts = export_reference(ds, tmp_path / "ref", "sft", human="prompt")
    assert counts["train"] == 3
    prompts = [r["prompt"] for r in rows_of(ds, "sft")]
    lines = [json.loads(x) for x in (tmp_path / "ref" / "train.jsonl").read_text().splitlines()]
    assert [x["conversations"][0]["value"] for x in lines] == ["<image>" + p for p in prompts]
    with pytest.raises(ValueError, match="sft or rl"):
        export_reference(ds, tmp_path / "x", "validation")
    with pytest.raises(ValueError, match="question"):
        export_reference(ds, tmp_path / "x", human="solution")


def test_refuses_foreign_folders_and_replaces_previous_exports(ds, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a robust-r1 export"):
        export_reference(ds, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="outside the dataset"):
        export_reference(ds, ds / "export")
    out = tmp_path / "ref"
    export_reference(ds, out, "rl")
    (out / "train_images" / "stale.png").write_bytes(b"x")
    export_reference(ds, out, "sft")
    assert not (out / "train_images" / "stale.png").exists()
    assert len((out / "train.jsonl").read_text().splitlines()) == 3
    assert json.loads((out / MARKER).read_text())["config"] == "sft"


def test_a_failed_export_leaves_the_previous_one_and_no_temporary_folder(ds, tmp_path, monkeypatch):
    out = tmp_path / "ref"
    export_reference(ds, out)
    before = (out / "train.jsonl").read_text()
    real = export._write_split
    calls = []

    def boom(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the test split: after the train split was fully written
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "_write_split", boom)
    with pytest.raises(OSError, match="disk full"):
        export_reference(ds, out, "sft")
    assert (out / "train.jsonl").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".robust-r1.lock")] == ["ref"]  # the lock stays


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="robust-r1 build"):
        export_reference(tmp_path / "nothing", tmp_path / "out")


def test_cli_export(ds, tmp_path):
    import typer
    from typer.testing import CliRunner

    from factory.cli.dataset import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(ds), str(tmp_path / "ref"), "--format", "reference", "--config", "rl"])
    assert res.exit_code == 0, res.output
    assert "wrote 5 train and 2 test samples" in res.output and "--image_folders" in res.output
    res = runner.invoke(app, ["export", str(ds), str(tmp_path / "x"), "--format", "llava"])
    assert res.exit_code == 2 and "reference" in res.output
