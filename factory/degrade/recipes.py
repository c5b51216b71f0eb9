"""Recipes: which degradations an image gets, at which intensities, with which random seeds.

A recipe depends only on ``(seed, sample_id)`` (and its configuration), never on the order in
which samples are processed or on the number of workers. Intensities are rounded to two
decimals *before* rendering, so the pixels match the label that goes into ``<TYPE>``.

* ``train``: several degradations across stages. Each stage is included with its probability,
  then 1-2 (configurable) distinct degradations of that stage are drawn, each with intensity
  ~ U[0, 1]. Steps are applied in :data:`~factory.degrade.registry.APPLY_ORDER`.
* ``eval``: the reference evaluation protocol. One degradation per image: a stage chosen with
  equal weights, then a degradation of that stage, at a given level (0.23 / 0.45 / 0.9 for the
  "25 / 50 / 100 %" levels). The choice and the op's random draws do not depend on the level, so
  the levels of one image are nested versions of the same damage.

Every step records the style it is rendered in (``reference`` or ``physical``). A recipe drawn
with ``style="mixed"`` picks the style of each step from the step's seed (:func:`mixed_style`),
without touching the recipe's own random draws: the same ``(seed, sample_id)`` gives the same
degradations, intensities and seeds in every style.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .registry import (
    APPLY_ORDER,
    DEFAULT_STYLE,
    LEGACY_STYLE,
    MIXED,
    RENDER_STYLES,
    STAGES,
    catalogue,
    check_intensity,
    check_style,
    get,
)

EVAL_LEVELS: tuple[float, ...] = (0.23, 0.45, 0.9)
"""Intensities of the reference protocol's 25 % / 50 % / 100 % levels."""


def derive_seed(seed: int, *keys: object) -> int:
    """A stable 63-bit seed from a base seed and keys (hash-based; independent of PYTHONHASHSEED)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(str(int(seed)).encode())
    for k in keys:
        h.update(b"\x1f")
        h.update(str(k).encode("utf-8", "surrogatepass"))
    return int.from_bytes(h.digest(), "little") >> 1


def check_seed(seed: object, what: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {seed!r}.")
    return int(seed)


def mixed_style(seed: int, name: str) -> str:
    """The render style ``mixed`` gives degradation ``name`` rendered with ``seed``.

    A hash of the seed and the canonical name, so it is fixed per step (the same at every
    intensity of an eval recipe) and ``apply(img, name, s, seed=step.seed, style="mixed")``
    renders what a mixed recipe's step renders.
    """
    return RENDER_STYLES[derive_seed(int(seed), "style", get(name).name) % len(RENDER_STYLES)]


def resolve_style(style: str, seed: int, name: str) -> str:
    """The render style of one degradation: ``style`` itself, or :func:`mixed_style` for ``mixed``."""
    st = check_style(style)
    return mixed_style(seed, name) if st == MIXED else st


@dataclass(frozen=True)
class Step:
    """One degradation of a recipe."""

    name: str
    stage: str
    intensity: float
    params: dict[str, float]
    seed: int
    style: str = DEFAULT_STYLE
    """The render style (``reference`` or ``physical``; never ``mixed``, which is resolved)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "stage": self.stage,
            "intensity": self.intensity,
            "params": dict(self.params),
            "seed": self.seed,
            "style": self.style,
        }


def make_step(name: str, intensity: float, seed: int, style: str = DEFAULT_STYLE) -> Step:
    """A step for ``name`` at ``intensity`` (rounded to 2 decimals), parameters from its table.

    ``style="mixed"`` is resolved here, from ``seed`` (:func:`mixed_style`).
    """
    entry = get(name)
    s = round(check_intensity(intensity, entry.name), 2)
    seed = int(seed)
    st = resolve_style(style, seed, entry.name)
    return Step(entry.name, entry.stage, s, entry.schedule(s, st), seed, st)


@dataclass(frozen=True)
class Recipe:
    """The degradations of one image, in application order."""

    steps: tuple[Step, ...]
    kind: str = "train"
    seed: int = 0
    sample_id: str = ""

    @property
    def total_intensity(self) -> float:
        """Sum of the (rounded) intensities: the paper's overall intensity."""
        return round(sum(s.intensity for s in self.steps), 2)

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    @property
    def style(self) -> str:
        """The steps' common style, ``mixed`` when they differ (the default style when empty)."""
        styles = {s.style for s in self.steps}
        if not styles:
            return DEFAULT_STYLE
        return styles.pop() if len(styles) == 1 else MIXED

    def type_pairs(self) -> list[tuple[str, float]]:
        """``[(name, intensity), ...]`` in application order: what ``<TYPE>`` lists."""
        return [(s.name, s.intensity) for s in self.steps]

    def degradation_records(self) -> list[dict[str, Any]]:
        """The dataset's ``degradations`` column: name, stage, intensity, params as JSON.

        The params JSON carries the step's seed and style next to the parameter values.
        """
        return [
            {
                "name": s.name,
                "stage": s.stage,
                "intensity": s.intensity,
                "params": json.dumps({**s.params, "seed": s.seed, "style": s.style}, sort_keys=True),
            }
            for s in self.steps
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "seed": self.seed,
            "sample_id": self.sample_id,
            "style": self.style,
            "total_intensity": self.total_intensity,
            "degradations": [s.to_dict() for s in self.steps],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Recipe:
        """Rebuild a recipe from :meth:`to_dict` output (for example a sidecar JSON file).

        A step without a ``style`` field was written before styles existed and reads as
        :data:`~factory.degrade.registry.LEGACY_STYLE` (``physical``), so old sidecars and
        datasets still render the pixels they were made with.
        """
        try:
            steps = []
            for x in d["degradations"]:
                entry = get(x["name"])
                s = round(check_intensity(x["intensity"], x["name"]), 2)
                seed = check_seed(x["seed"], f"degradation {x['name']!r} seed")
                style = check_style(x.get("style", LEGACY_STYLE), allow_mixed=False, field="degradations[].style")
                steps.append(Step(entry.name, entry.stage, s, entry.schedule(s, style), seed, style))
            return cls(tuple(steps), str(d.get("kind", "train")), int(d.get("seed", 0)), str(d.get("sample_id", "")))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"recipe: malformed recipe dict ({exc!r}); expected keys kind, seed, sample_id and "
                "degradations=[{name, intensity, seed, style}, ...] as written by Recipe.to_dict()."
            ) from None


@dataclass
class TrainRecipeConfig:
    """How the ``train`` recipe draws degradations. All fields have the documented defaults."""

    stage_probability: dict[str, float] = field(default_factory=lambda: {s: 0.8 for s in STAGES})
    """Probability that each stage contributes degradations (paper: all four stages appear)."""
    per_stage: tuple[int, int] = (1, 2)
    """Inclusive range of distinct degradations drawn from an included stage."""
    intensity_range: tuple[float, float] = (0.0, 1.0)
    """Intensities are drawn from U[lo, hi], rounded to 2 decimals, and at least 0.01."""
    only: tuple[str, ...] | None = None
    """Restrict the pool to these degradations (names or aliases)."""
    intensity: float | None = None
    """Fix every intensity to this value instead of drawing it."""

    def validate(self) -> None:
        for st, pr in self.stage_probability.items():
            if st not in STAGES:
                raise ValueError(f"TrainRecipeConfig.stage_probability: unknown stage {st!r}; use {STAGES}.")
            if not 0.0 <= float(pr) <= 1.0:
                raise ValueError(f"TrainRecipeConfig.stage_probability[{st!r}] must be in [0, 1], got {pr!r}.")
        lo, hi = self.per_stage
        if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi and hi >= 1):
            raise ValueError(
                f"TrainRecipeConfig.per_stage must be (lo, hi) with 0 <= lo <= hi, hi >= 1; got {self.per_stage!r}."
            )
        a, b = self.intensity_range
        check_intensity(a, "TrainRecipeConfig.intensity_range")
        check_intensity(b, "TrainRecipeConfig.intensity_range")
        if a > b:
            raise ValueError(
                f"TrainRecipeConfig.intensity_range must be (lo, hi) with lo <= hi, got {self.intensity_range!r}."
            )
        if self.intensity is not None:
            check_intensity(self.intensity, "TrainRecipeConfig.intensity")


def _pool(only: Iterable[str] | None) -> list:
    if not only:
        return catalogue()
    chosen = {get(n).name for n in only}
    return [d for d in catalogue() if d.name in chosen]


def _ordered(steps: Iterable[Step]) -> tuple[Step, ...]:
    order = {d.name: i for i, d in enumerate(catalogue())}
    return tuple(sorted(steps, key=lambda st: (APPLY_ORDER.index(st.stage), order[st.name])))


def sample_train(
    seed: int, sample_id: str, config: TrainRecipeConfig | None = None, *, style: str = DEFAULT_STYLE
) -> Recipe:
    """Draw the ``train`` recipe of one sample; every step in ``style`` (``mixed``: per step)."""
    cfg = config or TrainRecipeConfig()
    cfg.validate()
    seed = check_seed(seed)
    style = check_style(style)
    rng = np.random.default_rng(derive_seed(seed, "train-recipe", sample_id))
    pool = _pool(cfg.only)
    by_stage = {st: [d for d in pool if d.stage == st] for st in STAGES}
    chosen: list = []
    lo, hi = cfg.per_stage
    for st in STAGES:  # fixed iteration order: the draws do not depend on the pool's content
        include = rng.random() < cfg.stage_probability.get(st, 0.0)
        k = int(rng.integers(lo, hi + 1))
        perm = rng.permutation(len(by_stage[st])) if by_stage[st] else []
        if include and by_stage[st]:
            chosen += [by_stage[st][i] for i in perm[: min(k, len(by_stage[st]))]]
    if not chosen:  # every image carries at least one degradation
        nonempty = [st for st in STAGES if by_stage[st]]
        if not nonempty:
            raise ValueError("train recipe: the degradation pool is empty; check --only.")
        st = nonempty[int(rng.integers(len(nonempty)))]
        chosen = [by_stage[st][int(rng.integers(len(by_stage[st])))]]
    a, b = cfg.intensity_range
    steps = []
    for d in sorted(chosen, key=lambda d: d.name):
        drawn = float(rng.uniform(a, b))
        s = cfg.intensity if cfg.intensity is not None else max(0.01, round(drawn, 2))
        steps.append(make_step(d.name, s, derive_seed(seed, sample_id, d.name), style))
    return Recipe(_ordered(steps), "train", seed, str(sample_id))


def sample_eval(
    seed: int,
    sample_id: str,
    intensity: float,
    only: Sequence[str] | None = None,
    *,
    style: str = DEFAULT_STYLE,
) -> Recipe:
    """The reference evaluation recipe: one degradation (equal stage weights) at ``intensity``.

    The degradation, its style (for ``mixed``) and its random draws depend on ``(seed,
    sample_id)`` only, so the recipes of one sample at 0.23 / 0.45 / 0.9 differ in intensity alone.
    """
    seed = check_seed(seed)
    style = check_style(style)
    check_intensity(intensity, "eval recipe")
    pool = _pool(only)
    rng = np.random.default_rng(derive_seed(seed, "eval-recipe", sample_id))
    stages = [st for st in STAGES if any(d.stage == st for d in pool)]
    st = stages[int(rng.integers(len(stages)))]
    in_stage = [d for d in pool if d.stage == st]
    d = in_stage[int(rng.integers(len(in_stage)))]
    step = make_step(d.name, intensity, derive_seed(seed, sample_id, d.name), style)
    return Recipe((step,), "eval", seed, str(sample_id))


def sample_recipe(
    kind: str,
    seed: int,
    sample_id: str,
    *,
    intensity: float | None = None,
    only: Sequence[str] | None = None,
    config: TrainRecipeConfig | None = None,
    style: str = DEFAULT_STYLE,
) -> Recipe:
    """Draw a ``train`` or ``eval`` recipe (``intensity`` defaults to 0.45 for ``eval``).

    ``style``: ``reference`` (default), ``physical`` or ``mixed`` (drawn per step from its seed).
    """
    style = check_style(style)
    if kind == "train":
        cfg = config or TrainRecipeConfig()
        if only is not None or intensity is not None:
            cfg = TrainRecipeConfig(
                stage_probability=cfg.stage_probability,
                per_stage=cfg.per_stage,
                intensity_range=cfg.intensity_range,
                only=tuple(only) if only is not None else cfg.only,
                intensity=intensity if intensity is not None else cfg.intensity,
            )
        return sample_train(seed, sample_id, cfg, style=style)
    if kind == "eval":
        return sample_eval(seed, sample_id, 0.45 if intensity is None else intensity, only, style=style)
    raise ValueError(f"unknown recipe {kind!r}; use 'train' or 'eval'.")
