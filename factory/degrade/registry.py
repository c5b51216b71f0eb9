"""The catalogue of degradations: names, aliases, stages, parameter tables and pixel operations.

Every degradation is registered once, by its stage module, with

* ``name``: the canonical name, the one the released Robust-R1 model writes in ``<TYPE>``;
* ``aliases``: other spellings accepted when parsing (the paper's names among them);
* ``stage``: one of :data:`STAGES`;
* ``params``: an explicit table ``parameter -> (value at intensity 0, value at intensity 1,
  curve exponent, unit)``. ``schedule(s)`` evaluates the table; geometric sizes are fractions of
  the image's short side, so one intensity looks alike at any resolution;
* ``op(img, s, params, rng)``: the pixel operation on an RGB uint8 array. ``rng`` is a
  ``numpy.random.Generator``; every op draws the same random numbers whatever the intensity
  (randomness is drawn once per image and only *scaled* by the intensity), so renders of one
  image at several intensities are nested.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

STAGES: tuple[str, ...] = ("acquisition", "transmission", "environment", "post-processing")
"""The paper's four stages, in the paper's order."""

APPLY_ORDER: tuple[str, ...] = ("acquisition", "environment", "post-processing", "transmission")
"""The order in which stages are applied by recipes: the camera and its optics first, then what
the scene and sensor add (darkness, turbulence, noise, colour bleeding), then editing
(sharpening, graffiti, watermarks), and transmission (compression, block errors, scan lines)
last, because an image is sent after it is made."""

Op = Callable[[np.ndarray, float, dict, np.random.Generator], np.ndarray]


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
class Degradation:
    """A catalogue entry. Call :func:`factory.degrade.apply` rather than ``op`` directly."""

    name: str
    stage: str
    op: Op = field(repr=False)
    params: Mapping[str, Param] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    random: bool = True
    scale_invariant: bool = True
    description: str = ""

    def schedule(self, s: float) -> dict[str, float]:
        """Physical parameters at intensity ``s`` (rounded to 6 significant digits)."""
        return {k: float(f"{p.at(s):.6g}") for k, p in self.params.items()}

    def schedule_summary(self) -> str:
        return "; ".join(f"{k}: {p.describe()}" for k, p in self.params.items())

    def info(self) -> dict:
        return {
            "name": self.name,
            "stage": self.stage,
            "aliases": list(self.aliases),
            "random": self.random,
            "description": self.description,
            "parameters": {
                k: {"at_0": p.start, "at_1": p.end, "curve": p.curve, "unit": p.unit}
                for k, p in self.params.items()
            },
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
    params: Mapping[str, Param],
    aliases: tuple[str, ...] = (),
    random: bool = True,
    scale_invariant: bool = True,
    description: str = "",
) -> Callable[[Op], Op]:
    """Decorator used by the stage modules to add an op to the catalogue."""
    if stage not in STAGES:
        raise ValueError(f"register({name!r}): unknown stage {stage!r}; use one of {STAGES}.")

    def deco(fn: Op) -> Op:
        entry = Degradation(
            name=name,
            stage=stage,
            op=fn,
            params=dict(params),
            aliases=tuple(aliases),
            random=random,
            scale_invariant=scale_invariant,
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
        )
        key = normalize_name(name)
        if key in _ALIASES:
            raise ValueError(f"register({name!r}): name already taken by {_ALIASES[key]!r}.")
        _REGISTRY[name] = entry
        for alias in (name, *aliases):
            a = normalize_name(alias)
            if a in _ALIASES and _ALIASES[a] != name:
                raise ValueError(f"register({name!r}): alias {alias!r} already names {_ALIASES[a]!r}.")
            _ALIASES[a] = name
        return fn

    return deco


def _ensure_loaded() -> None:
    if not _REGISTRY:
        from . import acquisition, environment, postprocessing, transmission  # noqa: F401


def canonical_name(name: str) -> str | None:
    """The canonical name for a name or alias (any case, ``_``/``-``/spaces), or ``None``."""
    _ensure_loaded()
    return _ALIASES.get(normalize_name(name))


def get(name: str) -> Degradation:
    """The catalogue entry for ``name`` (canonical name or alias). Unknown names raise ValueError."""
    _ensure_loaded()
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
    _ensure_loaded()
    return sorted(_REGISTRY.values(), key=lambda d: (STAGES.index(d.stage), _order(d.name)))


def _order(name: str) -> int:
    return list(_REGISTRY).index(name)


def names() -> list[str]:
    return [d.name for d in catalogue()]


def alias_table() -> dict[str, str]:
    """Every accepted spelling (normalised) → canonical name."""
    _ensure_loaded()
    return dict(_ALIASES)


def check_intensity(intensity: object, name: str) -> float:
    """Validate an intensity: a real number in [0, 1]. Raises ValueError naming the op and value."""
    if isinstance(intensity, bool) or not isinstance(intensity, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: intensity must be a number in [0, 1], got {intensity!r}.")
    s = float(intensity)
    if math.isnan(s) or s < 0.0 or s > 1.0:
        raise ValueError(f"{name}: intensity must be in [0, 1], got {intensity!r}.")
    return s
