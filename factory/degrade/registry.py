"""The catalogue of degradations: names, aliases, stages and, per style, parameter tables and ops.

Every degradation is registered once per style, by its stage module, with

* ``name``: the canonical name, the one the released Robust-R1 model writes in ``<TYPE>``; the
  same in every style;
* ``aliases``: other spellings accepted when parsing (the paper's names among them);
* ``stage``: one of :data:`STAGES`;
* ``style``: one of :data:`RENDER_STYLES` (see below);
* ``params``: an explicit table ``parameter -> (value at intensity 0, value at intensity 1,
  curve exponent, unit)``. ``schedule(s)`` evaluates the table; geometric sizes are fractions of
  the image's short side, so one intensity looks alike at any resolution;
* ``op(img, s, params, rng)``: the pixel operation on an RGB uint8 array. ``rng`` is a
  ``numpy.random.Generator``; every op draws the same random numbers whatever the intensity
  (randomness is drawn once per image and only *scaled* by the intensity), so renders of one
  image at several intensities are nested;
* ``description`` and ``influence``: what the damage looks like in that style, in one line (the
  catalogue, the LLM chain writer's prompt) and as INFLUENCE wording per intensity band (the
  template chain writer).

Styles. ``reference`` reproduces what the reference implementation of the paper
(``add_degradation/add_degradation.py``) draws under each name, at its strength curve: what the
released data and models, and the paper's 25 / 50 / 100 % columns, mean by the name. ``physical``
is this project's own, physically motivated rendering of the same names. ``mixed`` (accepted
wherever a style is) draws one of the two per degradation from the seed.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from factory.errors import ConfigError

STAGES: tuple[str, ...] = ("acquisition", "transmission", "environment", "post-processing")
"""The paper's four stages, in the paper's order."""

APPLY_ORDER: tuple[str, ...] = ("acquisition", "environment", "post-processing", "transmission")
"""The order in which stages are applied by recipes: the camera and its optics first, then what
the scene and sensor add (darkness, turbulence, noise, colour bleeding), then editing
(sharpening, graffiti, watermarks), and transmission (compression, block errors, scan lines)
last, because an image is sent after it is made."""

RENDER_STYLES: tuple[str, ...] = ("reference", "physical")
"""The styles every degradation is drawn in (a recipe step records one of these)."""
MIXED = "mixed"
STYLES: tuple[str, ...] = (*RENDER_STYLES, MIXED)
"""Every accepted ``style`` argument: a render style, or ``mixed`` (one drawn per degradation)."""
DEFAULT_STYLE = "reference"
"""The style used wherever none is given: the look the paper's data and numbers were made with."""
LEGACY_STYLE = "physical"
"""The style of recipes written before styles existed (a step without a ``style`` field)."""

BANDS: tuple[str, ...] = ("low", "medium", "high")
"""Intensity bands of the influence wording (the chain writer decides where they start)."""

Op = Callable[[np.ndarray, float, dict, np.random.Generator], np.ndarray]


def check_style(style: object, *, allow_mixed: bool = True, field: str = "style") -> str:
    """Validate a style name (case-insensitive); raises :class:`~factory.errors.ConfigError`."""
    allowed = STYLES if allow_mixed else RENDER_STYLES
    key = str(style).strip().lower() if isinstance(style, str) else None
    if key not in allowed:
        raise ConfigError(
            field,
            f"unknown degradation style {style!r}",
            value=style,
            fix=f"use one of {', '.join(allowed)}; {DEFAULT_STYLE!r} is the default",
        )
    return key


@dataclass(frozen=True)
class Param:
    """One row of a parameter table: ``value(s) = start + (end - start) * s ** curve``."""

    start: float
    end: float
    curve: float = 1.0
    unit: str = ""

    def at(self, s: float) -> float:
        return self.start + (self.end - self.start) * (s**self.curve)

    def describe(self) -> str:
        shape = "" if self.curve == 1.0 else f", s^{self.curve:g}"
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.start:g} → {self.end:g}{unit}{shape}"


@dataclass(frozen=True)
class Curve(Param):
    """A parameter row whose value follows a formula that is not a power of ``s``.

    The reference implementation computes some sizes with integer truncation or hyperbolas
    (``int(20 / (s + 0.1))``); such rows keep the table honest. Build with :meth:`of`.
    """

    fn: Callable[[float], float] = field(default=lambda s: 0.0, repr=False, compare=False)
    formula: str = ""

    @classmethod
    def of(cls, fn: Callable[[float], float], formula: str, unit: str = "") -> Curve:
        return cls(float(fn(0.0)), float(fn(1.0)), 1.0, unit, fn, formula)

    def at(self, s: float) -> float:
        return float(self.fn(s))

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.formula} ({self.start:g} → {self.end:g}){unit}"


@dataclass(frozen=True)
class Influence:
    """How a chain describes one degradation in one style.

    ``effect``: per band (``low`` / ``medium`` / ``high``) alternative clauses saying what the
    damage does; ``hides``: plural noun phrase, what it makes unreliable; ``keeps``: plural noun
    phrase, what stays usable.
    """

    effect: Mapping[str, tuple[str, ...]]
    hides: str
    keeps: str

    def __post_init__(self) -> None:
        missing = [b for b in BANDS if not self.effect.get(b)]
        if missing:
            raise ValueError(f"Influence: no effect wording for band(s) {missing}.")


@dataclass(frozen=True)
class Look:
    """One style of a degradation: its op, parameter table and wording."""

    style: str
    op: Op = field(repr=False)
    params: Mapping[str, Param] = field(default_factory=dict)
    description: str = ""
    influence: Influence | None = field(default=None, repr=False)
    random: bool = True
    scale_invariant: bool = True

    def schedule(self, s: float) -> dict[str, float]:
        """Parameters at intensity ``s`` (rounded to 6 significant digits)."""
        return {k: float(f"{p.at(s):.6g}") for k, p in self.params.items()}

    def schedule_summary(self) -> str:
        return "; ".join(f"{k}: {p.describe()}" for k, p in self.params.items())

    def info(self) -> dict:
        return {
            "description": self.description,
            "random": self.random,
            "scale_invariant": self.scale_invariant,
            "parameters": {
                k: {"at_0": p.start, "at_1": p.end, "curve": p.curve, "unit": p.unit}
                for k, p in self.params.items()
            },
            "schedule": self.schedule_summary(),
        }


@dataclass(frozen=True)
class Degradation:
    """A catalogue entry: one name, one stage, a :class:`Look` per style.

    The style-free attributes (``op``, ``params``, ``description``, ``random``,
    ``scale_invariant``) and the methods without a ``style`` argument describe
    :data:`DEFAULT_STYLE`. Call :func:`factory.degrade.apply` rather than an op directly.
    """

    name: str
    stage: str
    aliases: tuple[str, ...] = ()
    looks: Mapping[str, Look] = field(default_factory=dict, repr=False)

    def look(self, style: str = DEFAULT_STYLE) -> Look:
        """The :class:`Look` of a render style (``mixed`` is resolved per seed by the caller)."""
        st = check_style(style, allow_mixed=False)
        try:
            return self.looks[st]
        except KeyError:  # pragma: no cover - every entry registers every style (tested)
            raise RuntimeError(f"{self.name}: no {st!r} style registered (bug).") from None

    @property
    def styles(self) -> tuple[str, ...]:
        return tuple(s for s in RENDER_STYLES if s in self.looks)

    @property
    def op(self) -> Op:
        return self.look().op

    @property
    def params(self) -> Mapping[str, Param]:
        return self.look().params

    @property
    def description(self) -> str:
        return self.look().description

    @property
    def random(self) -> bool:
        return self.look().random

    @property
    def scale_invariant(self) -> bool:
        return self.look().scale_invariant

    def describe(self, style: str = DEFAULT_STYLE) -> str:
        """One-line description of what the damage looks like in ``style``."""
        return self.look(style).description

    def influence(self, style: str = DEFAULT_STYLE) -> Influence:
        """The chain wording of this degradation in ``style``."""
        look = self.look(style)
        if look.influence is None:  # pragma: no cover - every look has wording (tested)
            raise RuntimeError(f"{self.name}: no influence wording for style {look.style!r} (bug).")
        return look.influence

    def effect(self, style: str, band: str) -> tuple[str, ...]:
        """The alternative effect clauses of ``style`` for an intensity ``band``."""
        return tuple(self.influence(style).effect[band])

    def schedule(self, s: float, style: str = DEFAULT_STYLE) -> dict[str, float]:
        """Parameters at intensity ``s`` in ``style`` (rounded to 6 significant digits)."""
        return self.look(style).schedule(s)

    def schedule_summary(self, style: str = DEFAULT_STYLE) -> str:
        return self.look(style).schedule_summary()

    def info(self) -> dict:
        """Name, stage, aliases, the default style's fields, and every style under ``styles``."""
        base = self.look()
        return {
            "name": self.name,
            "stage": self.stage,
            "aliases": list(self.aliases),
            "style": base.style,
            "random": base.random,
            "description": base.description,
            "parameters": base.info()["parameters"],
            "styles": {st: self.looks[st].info() for st in self.styles},
        }


_REGISTRY: dict[str, Degradation] = {}
_ALIASES: dict[str, str] = {}


def normalize_name(name: str) -> str:
    """Lower-case, ``_``/``-`` to spaces, whitespace collapsed: ``"Mean-Shift"`` → ``"mean shift"``."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", str(name))).strip().lower()


def register(
    name: str,
    *,
    stage: str,
    style: str,
    params: Mapping[str, Param],
    aliases: tuple[str, ...] = (),
    random: bool = True,
    scale_invariant: bool = True,
    description: str = "",
    influence: Influence | None = None,
) -> Callable[[Op], Op]:
    """Decorator used by the stage modules to add one style of a degradation to the catalogue."""
    if stage not in STAGES:
        raise ValueError(f"register({name!r}): unknown stage {stage!r}; use one of {STAGES}.")
    if style not in RENDER_STYLES:
        raise ValueError(f"register({name!r}): unknown style {style!r}; use one of {RENDER_STYLES}.")

    def deco(fn: Op) -> Op:
        look = Look(
            style=style,
            op=fn,
            params=dict(params),
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
            influence=influence,
            random=random,
            scale_invariant=scale_invariant,
        )
        key = normalize_name(name)
        old = _REGISTRY.get(name)
        if old is None:
            if key in _ALIASES:
                raise ValueError(f"register({name!r}): name already taken by {_ALIASES[key]!r}.")
            entry = Degradation(name=name, stage=stage, aliases=tuple(aliases), looks={style: look})
        else:
            if old.stage != stage:
                raise ValueError(f"register({name!r}): stage {stage!r} differs from {old.stage!r}.")
            if style in old.looks:
                raise ValueError(f"register({name!r}): style {style!r} registered twice.")
            merged = old.aliases + tuple(a for a in aliases if a not in old.aliases)
            entry = Degradation(name=name, stage=stage, aliases=merged, looks={**old.looks, style: look})
        for alias in (name, *aliases):
            a = normalize_name(alias)
            if a in _ALIASES and _ALIASES[a] != name:
                raise ValueError(f"register({name!r}): alias {alias!r} already names {_ALIASES[a]!r}.")
        _REGISTRY[name] = entry
        for alias in (name, *aliases):
            _ALIASES[normalize_name(alias)] = name
        return fn

    return deco


def canonical_name(name: str) -> str | None:
    """The canonical name for a name or alias (any case, ``_``/``-``/spaces), or ``None``."""
    return _ALIASES.get(normalize_name(name))


def get(name: str) -> Degradation:
    """The catalogue entry for ``name`` (canonical name or alias). Unknown names raise ValueError."""
    canon = _ALIASES.get(normalize_name(name)) if isinstance(name, str) else None
    if canon is None:
        close = difflib.get_close_matches(normalize_name(str(name)), list(_ALIASES), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(_ALIASES[c]) for c in close)}?" if close else ""
        raise ValueError(
            f"unknown degradation {name!r}.{hint} Run `robust-r1 degradations` for the catalogue."
        )
    return _REGISTRY[canon]


def catalogue() -> list[Degradation]:
    """All degradations, grouped by stage in the paper's stage order."""
    order = {n: i for i, n in enumerate(_REGISTRY)}
    return sorted(_REGISTRY.values(), key=lambda d: (STAGES.index(d.stage), order[d.name]))


def names() -> list[str]:
    return [d.name for d in catalogue()]


def alias_table() -> dict[str, str]:
    """Every accepted spelling (normalised) → canonical name."""
    return dict(_ALIASES)


def check_intensity(intensity: object, name: str) -> float:
    """Validate an intensity: a real number in [0, 1]. Raises ValueError naming the op and value."""
    if isinstance(intensity, bool) or not isinstance(intensity, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: intensity must be a number in [0, 1], got {intensity!r}.")
    s = float(intensity)
    if math.isnan(s) or s < 0.0 or s > 1.0:
        raise ValueError(f"{name}: intensity must be in [0, 1], got {intensity!r}.")
    return s
