"""The degradation engine: 16 degradations over the paper's four stages, recipes and rendering.

Public API::

    from factory import degrade
    out = degrade.apply(image, "lens blur", 0.45, seed=0)      # one degradation
    degrade.catalogue()                                        # entries: name, stage, aliases, ...
    recipe = degrade.sample_recipe("train", seed=0, sample_id="coco:123")
    out = degrade.render(image, recipe)                        # all steps, in stage order

``image`` may be an RGB/RGBA/grayscale ``numpy`` array (uint8, uint16, bool, float in [0, 1]) or
a PIL image; see :mod:`factory.degrade.image` for the conversion rules. Results are always RGB
``uint8`` arrays of the input's height and width.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
    sample_eval,
    sample_recipe,
    sample_train,
)
from .registry import (
    APPLY_ORDER,
    STAGES,
    Degradation,
    Param,
    alias_table,
    canonical_name,
    catalogue,
    check_intensity,
    get,
    names,
    normalize_name,
)

__all__ = [
    "APPLY_ORDER",
    "EVAL_LEVELS",
    "STAGES",
    "Degradation",
    "Param",
    "Recipe",
    "Step",
    "TrainRecipeConfig",
    "alias_table",
    "apply",
    "canonical_name",
    "catalogue",
    "check_intensity",
    "derive_seed",
    "get",
    "load_image",
    "make_step",
    "names",
    "normalize_name",
    "render",
    "render_step",
    "sample_eval",
    "sample_recipe",
    "sample_train",
    "save_image",
    "to_rgb_uint8",
    "tune_allocator",
]


def _run(entry: Degradation, img: np.ndarray, s: float, seed: int) -> np.ndarray:
    if s == 0.0:
        return img.copy()
    out = entry.op(img, s, entry.schedule(s), np.random.default_rng(seed))
    if out.shape != img.shape or out.dtype != np.uint8:  # internal contract
        raise RuntimeError(
            f"{entry.name}: op returned {out.shape} {out.dtype} for input {img.shape} uint8 (bug)."
        )
    return np.ascontiguousarray(out)


def apply(image: Any, name: str, intensity: float, seed: int = 0, *, bgr: bool = False) -> np.ndarray:
    """Apply one degradation (canonical name or alias) at ``intensity`` in [0, 1].

    Returns a new RGB ``uint8`` array of the input's size. Intensity 0 returns the (converted)
    input unchanged, bit for bit. The same ``seed`` gives the same bytes; renders of one image
    and seed at different intensities are nested (the random draws are shared, only scaled).
    Raises ``ValueError`` for unknown names, NaN or out-of-range intensities and unusable images.
    """
    entry = get(name)
    s = check_intensity(intensity, entry.name)
    seed = check_seed(seed)
    img = to_rgb_uint8(image, bgr=bgr)
    return _run(entry, img, s, seed)


def render_step(image: Any, step: Step) -> np.ndarray:
    """Apply one recipe step."""
    return _run(get(step.name), to_rgb_uint8(image), step.intensity, step.seed)


def render(image: Any, recipe: Recipe, *, bgr: bool = False) -> np.ndarray:
    """Apply every step of ``recipe`` in order and return the degraded RGB ``uint8`` image."""
    img = to_rgb_uint8(image, bgr=bgr)
    out = img
    for step in recipe.steps:
        out = _run(get(step.name), out, step.intensity, step.seed)
    return out if out is not img else img.copy()
