"""Properties every degradation must have, in every style (issues 2 and 16)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage.metrics import structural_similarity as ssim

from _spec import PAPER_ALIASES as _SPEC_ALIASES
from _spec import PAPER_STAGES, SPEC_NAMES
from factory import degrade
from factory.photos import RGB_PHOTOS, photo

NAMES = degrade.names()
STYLES = degrade.RENDER_STYLES
NAME_STYLE = [(n, st) for st in STYLES for n in NAMES]
RANDOM_NAME_STYLE = [(d.name, st) for st in STYLES for d in degrade.catalogue() if d.look(st).random]
PAPER_ALIASES = {**_SPEC_ALIASES, "mean-shift": "mean shift", "LENS_BLUR": "lens blur"}


def _small(name: str, longest: int) -> np.ndarray:
    img = degrade.to_rgb_uint8(photo(name))
    h, w = img.shape[:2]
    f = longest / max(h, w)
    return cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------- catalogue


def test_catalogue_has_the_papers_sixteen_names_in_four_stages():
    assert sorted(NAMES) == sorted(SPEC_NAMES)
    for stage, members in PAPER_STAGES.items():
        assert {d.name for d in degrade.catalogue() if d.stage == stage} == members
    assert [d.stage for d in degrade.catalogue()] == sorted(
        (d.stage for d in degrade.catalogue()), key=degrade.STAGES.index
    )


@pytest.mark.parametrize("alias,canonical", sorted(PAPER_ALIASES.items()))
def test_paper_aliases_resolve(alias, canonical):
    assert degrade.canonical_name(alias) == canonical
    assert degrade.get(alias).name == canonical


@pytest.mark.parametrize("style", STYLES)
def test_every_entry_documents_a_parameter_table(style):
    for d in degrade.catalogue():
        look = d.look(style)
        assert look.style == style and look.params, d.name
        assert look.description and look.description == d.describe(style), d.name
        at0, at1 = d.schedule(0.0, style), d.schedule(1.0, style)
        assert set(at0) == set(look.params)
        assert any(at0[k] != at1[k] for k in at0), f"{d.name}: table does not change with intensity"
        assert d.schedule_summary(style)


# ---------------------------------------------------------------- contract over sizes, dtypes, channels

SIZES = st.one_of(
    st.tuples(st.integers(1, 48), st.integers(1, 48)),
    st.sampled_from([(1, 1), (1, 1500), (1500, 1), (1500, 40), (40, 1500), (2, 2), (33, 31)]),
)
CHANNELS = st.sampled_from([None, 1, 2, 3, 4])
DTYPES = st.sampled_from(["uint8", "uint16", "float32", "float64", "bool"])


def _make(rng: np.random.Generator, h: int, w: int, c: int | None, dtype: str) -> np.ndarray:
    shape = (h, w) if c is None else (h, w, c)
    if dtype == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if dtype == "uint16":
        return rng.integers(0, 65536, shape, dtype=np.uint16)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    return rng.random(shape).astype(dtype)


@pytest.mark.parametrize("name,style", NAME_STYLE)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(size=SIZES, c=CHANNELS, dtype=DTYPES, s=st.floats(0.0, 1.0), seed=st.integers(0, 2**32))
def test_op_contract(name, style, size, c, dtype, s, seed):
    h, w = size
    img = _make(np.random.default_rng(seed), h, w, c, dtype)
    before = img.copy()
    out = degrade.apply(img, name, s, seed=seed, style=style)
    assert out.shape == (h, w, 3)
    assert out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"]
    assert np.array_equal(img, before), "input was modified in place"
    assert np.array_equal(out, degrade.apply(img, name, s, seed=seed, style=style)), "same seed, different bytes"
    assert np.array_equal(degrade.apply(img, name, 0.0, seed=seed, style=style), degrade.to_rgb_uint8(img))


@pytest.mark.parametrize("name,style", NAME_STYLE)
def test_identity_at_zero_is_bit_exact_on_a_photo(name, style):
    img = _small("coffee", 96)
    out = degrade.apply(img, name, 0.0, seed=1, style=style)
    assert out is not img
    assert np.array_equal(out, img)


@pytest.mark.parametrize("name,style", NAME_STYLE)
def test_small_intensity_changes_the_image(name, style):
    img = _small("astronaut", 128)
    assert not np.array_equal(degrade.apply(img, name, 0.2, seed=1, style=style), img)


@pytest.mark.parametrize("name,style", RANDOM_NAME_STYLE)
def test_different_seeds_give_different_bytes(name, style):
    # 0.95: the reference's colour diffusion only draws its random grey discs above 0.9.
    img = _small("chelsea", 160)
    for a, b in ((0, 1), (2, 3)):
        one = degrade.apply(img, name, 0.95, seed=a, style=style)
        assert not np.array_equal(one, degrade.apply(img, name, 0.95, seed=b, style=style))


@pytest.mark.parametrize("style", STYLES)
def test_deterministic_ops_ignore_the_seed(style):
    img = _small("rocket", 96)
    for d in degrade.catalogue():
        if not d.look(style).random:
            a = degrade.apply(img, d.name, 0.5, seed=0, style=style)
            assert np.array_equal(a, degrade.apply(img, d.name, 0.5, seed=9, style=style)), d.name


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_the_styles_draw_different_pictures_under_one_name(name):
    # the reference code's 16 have a look of their own in each style; a degradation the reference
    # code lacks may register one look for both (CONTRIBUTING.md, "Adding a degradation")
    img = _small("astronaut", 160)
    ref = degrade.apply(img, name, 0.45, seed=2, style="reference")
    assert not np.array_equal(ref, degrade.apply(img, name, 0.45, seed=2, style="physical"))
    assert np.array_equal(ref, degrade.apply(img, name, 0.45, seed=2))  # reference is the default


# ---------------------------------------------------------------- severity


GRID = (0.0, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("photo_name", RGB_PHOTOS)
def test_ssim_falls_strictly_with_intensity_on_every_bundled_photo(photo_name, style):
    img = _small(photo_name, 384)
    failures = []
    for name in NAMES:
        vals = [
            ssim(img, degrade.apply(img, name, s, seed=3, style=style), channel_axis=2, data_range=255) for s in GRID
        ]
        if not all(b < a for a, b in zip(vals, vals[1:])):
            failures.append((name, [round(v, 4) for v in vals]))
    assert not failures, failures


@pytest.mark.parametrize("name", ["lens blur", "motion blur", "atmospheric turbulence", "mean shift"])
def test_physical_blurs_preserve_brightness(name):
    """Physical blur-like ops keep the mean brightness (the reference's lens blur brightens)."""
    img = _small("astronaut", 256)
    out = degrade.apply(img, name, 0.9, seed=0, style="physical")
    assert abs(float(out.mean()) - float(img.mean())) < 3.0


# ---------------------------------------------------------------- nesting and scale


class RecordingGenerator:
    """Wraps a numpy Generator and records every call (method, arguments)."""

    def __init__(self, seed):
        self._g = np.random.default_rng(seed)
        self.calls = []

    def __getattr__(self, attr):
        fn = getattr(self._g, attr)

        def wrapper(*args, **kwargs):
            self.calls.append((attr, repr(args), repr(sorted(kwargs.items()))))
            return fn(*args, **kwargs)

        return wrapper


@pytest.mark.parametrize("name,style", NAME_STYLE)
def test_random_draws_do_not_depend_on_intensity(name, style):
    look = degrade.get(name).look(style)
    img = _small("coffee", 120)
    logs = []
    for s in (0.05, *degrade.EVAL_LEVELS, 0.97):
        rec = RecordingGenerator(11)
        look.op(img, s, look.schedule(s), rec)
        logs.append(rec.calls)
    assert all(log == logs[0] for log in logs)
    if look.random:
        assert logs[0], f"{name} ({style}) is marked random but draws nothing"
    else:
        assert not logs[0], f"{name} ({style}) is marked deterministic but draws"


def test_physical_block_exchange_levels_are_nested():
    img = _small("astronaut", 256)
    masks = [
        np.any(degrade.apply(img, "block exchange", s, seed=4, style="physical") != img, axis=2)
        for s in degrade.EVAL_LEVELS
    ]
    assert masks[0].sum() > 0
    assert not np.any(masks[0] & ~masks[1]) and not np.any(masks[1] & ~masks[2])
    assert masks[0].sum() < masks[1].sum() < masks[2].sum()


@pytest.mark.parametrize("style", STYLES)
def test_graffiti_levels_are_nested(style):
    img = np.full((200, 300, 3), 128, np.uint8)
    masks = [np.any(degrade.apply(img, "graffiti", s, seed=4, style=style) != img, axis=2) for s in degrade.EVAL_LEVELS]
    assert 0 < masks[0].sum() < masks[1].sum() < masks[2].sum()
    assert (masks[0] & ~masks[2]).sum() <= 0.01 * masks[0].sum()


@pytest.mark.parametrize(
    "name,style", [(d.name, st) for st in STYLES for d in degrade.catalogue() if d.look(st).scale_invariant]
)
def test_one_intensity_looks_alike_at_256_and_1024_px(name, style):
    base = degrade.to_rgb_uint8(photo("astronaut"))
    small = cv2.resize(base, (256, 256), interpolation=cv2.INTER_AREA)
    big = cv2.resize(base, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    ref = cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA)
    a = degrade.apply(small, name, 0.6, seed=7, style=style)
    b = cv2.resize(degrade.apply(big, name, 0.6, seed=7, style=style), (256, 256), interpolation=cv2.INTER_AREA)
    damage_small = 1 - ssim(small, a, channel_axis=2)
    damage_big = 1 - ssim(ref, b, channel_axis=2)
    assert abs(damage_small - damage_big) < 0.06, (damage_small, damage_big)
    assert ssim(a, b, channel_axis=2) > 0.6


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("bad", [float("nan"), -0.01, 1.01, math.inf, "0.5", None, True])
def test_bad_intensity_names_the_op_and_value(bad):
    with pytest.raises(ValueError) as e:
        degrade.apply(np.zeros((4, 4, 3), np.uint8), "lens blur", bad)
    assert "lens blur" in str(e.value) and repr(bad) in str(e.value)


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match="unknown degradation 'lens blurr'.*lens blur"):
        degrade.apply(np.zeros((4, 4, 3), np.uint8), "lens blurr", 0.5)


@pytest.mark.parametrize(
    "arr,match",
    [
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.zeros((2, 4, 4, 3), np.uint8), "shape"),
        (np.zeros((4, 4, 5), np.uint8), "channels"),
        (np.zeros((3, 40, 50), np.uint8), "channel-first"),
        (np.full((4, 4, 3), 2.0, np.float32), r"\[0, 1\]"),
        (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
        (np.zeros((4, 4, 3), object), "dtype"),
        (np.full((4, 4), -5, np.int32), "integer"),
        ("not an image", "numpy array or a PIL image"),
    ],
)
def test_unusable_images_raise_value_error(arr, match):
    with pytest.raises(ValueError, match=match):
        degrade.apply(arr, "gaussian noise", 0.5)


def test_negative_seed_is_rejected():
    with pytest.raises(ValueError, match="seed"):
        degrade.apply(np.zeros((4, 4, 3), np.uint8), "gaussian noise", 0.5, seed=-1)
