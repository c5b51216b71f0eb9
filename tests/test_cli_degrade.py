"""The `robust-r1 degradations` and `robust-r1 degrade` commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from factory import degrade
from factory.cli import app
from factory.photos import photo

runner = CliRunner()


@pytest.fixture()
def folder(tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    img = degrade.to_rgb_uint8(photo("astronaut"))
    Image.fromarray(img[:96, :128]).save(src / "a.png")
    Image.fromarray(img[100:180, 50:150]).save(src / "sub" / "b.jpg", quality=95)
    Image.fromarray(photo("camera")[:64, :64]).save(src / "gray.png")
    (src / "zero.png").write_bytes(b"")
    (src / "notes.jpg").write_text("this is text")
    return src


def test_degradations_lists_the_catalogue():
    res = runner.invoke(app, ["degradations", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert [r["name"] for r in rows] == degrade.names()
    assert all(r["stage"] in degrade.STAGES and "schedule" in r and isinstance(r["aliases"], list) for r in rows)
    res = runner.invoke(app, ["degradations"])
    assert res.exit_code == 0 and "watermark damage" in res.output


def test_degrade_folder_skips_bad_files_and_writes_sidecars(folder, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(app, ["degrade", str(folder), str(out), "--seed", "4"])
    assert res.exit_code == 0, res.output
    for rel in ("a", "sub/b", "gray"):
        img = degrade.load_image(out / f"{rel}.png")
        side = json.loads((out / f"{rel}.json").read_text())
        assert side["kind"] == "train" and side["degradations"]
        recipe = degrade.Recipe.from_dict(side)
        expected = degrade.render(degrade.load_image(side["source"]), recipe)
        assert np.array_equal(img, expected)
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert sorted(e["id"] for e in errors) == ["notes.jpg", "zero.png"]
    assert all(e["reason"] for e in errors)
    assert "2 skipped" in res.output


def test_worker_count_does_not_change_the_bytes(folder, tmp_path):
    outs = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        res = runner.invoke(app, ["degrade", str(folder), str(out), "--workers", workers, "--seed", "1"])
        assert res.exit_code == 0, res.output
        outs.append({p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))})
    assert outs[0].keys() == outs[1].keys() and len(outs[0]) == 3
    assert outs[0] == outs[1]


def test_eval_recipe_writes_three_nested_levels(folder, tmp_path):
    out = tmp_path / "ev"
    res = runner.invoke(app, ["degrade", str(folder / "a.png"), str(out), "--recipe", "eval"])
    assert res.exit_code == 0, res.output
    sides = [json.loads((out / f"a@{lv:.2f}.json").read_text()) for lv in degrade.EVAL_LEVELS]
    assert len({(s["degradations"][0]["name"], s["degradations"][0]["seed"]) for s in sides}) == 1
    assert [s["degradations"][0]["intensity"] for s in sides] == list(degrade.EVAL_LEVELS)


def test_only_intensity_jpg_and_gallery(folder, tmp_path):
    out = tmp_path / "g"
    res = runner.invoke(
        app,
        [
            "degrade",
            str(folder / "a.png"),
            str(out),
            "--only",
            "noise,Compression",
            "--intensity",
            "0.5",
            "--format",
            "jpg",
            "--gallery",
        ],
    )
    assert res.exit_code == 0, res.output
    side = json.loads((out / "a.json").read_text())
    assert {d["name"] for d in side["degradations"]} <= {"gaussian noise", "jpeg compression"}
    assert all(d["intensity"] == 0.5 for d in side["degradations"])
    assert (out / "a.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    grid = np.asarray(Image.open(out / "gallery.png"))
    assert grid.shape[0] > 2 * 160 and grid.shape[2] == 3  # two rows of thumbnails plus a header


@pytest.mark.parametrize(
    "args,message",
    [
        (["--only", "lens blurr"], "unknown degradation"),
        (["--intensity", "1.5"], "intensity must be in"),
        (["--recipe", "test"], "--recipe"),
        (["--format", "gif"], "--format"),
    ],
)
def test_bad_options_fail_with_a_clear_message(folder, tmp_path, args, message):
    res = runner.invoke(app, ["degrade", str(folder / "a.png"), str(tmp_path / "x"), *args])
    assert res.exit_code == 2
    assert message in res.output


def test_missing_input_is_reported(tmp_path):
    res = runner.invoke(app, ["degrade", str(tmp_path / "nope"), str(tmp_path / "x")])
    assert res.exit_code == 2 and "no such file or folder" in res.output
