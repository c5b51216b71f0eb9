"""The degradation engine: 16 degradations over the paper's four stages, recipes and rendering.

Public API::

    from factory import degrade
    out = degrade.apply(image, "lens blur", 0.45, seed=0)      # one degradation, default style
    out = degrade.apply(image, "lens blur", 0.45, seed=0, style="physical")
    degrade.catalogue()                                        # entries: name, stage, aliases, looks
    recipe = degrade.sample_recipe("train", seed=0, sample_id="coco:123", style="mixed")
    out = degrade.render(image, recipe)                        # all steps, each in its style

Every degradation is drawn in two styles (:data:`RENDER_STYLES`): ``reference`` reproduces the
look and strength curve of the paper's reference code (the default, :data:`DEFAULT_STYLE`) and
``physical`` is this project's own rendering; ``mixed`` draws one of them per degradation from the
seed. The names are the same in every style.

``image`` may be an RGB/RGBA/grayscale ``numpy`` array (uint8, uint16, bool, float in [0, 1]) or
a PIL image; see :mod:`factory.degrade.image` for the conversion rules. Results are always RGB
``uint8`` arrays of the input's height and width.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The stage modules register their ops with the registry when imported; importing them here
# (and nowhere else) fills the catalogue before any submodule of the package is used.
from . import acquisition, environment, postprocessing, transmission  # noqa: F401
from ._alloc import tune_allocator
from .image import load_image, save_image, to_rgb_uint8
from .recipes import (
    EVAL_LEVELS,
    Recipe,
    Step,
    TrainRecipeConfig,
    check_seed,
    derive_seed,
    make_step,
    mixed_style,
    resolve_style,
    sample_eval,
    sample_recipe,
    sample_train,
)
from .registry import (
    APPLY_ORDER,
    DEFAULT_STYLE,
    LEGACY_STYLE,
    MIXED,
    RENDER_STYLES,
    STAGES,
    STYLES,
    Curve,
    Degradation,
    Influence,
    Look,
    Param,
    alias_table,
    canonical_name,
    catalogue,
    check_intensity,
    check_style,
    get,
    names,
    normalize_name,
)

__all__ = [
    "APPLY_ORDER",
    "DEFAULT_STYLE",
    "EVAL_LEVELS",
    "LEGACY_STYLE",
    "MIXED",
    "RENDER_STYLES",
    "STAGES",
    "STYLES",
    "Curve",
    "Degradation",
    "Influence",
    "Look",
    "Param",
    "Recipe",
    "Step",
    "TrainRecipeConfig",
    "alias_table",
    "apply",
    "canonical_name",
    "catalogue",
    "check_intensity",
    "check_style",
    "derive_seed",
    "get",
    "load_image",
    "make_step",
    "mixed_style",
    "names",
    "normalize_name",
    "render",
    "resolve_style",
    "sample_eval",
    "sample_recipe",
    "sample_train",
    "save_image",
    "to_rgb_uint8",
    "tune_allocator",
]


def _run(entry: Degradation, img: np.ndarray, s: float, seed: int, style: str) -> np.ndarray:
    if s == 0.0:
        return img.copy()
    look = entry.look(style)
    out = look.op(img, s, look.schedule(s), np.random.default_rng(seed))
    if out.shape != img.shape or out.dtype != np.uint8:  # internal contract
        raise RuntimeError(
            f"{entry.name} ({style}): op returned {out.shape} {out.dtype} for input {img.shape} uint8 (bug)."
        )
    return np.ascontiguousarray(out)


def apply(
    image: Any,
    name: str,
    intensity: float,
    seed: int = 0,
    *,
    style: str = DEFAULT_STYLE,
    bgr: bool = False,
) -> np.ndarray:
    """Apply one degradation (canonical name or alias) at ``intensity`` in [0, 1] in ``style``.

    ``style`` is ``"reference"`` (the default), ``"physical"`` or ``"mixed"`` (one of the two,
    drawn from ``seed`` and the name: :func:`mixed_style`). Returns a new RGB ``uint8`` array of
    the input's size. Intensity 0 returns the (converted) input unchanged, bit for bit. The same
    ``seed`` gives the same bytes; renders of one image and seed at different intensities are
    nested (the random draws are shared, only scaled). Raises ``ValueError`` for unknown names or
    styles, NaN or out-of-range intensities and unusable images.
    """
    entry = get(name)
    s = check_intensity(intensity, entry.name)
    seed = check_seed(seed)
    look_style = resolve_style(style, seed, entry.name)
    img = to_rgb_uint8(image, bgr=bgr)
    return _run(entry, img, s, seed, look_style)


def render(image: Any, recipe: Recipe, *, bgr: bool = False) -> np.ndarray:
    """Apply every step of ``recipe`` in order, each in its recorded style; return RGB ``uint8``."""
    img = to_rgb_uint8(image, bgr=bgr)
    out = img
    for step in recipe.steps:
        out = _run(get(step.name), out, step.intensity, step.seed, step.style)
    return out if out is not img else img.copy()
