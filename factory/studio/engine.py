"""The studio's view of the degradation engine: styles, manual recipes, drawn recipes, rendering
and per-intensity strips."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from factory import degrade
from factory.chains.format import format_type

from .common import StudioError

MANUAL_SLOTS = 8
"""Degradations one manual recipe can hold (the paper's example carries 7)."""


def styles() -> tuple[str, ...]:
    """The styles the engine offers (``reference``, ``physical``, ``mixed``)."""
    return degrade.STYLES


def default_style() -> str:
    """The engine's default style."""
    return degrade.DEFAULT_STYLE


def _style_kw(style: str | None) -> dict[str, Any]:
    """``{"style": ...}`` for the engine (none given: the engine's default)."""
    if style is None:
        return {}
    if style not in degrade.STYLES:
        raise StudioError(f"style {style!r}: use one of {', '.join(degrade.STYLES)}.")
    return {"style": style}


def check_seed(seed: Any) -> int:
    try:
        value = float(seed)
    except (TypeError, ValueError):
        raise StudioError(f"seed {seed!r}: give a whole number >= 0.") from None
    if not np.isfinite(value) or value < 0 or value != int(value):
        raise StudioError(f"seed {seed!r}: give a whole number >= 0.")
    return int(value)


def manual_recipe(
    slots: Sequence[tuple[str | None, float]], *, seed: int, sample_id: str = "studio", style: str | None = None
) -> degrade.Recipe:
    """A recipe from chosen ``(name, intensity)`` pairs; empty names are skipped.

    Steps are put in the engine's application order (stage, then catalogue order), like drawn
    recipes; each step's random seed derives from ``(seed, sample_id, name)`` as in the train recipe.
    """
    chosen: dict[str, float] = {}
    for name, s in slots:
        if not name:
            continue
        entry = degrade.get(name)
        if entry.name in chosen:
            raise StudioError(f"{entry.name} is chosen twice; keep one and set its intensity.")
        chosen[entry.name] = degrade.check_intensity(s, entry.name)
    if not chosen:
        raise StudioError("choose at least one degradation (or draw a train/eval recipe).")
    kw = _style_kw(style)
    steps = [degrade.make_step(n, s, degrade.derive_seed(seed, sample_id, n), **kw) for n, s in chosen.items()]
    order = {d.name: i for i, d in enumerate(degrade.catalogue())}
    steps.sort(key=lambda st: (degrade.APPLY_ORDER.index(st.stage), order[st.name]))
    return degrade.Recipe(tuple(steps), "manual", seed, sample_id)


def drawn_recipe(
    kind: str, *, seed: int, sample_id: str = "studio", level: float | None = None, style: str | None = None
) -> degrade.Recipe:
    """The engine's ``train`` or ``eval`` recipe for ``(seed, sample_id)`` (eval at ``level``)."""
    if kind not in ("train", "eval"):
        raise StudioError(f"recipe {kind!r}: use train or eval.")
    intensity = None if kind == "train" else (0.45 if level is None else level)
    return degrade.sample_recipe(kind, seed, sample_id, intensity=intensity, **_style_kw(style))


def render(
    image: np.ndarray, recipe: degrade.Recipe, progress: Callable[[float, str], Any] | None = None
) -> np.ndarray:
    """Apply ``recipe`` step by step (so long renders can report progress)."""
    out = degrade.to_rgb_uint8(image)
    for i, step in enumerate(recipe.steps):
        if progress is not None:
            progress(i / max(1, len(recipe.steps)), f"{step.name} ({step.intensity:.2f})")
        out = degrade.render(out, degrade.Recipe((step,), recipe.kind, recipe.seed, recipe.sample_id))
    return out if recipe.steps else out.copy()


def type_text(recipe: degrade.Recipe) -> str:
    """The ``<TYPE>`` line of ``recipe`` (``none`` for no damage)."""
    return format_type(recipe.type_pairs())


def strip(
    image: np.ndarray, name: str, levels: Sequence[float], *, seed: int = 0, style: str | None = None
) -> list[tuple[np.ndarray, str]]:
    """``name`` applied to ``image`` at every level: ``[(image, caption), ...]``."""
    entry = degrade.get(name)
    kw = _style_kw(style)
    return [
        (degrade.apply(image, entry.name, float(s), seed=seed, **kw), f"{entry.name} @ {float(s):.2f}") for s in levels
    ]


def contact_sheet(
    image: np.ndarray,
    name: str,
    levels: Sequence[float],
    *,
    seed: int = 0,
    style: str | None = None,
    title: str | None = None,
) -> np.ndarray:
    """The engine's labelled gallery (one row: ``name`` at every level)."""
    from factory.degrade.gallery import gallery

    return gallery(image, [name], list(levels), seed=seed, title=title, **_style_kw(style))


def parse_levels(text: str) -> list[float]:
    """``"0, 0.23, 0.45, 0.9"`` → floats in [0, 1] (2 decimals, as the engine rounds), at most 12."""
    items = [t for t in str(text).replace(";", ",").replace(" ", ",").split(",") if t.strip()]
    if not items:
        raise StudioError("intensities: give a comma-separated list, e.g. 0, 0.23, 0.45, 0.9.")
    out = []
    for t in items:
        try:
            s = float(t)
        except ValueError:
            raise StudioError(f"intensities: {t!r} is not a number; use e.g. 0, 0.23, 0.45, 0.9.") from None
        degrade.check_intensity(s, "intensities")
        out.append(round(s, 2))
    if len(out) > 12:
        raise StudioError(f"intensities: {len(out)} given; at most 12.")
    return out
