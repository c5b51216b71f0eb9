"""The commands that write a model or read one image (train, infer) follow the same rules as the
factory's (issue 14): one writer per output folder, a bad image is one line before anything loads;
docs/bad-input.md documents every command."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from factory.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_a_busy_train_output_is_refused(tmp_path):
    from factory.lock import LOCK_NAME, OutputLock

    out = tmp_path / "runs" / "sft"
    held = OutputLock(tmp_path / "runs", "train sft", command="robust-r1 train sft --output runs/sft")
    held.path = tmp_path / "runs" / f".sft{LOCK_NAME}"  # beside the output: it may be pushed whole
    with held:
        res = runner.invoke(app, ["train", "sft", "--dataset", str(tmp_path / "none"), "--output", str(out),
                                  "--preset", "tiny"])
    assert res.exit_code == 2, res.output
    assert "is being written by robust-r1 train sft --output runs/sft" in res.output
    assert not out.exists()


def test_infer_names_a_bad_image_before_loading_a_model(tmp_path):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"")
    res = runner.invoke(app, ["infer", "--model", "no/such-model", "--image", str(bad), "--question", "what?"])
    assert res.exit_code == 2
    assert res.output.strip() == f"error: {bad}: file is empty (0 bytes); re-download or remove it."


def test_the_bad_input_table_covers_every_command():
    text = (ROOT / "docs" / "bad-input.md").read_text()
    headings = "\n".join(line for line in text.splitlines() if line.startswith("### "))
    for command in ("degrade", "build", "chain", "report", "card", "publish", "export", "train sft", "train grpo",
                    "infer", "eval", "eval-compare", "demo"):
        assert f"`robust-r1 {command}`" in headings, command
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert code in text
    for doc in ("docs/dataset.md", "docs/publishing.md", "docs/evaluation.md"):
        assert "bad-input.md" in (ROOT / doc).read_text(), doc
