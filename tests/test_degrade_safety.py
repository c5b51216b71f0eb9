"""`robust-r1 degrade` never writes an input, never writes two outputs to one path, skips what it
cannot read with a recorded reason, and says so in its exit status (issue 14, items 1, 4 and 11)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from factory import degrade
from factory.cli import app
from factory.photos import photo

runner = CliRunner()


def _image(path: Path, size: int = 48, name: str = "astronaut") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(degrade.to_rgb_uint8(photo(name))[:size, :size]).save(path)


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _errors(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------- item 1: inputs are never written


def test_degrading_a_folder_into_itself_is_refused_and_changes_nothing(tmp_path):
    src = tmp_path / "s"
    _image(src / "a.png")
    _image(src / "sub" / "b.jpg", name="camera")
    before = _digests(src)
    res = runner.invoke(app, ["degrade", str(src), str(src)])
    assert res.exit_code == 2
    assert "is the input folder" in res.output and "Choose another output folder" in res.output
    assert _digests(src) == before


def test_an_output_that_would_land_on_an_input_is_refused(tmp_path):
    src = tmp_path / "s"
    _image(src / "photo.png")
    before = _digests(src)
    res = runner.invoke(app, ["degrade", str(src / "photo.png"), str(src)])  # would write s/photo.png
    assert res.exit_code == 2 and "is the input image photo.png" in res.output
    assert _digests(src) == before


def test_two_inputs_with_one_stem_get_two_outputs(tmp_path):
    src, out = tmp_path / "s", tmp_path / "o"
    _image(src / "photo.jpg")
    _image(src / "photo.png", name="camera")
    _image(src / "other.png")
    res = runner.invoke(app, ["degrade", str(src), str(out), "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert "3 image(s) written" in res.output
    images = sorted(p.name for p in out.glob("*.png"))
    assert images == ["other.png", "photo.jpg.png", "photo.png.png"]
    for name in ("photo.jpg", "photo.png"):
        side = json.loads((out / f"{name}.json").read_text())
        assert Path(side["source"]).name == name and side["output"] == f"{name}.png"
        recipe = degrade.Recipe.from_dict(side)
        expected = degrade.render(degrade.load_image(src / name), recipe)
        assert np.array_equal(degrade.load_image(out / f"{name}.png"), expected)


def test_an_output_folder_inside_the_input_is_never_read_back(tmp_path):
    src = tmp_path / "s"
    _image(src / "a.png")
    _image(src / "b.png", name="camera")
    originals = _digests(src)
    for _ in range(2):
        res = runner.invoke(app, ["degrade", str(src), str(src / "out")])
        assert res.exit_code == 0, res.output
        assert "2 image(s) written" in res.output
    assert sorted(p.name for p in (src / "out").iterdir() if p.name != ".robust-r1.lock") == [
        "a.json", "a.png", "b.json", "b.png",
    ]  # fmt: skip
    assert {k: v for k, v in _digests(src).items() if not k.startswith("out/")} == originals


# ---------------------------------------------------------------- item 4: decompression bombs


def test_a_decompression_bomb_is_recorded_and_the_batch_goes_on(tmp_path):
    from factory.layout import MAX_IMAGE_PIXELS

    src, out = tmp_path / "s", tmp_path / "o"
    _image(src / "good.png")
    Image.new("L", (20000, 20000)).save(src / "bomb.png")  # 400 M pixels, ~400 kB on disk
    Image.new("L", (10000, 9000)).save(src / "big.png")  # 90 M: over the limit, under Pillow's error threshold
    res = runner.invoke(app, ["degrade", str(src), str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "good.png").is_file() and not (out / "bomb.png").exists() and not (out / "big.png").exists()
    errors = {e["id"]: e for e in _errors(out)}
    assert set(errors) == {"bomb.png", "big.png"}
    for e in errors.values():
        assert "image too large" in e["reason"] and f"{MAX_IMAGE_PIXELS:,}" in e["reason"]
    assert "400,000,000 pixels" in errors["bomb.png"]["reason"]
    assert "10000x9000" in errors["big.png"]["reason"]


def test_build_and_degrade_share_one_pixel_limit(tmp_path, monkeypatch):
    from factory import sources
    from factory.sources import Sample, decode_image

    path = tmp_path / "wide.png"
    Image.new("RGB", (40, 10)).save(path)
    monkeypatch.setattr(sources, "MAX_IMAGE_PIXELS", 399)  # the limit is read from one place
    with pytest.raises(ValueError, match="image too large"):
        decode_image(path)
    with pytest.raises(ValueError, match="image too large"):
        Sample("t:1", "q?", [], "a", "a", image=path.read_bytes()).load_image()
    monkeypatch.setattr(sources, "MAX_IMAGE_PIXELS", 400)
    assert decode_image(path).shape == (10, 40, 3)


# ---------------------------------------------------------------- item 11: exit status, records, messages


def test_exit_status_is_1_when_every_image_failed(tmp_path):
    src, out = tmp_path / "s", tmp_path / "o"
    src.mkdir()
    (src / "a.png").write_bytes(b"not a png")
    (src / "b.jpg").write_bytes(b"")
    res = runner.invoke(app, ["degrade", str(src), str(out)])
    assert res.exit_code == 1
    assert "0 image(s) written" in res.output and "no image could be degraded" in res.output
    assert {e["id"] for e in _errors(out)} == {"a.png", "b.jpg"}


def test_errors_jsonl_lists_only_this_runs_failures(tmp_path):
    src, out = tmp_path / "s", tmp_path / "o"
    _image(src / "good.png")
    (src / "bad.png").write_bytes(b"garbage")
    assert runner.invoke(app, ["degrade", str(src), str(out)]).exit_code == 0
    assert [e["id"] for e in _errors(out)] == ["bad.png"]
    _image(src / "bad.png", name="camera")  # fixed
    res = runner.invoke(app, ["degrade", str(src), str(out)])
    assert res.exit_code == 0 and "0 skipped" in res.output
    assert not (out / "errors.jsonl").exists()


def test_symlink_loops_broken_links_and_unlistable_folders_are_recorded(tmp_path, monkeypatch):
    src, out = tmp_path / "s", tmp_path / "o"
    _image(src / "a" / "x.png")
    _image(src / "locked" / "y.png")
    os.symlink("..", src / "a" / "loop")
    os.symlink("nowhere.png", src / "broken.png")
    real_scandir = os.scandir
    locked = str(src / "locked")

    def scandir(path="."):  # as for a folder without read permission (root ignores chmod)
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    res = runner.invoke(app, ["degrade", str(src), str(out)])
    assert res.exit_code == 0, res.output
    assert "1 image(s) written" in res.output
    errors = {e["id"]: e["reason"] for e in _errors(out)}
    assert "symbolic link loop" in errors["a/loop"]
    assert "broken symbolic link" in errors["broken.png"]
    assert "permission denied" in errors["locked"] and "chmod" in errors["locked"]


def test_a_permission_error_is_named_as_such(tmp_path, monkeypatch):
    import builtins

    from factory import sources

    src, out = tmp_path / "s", tmp_path / "o"
    _image(src / "ok.png")
    _image(src / "secret.png")
    real_open = builtins.open

    def guarded(file, *a, **kw):
        if str(file).endswith("secret.png"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **kw)

    monkeypatch.setattr(sources, "open", guarded, raising=False)
    res = runner.invoke(app, ["degrade", str(src), str(out)])
    assert res.exit_code == 0, res.output
    (reason,) = [e["reason"] for e in _errors(out)]
    assert "permission denied" in reason and "truncated or corrupt" not in reason


def test_urls_are_named_unmangled(tmp_path):
    res = runner.invoke(app, ["degrade", "http://example.com/a.png", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "http://example.com/a.png" in res.output and "http:/example" not in res.output
    assert "download" in res.output


def test_a_second_writer_into_the_same_output_folder_is_refused(tmp_path):
    from factory.lock import OutputLock

    src, out = tmp_path / "s", tmp_path / "o"
    _image(src / "a.png")
    with OutputLock(out, "degrade", command="robust-r1 degrade s o"):
        res = runner.invoke(app, ["degrade", str(src), str(out)])
    assert res.exit_code == 2 and "is being written by robust-r1 degrade s o" in res.output
    assert not (out / "a.png").exists()


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch):
    import errno

    src, out = tmp_path / "s", tmp_path / "o"
    _image(src / "a.png")

    def full(image, path, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(degrade, "save_image", full)
    res = runner.invoke(app, ["degrade", str(src), str(out)])
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()[-1:]
    assert line.startswith("error: ") and "no space left on device" in line and str(out / "a.png") in line
    assert "run the same command again" in line
