"""Edge conversion (PIL, gray, RGBA, 16-bit, float, BGR) and recipes (train / eval)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from factory import degrade
from factory.photos import photo

# ---------------------------------------------------------------- conversion at the edge


def test_uint16_and_float_scale_to_uint8():
    a16 = np.array([[0, 257, 65535]], np.uint16)
    assert degrade.to_rgb_uint8(a16)[0, :, 0].tolist() == [0, 1, 255]
    af = np.array([[0.0, 0.5, 1.0]], np.float32)
    assert degrade.to_rgb_uint8(af)[0, :, 1].tolist() == [0, 128, 255]
    ab = np.array([[False, True]])
    assert degrade.to_rgb_uint8(ab)[0, :, 2].tolist() == [0, 255]


def test_gray_is_replicated_and_alpha_composited_over_white():
    g = np.array([[10, 200]], np.uint8)
    assert degrade.to_rgb_uint8(g)[0, 0].tolist() == [10, 10, 10]
    rgba = np.zeros((1, 2, 4), np.uint8)
    rgba[0, 0] = [255, 0, 0, 255]  # opaque red
    rgba[0, 1] = [255, 0, 0, 0]  # fully transparent → white
    out = degrade.to_rgb_uint8(rgba)
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [255, 255, 255]
    la = np.array([[[0, 128]]], np.uint8)
    assert degrade.to_rgb_uint8(la)[0, 0].tolist() == [127, 127, 127]


def test_bgr_flag_reverses_channels():
    bgr = np.zeros((1, 1, 3), np.uint8)
    bgr[0, 0] = [1, 2, 3]
    assert degrade.to_rgb_uint8(bgr, bgr=True)[0, 0].tolist() == [3, 2, 1]
    assert degrade.apply(bgr, "lens blur", 0.0, bgr=True)[0, 0].tolist() == [3, 2, 1]


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK", "1", "I;16", "I", "F", "LA"])
def test_pil_modes(mode):
    base = Image.fromarray(degrade.to_rgb_uint8(photo("coffee"))[:40, :60])
    if mode in ("I;16", "I", "F"):
        arr = np.asarray(base.convert("L"), np.float32)
        if mode == "F":
            im = Image.fromarray(arr / 255.0, mode="F")
        else:
            im = (
                Image.fromarray((arr * 257).astype(np.uint16)).convert(mode)
                if mode == "I"
                else Image.fromarray((arr * 257).astype(np.uint16))
            )
    else:
        im = base.convert(mode)
    out = degrade.apply(im, "gaussian noise", 0.3, seed=1)
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8
    gray = np.asarray(base.convert("L"), np.int16)
    conv = degrade.to_rgb_uint8(im)
    if mode in ("L", "I;16", "I", "F", "LA"):
        assert np.abs(conv[:, :, 0].astype(np.int16) - gray).max() <= 1


def test_grayscale_and_rgba_photos_work_with_every_op():
    for name in ("camera", "coins", "page", "text", "logo"):
        img = photo(name)
        for d in degrade.catalogue():
            out = degrade.apply(img, d.name, 0.5, seed=2)
            assert out.shape == img.shape[:2] + (3,)


def test_load_image_reports_bad_files(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    good = tmp_path / "ok.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    raw = good.read_bytes()
    (tmp_path / "trunc.png").write_bytes(raw[: len(raw) // 2])
    assert degrade.load_image(good).shape == (64, 64, 3)
    for bad, match in (
        ("empty.png", "empty"),
        ("text.jpg", "not an image"),
        ("trunc.png", "truncated|unreadable"),
        ("missing.png", "no such file"),
    ):
        with pytest.raises(ValueError, match=match) as e:
            degrade.load_image(tmp_path / bad)
        assert bad in str(e.value)


def test_save_image_is_atomic_and_lossless(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    degrade.save_image(img, tmp_path / "a.png")
    assert np.array_equal(degrade.load_image(tmp_path / "a.png"), img)
    assert not list(tmp_path.glob(".*tmp"))
    with pytest.raises(ValueError, match="unsupported output format"):
        degrade.save_image(img, tmp_path / "a.gif")


# ---------------------------------------------------------------- recipes


def test_train_recipe_is_deterministic_and_well_formed():
    r1 = degrade.sample_recipe("train", 3, "coco:1")
    r2 = degrade.sample_recipe("train", 3, "coco:1")
    assert r1 == r2
    assert r1 != degrade.sample_recipe("train", 3, "coco:2")
    assert r1 != degrade.sample_recipe("train", 4, "coco:1")
    for i in range(200):
        r = degrade.sample_recipe("train", 0, f"id{i}")
        assert 1 <= len(r.steps) <= 8
        assert len(set(r.names)) == len(r.names)
        stages = [degrade.APPLY_ORDER.index(s.stage) for s in r.steps]
        assert stages == sorted(stages)
        for s in r.steps:
            assert 0.01 <= s.intensity <= 1.0 and round(s.intensity, 2) == s.intensity
            assert s.params == degrade.get(s.name).schedule(s.intensity)
        assert r.total_intensity == round(sum(s.intensity for s in r.steps), 2)


def test_train_recipe_statistics_match_the_config():
    counts = [len(degrade.sample_recipe("train", 0, f"s{i}").steps) for i in range(2000)]
    # 4 stages × P(include)=0.8 × E[k]=1.5 (capped by stage size) ≈ 4.8 degradations per image.
    assert 4.4 < np.mean(counts) < 5.2
    cfg = degrade.TrainRecipeConfig(
        stage_probability={"acquisition": 1.0, "transmission": 0.0, "environment": 0.0, "post-processing": 0.0},
        per_stage=(3, 3),
    )
    r = degrade.sample_train(0, "x", cfg)
    assert len(r.steps) == 3 and {s.stage for s in r.steps} == {"acquisition"}
    intens = [s.intensity for i in range(400) for s in degrade.sample_recipe("train", 1, f"u{i}").steps]
    assert 0.4 < np.mean(intens) < 0.6  # U[0, 1]


def test_train_recipe_only_and_fixed_intensity():
    r = degrade.sample_recipe("train", 0, "a", only=["noise", "Compression"], intensity=0.3)
    assert set(r.names) <= {"gaussian noise", "jpeg compression"} and r.steps
    assert all(s.intensity == 0.3 for s in r.steps)


def test_train_config_is_validated():
    for bad in (
        degrade.TrainRecipeConfig(per_stage=(2, 1)),
        degrade.TrainRecipeConfig(stage_probability={"nowhere": 0.5}),
        degrade.TrainRecipeConfig(stage_probability={"acquisition": 1.5}),
        degrade.TrainRecipeConfig(intensity_range=(0.8, 0.2)),
    ):
        with pytest.raises(ValueError, match="TrainRecipeConfig"):
            degrade.sample_train(0, "x", bad)
    with pytest.raises(ValueError, match="unknown recipe"):
        degrade.sample_recipe("test", 0, "x")


def test_eval_recipe_levels_are_nested_and_stages_equally_weighted():
    stages = Counter()
    for i in range(2000):
        levels = [degrade.sample_eval(5, f"q{i}", s) for s in degrade.EVAL_LEVELS]
        assert len({(r.steps[0].name, r.steps[0].seed) for r in levels}) == 1
        assert [r.steps[0].intensity for r in levels] == list(degrade.EVAL_LEVELS)
        stages[levels[0].steps[0].stage] += 1
    for st in degrade.STAGES:
        assert 0.22 < stages[st] / 2000 < 0.28, stages


def test_recipe_round_trips_through_json_and_renders_identically():
    img = degrade.to_rgb_uint8(photo("chelsea"))[:120, :160]
    r = degrade.sample_recipe("train", 9, "chelsea")
    again = degrade.Recipe.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again == r
    assert np.array_equal(degrade.render(img, r), degrade.render(img, again))
    recs = r.degradation_records()
    assert [x["name"] for x in recs] == r.names
    assert all(set(json.loads(x["params"])) >= set(degrade.get(x["name"]).params) for x in recs)
    with pytest.raises(ValueError, match="malformed recipe"):
        degrade.Recipe.from_dict({"degradations": [{"name": "lens blur"}]})


def test_render_applies_steps_in_order_from_rounded_intensities():
    img = degrade.to_rgb_uint8(photo("rocket"))[:100, :100]
    r = degrade.sample_recipe("train", 2, "rocket")
    expected = img
    for s in r.steps:
        expected = degrade.apply(expected, s.name, s.intensity, seed=s.seed)
    assert np.array_equal(degrade.render(img, r), expected)
