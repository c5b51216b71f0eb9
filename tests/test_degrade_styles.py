"""Degradation styles (issue 16): reference / physical / mixed, recipes that record them, the
wording that follows them, and the reference style's fidelity to the reference implementation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from _spec import SPEC_NAMES
from factory import degrade
from factory.chains import template as tpl
from factory.chains.steps import degradation_context
from factory.chains.writer import request_from_image
from factory.degrade.gallery import gallery
from factory.errors import ConfigError
from factory.photos import photo

ROOT = Path(__file__).resolve().parents[1]


def _img(name: str = "astronaut", size: tuple[int, int] = (160, 120)) -> np.ndarray:
    return cv2.resize(degrade.to_rgb_uint8(photo(name)), size, interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------- constants and catalogue


def test_style_constants_and_default():
    assert degrade.RENDER_STYLES == ("reference", "physical")
    assert degrade.STYLES == ("reference", "physical", "mixed")
    assert degrade.DEFAULT_STYLE == "reference" and degrade.LEGACY_STYLE == "physical"
    img = _img()
    default = degrade.apply(img, "graffiti", 0.7, seed=3)
    assert np.array_equal(default, degrade.apply(img, "graffiti", 0.7, seed=3, style="reference"))
    assert degrade.sample_recipe("train", 1, "x").style == "reference"


def test_every_degradation_has_every_style_with_wording():
    for d in degrade.catalogue():
        assert d.styles == degrade.RENDER_STYLES, d.name
        for st in degrade.RENDER_STYLES:
            w = d.influence(st)
            for band in ("low", "medium", "high"):
                assert w.effect[band] and all(isinstance(x, str) and x for x in w.effect[band])
            assert w.hides and w.keeps and d.describe(st)
            assert d.effect(st, "high") == tuple(w.effect["high"])
        # The styles draw different things, so they say different things (a degradation the
        # reference code lacks may register one look for both styles: CONTRIBUTING.md).
        if d.look("reference").op is not d.look("physical").op:
            assert d.describe("reference") != d.describe("physical"), d.name
        info = d.info()
        assert info["style"] == "reference" and set(info["styles"]) == set(degrade.RENDER_STYLES)
        assert info["styles"]["physical"]["schedule"] == d.schedule_summary("physical")
        json.dumps(info)  # the catalogue's --json output stays serialisable


def test_names_are_the_same_in_every_style():
    r = degrade.sample_recipe("train", 5, "s", style="reference")
    p = degrade.sample_recipe("train", 5, "s", style="physical")
    m = degrade.sample_recipe("train", 5, "s", style="mixed")
    assert r.type_pairs() == p.type_pairs() == m.type_pairs()
    assert [s.seed for s in r.steps] == [s.seed for s in p.steps] == [s.seed for s in m.steps]


@pytest.mark.parametrize("bad", ["fancy", "", None, 3, "mixed "])
def test_unknown_style_is_a_config_error_naming_the_field(bad):
    if bad == "mixed ":  # surrounding spaces and case are forgiven
        assert degrade.check_style("  MIXED ") == "mixed"
        return
    with pytest.raises(ConfigError) as e:
        degrade.apply(np.zeros((4, 4, 3), np.uint8), "lens blur", 0.5, style=bad)
    assert e.value.field == "style" and "reference" in str(e.value) and repr(bad) in str(e.value)
    with pytest.raises(ConfigError):
        degrade.sample_recipe("eval", 0, "x", style=bad)
    with pytest.raises(ConfigError):
        degrade.get("lens blur").look("mixed")  # a look is one render style


def test_curve_rows_document_the_reference_schedules():
    jpeg = degrade.get("jpeg compression")
    assert [jpeg.schedule(s)["quality"] for s in degrade.EVAL_LEVELS] == [78.0, 57.0, 14.0]  # int(100 - 95 s)
    assert "int(100 - 95 s)" in jpeg.schedule_summary("reference")
    scan = degrade.get("scan lines").schedule(0.9)
    assert scan["pitch"] * 480 == pytest.approx(20) and scan["bar"] * 480 == pytest.approx(6)
    assert degrade.get("dark illumination").schedule(0.45)["gain"] == pytest.approx(1 - 0.45**2)


# ---------------------------------------------------------------- mixed


def test_mixed_draws_one_style_per_degradation_from_the_seed():
    img = _img("coffee")
    drawn = {degrade.mixed_style(seed, name) for seed in range(40) for name in degrade.names()}
    assert drawn == set(degrade.RENDER_STYLES)
    share = np.mean([degrade.mixed_style(seed, "lens flare") == "reference" for seed in range(400)])
    assert 0.4 < share < 0.6
    for seed in range(6):
        for name in ("lens flare", "scan lines", "mean shift"):
            st = degrade.mixed_style(seed, name)
            assert degrade.mixed_style(seed, degrade.get(name).aliases[0]) == st  # by canonical name
            out = degrade.apply(img, name, 0.6, seed=seed, style="mixed")
            assert np.array_equal(out, degrade.apply(img, name, 0.6, seed=seed, style=st))
            assert np.array_equal(out, degrade.apply(img, name, 0.6, seed=seed, style="mixed"))


def test_mixed_recipes_are_deterministic_and_render_each_step_in_its_style():
    img = _img("chelsea")
    styles = set()
    for i in range(30):
        r = degrade.sample_recipe("train", 2, f"m{i}", style="mixed")
        assert r == degrade.sample_recipe("train", 2, f"m{i}", style="mixed")
        for s in r.steps:
            assert s.style == degrade.mixed_style(s.seed, s.name)
            assert s.params == degrade.get(s.name).schedule(s.intensity, s.style)
            styles.add(s.style)
        if i < 4:
            expected = img
            for s in r.steps:
                expected = degrade.apply(expected, s.name, s.intensity, seed=s.seed, style=s.style)
            assert np.array_equal(degrade.render(img, r), expected)
    assert styles == set(degrade.RENDER_STYLES)
    assert {degrade.sample_recipe("train", 2, f"m{i}", style="mixed").style for i in range(30)} >= {"mixed"}


def test_mixed_eval_levels_share_the_style():
    for i in range(50):
        levels = [degrade.sample_eval(4, f"e{i}", s, style="mixed") for s in degrade.EVAL_LEVELS]
        assert len({(r.steps[0].name, r.steps[0].seed, r.steps[0].style) for r in levels}) == 1


# ---------------------------------------------------------------- recipes record the style


@pytest.mark.parametrize("style", degrade.STYLES)
def test_recipe_round_trips_with_its_styles(style):
    img = _img("rocket")
    r = degrade.sample_recipe("train", 9, "rt", style=style)
    d = json.loads(json.dumps(r.to_dict()))
    assert [x["style"] for x in d["degradations"]] == [s.style for s in r.steps]
    assert d["style"] == r.style and (style == "mixed" or r.style == style)
    again = degrade.Recipe.from_dict(d)
    assert again == r
    assert np.array_equal(degrade.render(img, again), degrade.render(img, r))
    for rec, step in zip(r.degradation_records(), r.steps):
        params = json.loads(rec["params"])
        assert params["style"] == step.style and params["seed"] == step.seed


def test_a_recipe_without_styles_reads_as_physical():
    # Written by Recipe.to_dict() before styles existed (commit a750495): no "style" anywhere.
    old = {
        "kind": "train",
        "seed": 3,
        "sample_id": "coco:1",
        "total_intensity": 0.9,
        "degradations": [
            {"name": "lens blur", "stage": "acquisition", "intensity": 0.4, "params": {"radius": 0.01}, "seed": 11},
            {
                "name": "watermark damage",
                "stage": "post-processing",
                "intensity": 0.5,
                "params": {"opacity": 0.4},
                "seed": 12,
            },
        ],
    }
    r = degrade.Recipe.from_dict(old)
    assert [s.style for s in r.steps] == ["physical", "physical"] and r.style == "physical"
    assert r.steps[0].params == {"radius": 0.01}
    img = _img("coffee")
    expected = degrade.apply(img, "lens blur", 0.4, seed=11, style="physical")
    expected = degrade.apply(expected, "watermark damage", 0.5, seed=12, style="physical")
    assert np.array_equal(degrade.render(img, r), expected)
    bad = {**old, "degradations": [{**old["degradations"][0], "style": "mixed"}]}
    with pytest.raises(ConfigError, match="degradations\\[\\].style"):
        degrade.Recipe.from_dict(bad)  # a recorded step has one render style


# ---------------------------------------------------------------- wording follows the style


def test_chain_wording_follows_the_steps_style():
    ref = degrade.Recipe((degrade.make_step("watermark damage", 0.9, 1, "reference"),), "train", 0, "w")
    phy = degrade.Recipe((degrade.make_step("watermark damage", 0.9, 1, "physical"),), "train", 0, "w")
    t_ref, t_phy = tpl.influence(ref, "id"), tpl.influence(phy, "id")
    w_ref = degrade.get("watermark damage").influence("reference")
    w_phy = degrade.get("watermark damage").influence("physical")
    assert any(e.lower() in t_ref.lower() for e in w_ref.effect["high"]) and w_ref.hides in t_ref
    assert any(e.lower() in t_phy.lower() for e in w_phy.effect["high"]) and w_phy.hides in t_phy
    assert "rectangle" in t_ref and "rectangle" not in t_phy
    assert degradation_context(ref)[0]["description"] == degrade.get("watermark damage").describe("reference")
    assert degradation_context(phy)[0]["description"] == degrade.get("watermark damage").describe("physical")


def test_chain_requests_take_a_style():
    img = _img("coffee")
    for style in degrade.RENDER_STYLES:
        req = request_from_image(img, question="What?", answer="0", choices=["x", "y"], seed=3, sample_id="s",
                                 style=style)
        assert {s.style for s in req.recipe.steps} == {style}
        assert np.array_equal(req.degraded_image, degrade.render(img, req.recipe))
    default = request_from_image(img, question="What?", answer="0", choices=["x", "y"], seed=3, sample_id="s")
    assert default.recipe.style == degrade.DEFAULT_STYLE


# ---------------------------------------------------------------- gallery


def test_gallery_puts_the_styles_side_by_side():
    img = _img("astronaut", (96, 72))
    one = gallery(img, ["lens flare", "scan lines"], thumb_height=48, style="physical")
    both = gallery(img, ["lens flare", "scan lines"], thumb_height=48, style=("physical", "reference"))
    tw = round(96 * 48 / 72)
    assert one.shape[1] == 190 + 4 * (tw + 4) + 4  # clean + three levels
    assert both.shape[1] == 190 + 7 * (tw + 4) + 4  # clean once + three levels per style
    assert both.shape[0] > one.shape[0]  # the style header row
    # The last thumbnail of the first row is the reference style at 0.9.
    y0 = both.shape[0] - 2 * (48 + 4)  # rows of 48 px + 4 px padding, then 4 px at the bottom
    x0 = 190 + 4 + 6 * (tw + 4)
    flare = degrade.apply(img, "lens flare", 0.9, style="reference")
    expected = cv2.resize(flare, (tw, 48), interpolation=cv2.INTER_AREA)
    assert np.array_equal(both[y0 : y0 + 48, x0 : x0 + tw], expected)
    with pytest.raises(ConfigError):
        gallery(img, ["lens flare"], style=("physical", "nope"))


# ---------------------------------------------------------------- fidelity to the reference implementation


def _fidelity_module():
    spec = importlib.util.spec_from_file_location("bench_fidelity", ROOT / "bench" / "fidelity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_style_statistics_match_the_reference_implementation():
    """The reference's figures come from running its add_degradation.py (see the JSON's note);
    here a subset (2 photos x 2 seeds, 640x480) of our reference style must agree in every cell."""
    fb = _fidelity_module()
    stored = fb.load_reference()
    assert stored["source"]["path"] == "add_degradation/add_degradation.py"
    assert stored["levels"] == ["0.23", "0.45", "0.90"] and stored["frame"] == [640, 480]
    assert set(stored["mean"]) == set(SPEC_NAMES)  # the reference code's 16
    photos, seeds = ("astronaut", "coffee"), (0, 1)
    ref = {
        n: {lv: fb._mean([stored["per_photo"][p][n][lv] for p in photos]) for lv in stored["levels"]}
        for n in stored["mean"]
    }
    ours = fb.measure(fb.engine_render("reference"), list(stored["mean"]), photos=photos, seeds=seeds)["mean"]
    ok, total, failures = fb.agreement(ours, ref)
    assert total == 48
    assert ok == 48, failures


def test_fidelity_statistics_are_the_documented_ones():
    fb = _fidelity_module()
    clean = fb.frame("coffee")
    same = fb.statistics(clean, clean)
    assert same == pytest.approx({"ssim": 1.0, "brightness": 1.0, "saturation": 1.0, "log_sharpness": 0.0, "mad": 0.0})
    half = (clean // 2).astype(np.uint8)
    st = fb.statistics(clean, half)
    assert st["brightness"] == pytest.approx(0.5, abs=0.01)
    assert st["log_sharpness"] == pytest.approx(np.log10(0.25), abs=0.02)
    assert st["mad"] == pytest.approx(np.abs(clean.astype(int) - half).mean() / 255)
    assert fb.within(same, {**same, "ssim": 0.85}) == ["ssim"]
