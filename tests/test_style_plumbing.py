"""The degradation style travels from every command into the pixels, the records and the card (issue 16)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from factory import degrade
from factory.build import BuildConfig, build
from factory.cli import app
from factory.errors import ConfigError
from factory.photos import photo

runner = CliRunner()


def _row_styles(out) -> set[str]:
    styles = set()
    for f in sorted(out.glob("data/*/*.parquet")):
        for degs in pq.read_table(f, columns=["degradations"]).column("degradations").to_pylist():
            styles.update(json.loads(d["params"])["style"] for d in degs)
    return styles


@pytest.mark.parametrize("style", ["physical", "mixed"])
def test_build_renders_records_and_cards_its_style(tmp_path, style):
    out = tmp_path / style
    build(BuildConfig(source="demo", out=str(out), limit=4, splits=("train",), style=style), progress=False)
    manifest = json.loads((out / "build.json").read_text())
    assert manifest["style"] == style
    assert f"| degradation style | `{style}`" in (out / "README.md").read_text()
    found = _row_styles(out)
    assert found == {"physical"} if style == "physical" else found <= set(degrade.RENDER_STYLES) and found


def test_default_build_is_reference_and_a_changed_style_does_not_resume_into_the_same_folder(tmp_path):
    out = tmp_path / "ds"
    build(BuildConfig(source="demo", out=str(out), limit=2, splits=("train",), report=False), progress=False)
    assert json.loads((out / "build.json").read_text())["style"] == "reference"
    assert _row_styles(out) == {"reference"}
    with pytest.raises(ValueError, match="style"):
        build(BuildConfig(source="demo", out=str(out), limit=2, splits=("train",), report=False, style="physical"),
              progress=False)


def test_a_bad_style_names_the_field_and_the_cli_names_the_flag(tmp_path):
    with pytest.raises(ConfigError) as err:
        BuildConfig(out=str(tmp_path / "x"), style="cartoon").validate()
    assert err.value.field == "style"
    res = runner.invoke(app, ["build", "--out", str(tmp_path / "y"), "--style", "cartoon"])
    assert res.exit_code == 2 and "--style 'cartoon'" in res.output


def test_degrade_and_chain_take_the_style(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(degrade.to_rgb_uint8(photo("coffee"))[:120, :160]).save(src / "coffee.png")
    for style in ("physical", "reference"):
        res = runner.invoke(app, ["degrade", str(src), str(tmp_path / style), "--recipe", "eval", "--style", style])
        assert res.exit_code == 0, res.output
        side = json.loads((tmp_path / style / "coffee@0.45.json").read_text())
        assert side["degradations"][0]["style"] == style
        recipe = degrade.Recipe.from_dict(side)
        img = np.asarray(Image.open(src / "coffee.png").convert("RGB"))
        assert np.array_equal(np.asarray(Image.open(tmp_path / style / "coffee@0.45.png")), degrade.render(img, recipe))
    res = runner.invoke(app, ["chain", str(src / "coffee.png"), "-q", "What is it?", "-a", "0", "--choices", "a cup",
                              "a dog", "--style", "physical", "--json"])
    assert res.exit_code == 0, res.output
    assert {d["params"]["style"] for d in json.loads(res.output)["degradations"]} == {"physical"}
