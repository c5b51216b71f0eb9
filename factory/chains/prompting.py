"""Prompt templates (``prompts/*.j2``), the model-facing instruction and the length target.

Templates are rendered in a sandboxed Jinja environment with ``StrictUndefined`` (a missing
variable is an error, never an empty string; a template cannot reach Python internals).
``prompts_dir`` lets users point at their own copies (``--prompts DIR``); a template missing
there falls back to the bundled one. Compiled templates are cached; :func:`reload_prompts`
(called at the start of every batch) picks up edited files.

Variables every step template receives: ``question`` (with the options for multiple choice),
``choices``, ``answer`` (option index or answer), ``answer_text``, ``degradations`` (list of
``name``, ``stage``, ``intensity``, ``description``), ``degradation_list`` (``"lens blur (0.31),
…"``), ``total_intensity``, ``target_words`` and ``vision`` (images attached); plus
``influence`` (reasoning, conclusion, length_scaling), ``reasoning`` (conclusion,
length_scaling), ``min_words``, ``max_words``, ``longer`` (length_scaling).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import prompts as _bundled
from factory.errors import ConfigError

STEP_TEMPLATES = ("system", "influence", "reasoning", "conclusion", "length_scaling", "instruction")
"""The templates the writer renders (``<name>.j2``)."""


@functools.lru_cache(maxsize=16)
def _env(prompts_dir: str | None):
    from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    loaders = []
    if prompts_dir:
        p = Path(prompts_dir)
        if not p.is_dir():
            fix = f"copy {_bundled.path()} and edit the copies"
            raise ConfigError("prompts_dir", "no such folder", value=prompts_dir, fix=fix)
        loaders.append(FileSystemLoader(str(p)))
    loaders.append(FileSystemLoader(str(_bundled.path())))
    return SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
        auto_reload=False,  # no stat() per render; reload_prompts() refreshes
    )


def reload_prompts() -> None:
    """Forget compiled templates, so edited ``*.j2`` files are read again."""
    _env.cache_clear()


def render_prompt(name: str, prompts_dir: str | Path | None = None, *, strip: bool = True, **context: Any) -> str:
    """Render ``prompts/<name>.j2`` with ``context``; errors name the template and the problem.
    Surrounding whitespace is stripped unless ``strip=False`` (a prompt kept byte for byte)."""
    from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError
    from jinja2.exceptions import SecurityError

    env = _env(str(prompts_dir) if prompts_dir else None)
    try:
        text = env.get_template(f"{name}.j2").render(**context)
        return text.strip() if strip else text
    except TemplateNotFound:
        looked = f"{prompts_dir or '-'} and {_bundled.path()}"
        raise ValueError(f"prompt template {name}.j2 not found (looked in {looked}).") from None
    except UndefinedError as exc:
        raise ValueError(
            f"prompt template {name}.j2: {exc}; the template uses a variable the writer does not provide."
        ) from None
    except TemplateSyntaxError as exc:
        raise ValueError(f"prompt template {exc.filename or name + '.j2'}, line {exc.lineno}: {exc.message}.") from None
    except SecurityError as exc:
        raise ValueError(f"prompt template {name}.j2: {exc} (templates run sandboxed).") from None


def format_question(question: str, choices: Sequence[str] = ()) -> str:
    """The question as shown to the model: for multiple choice the options follow as ``0. x 1. y``."""
    q = " ".join(str(question).split())
    if not choices:
        return q
    return q + " " + " ".join(f"{i}. {' '.join(str(c).split())}" for i, c in enumerate(choices))


def build_prompt(question: str, choices: Sequence[str] = (), prompts_dir: str | Path | None = None) -> str:
    """The dataset's ``prompt`` column: the question (with options) + the Robust-R1 instruction."""
    return render_prompt("instruction", prompts_dir, question=format_question(question, choices), choices=list(choices))


@dataclass(frozen=True)
class LengthScale:
    """How long the reasoning is: ``clamp(base + per_unit × total_intensity, lo, hi)`` words.

    Heavier damage keeps a longer chain (the paper's length scaling; len(Y) grows with E[Σ s_i]).
    :data:`LENGTH` holds the defaults that ``ChainConfig``, :func:`target_words`, the report and
    the card all use.
    """

    base: float = 25.0
    per_unit: float = 30.0
    lo: int = 25
    hi: int = 200

    def settings(self) -> dict[str, float]:
        """As ``ChainConfig`` fields (``length_base``, ``length_per_unit``, ``length_min``, ``length_max``)."""
        return {
            "length_base": self.base,
            "length_per_unit": self.per_unit,
            "length_min": self.lo,
            "length_max": self.hi,
        }

    def updated(self, settings: Mapping[str, Any] | None) -> LengthScale:
        """These defaults overridden by the numeric ``length_*`` values of ``settings`` (a chain
        config as recorded in ``build.json``); anything else is ignored."""
        s = {k: v for k, v in (settings or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return LengthScale(
            s.get("length_base", self.base), s.get("length_per_unit", self.per_unit),
            s.get("length_min", self.lo), s.get("length_max", self.hi),
        )  # fmt: skip


LENGTH = LengthScale()
"""The default length scaling (25 + 30 words per unit of total intensity, 25 to 200 words)."""


def target_words(
    total_intensity: float, *, base: float = LENGTH.base, per_unit: float = LENGTH.per_unit, lo: int = LENGTH.lo,
    hi: int = LENGTH.hi,
) -> int:
    """Reasoning length the chain is scaled to: ``clamp(base + per_unit × total_intensity, lo, hi)``.

    Heavier damage keeps a longer chain (the paper's length scaling; len(Y) grows with E[Σ s_i]).
    """
    t = float(total_intensity)
    if t != t or t < 0:
        raise ValueError(f"target_words: total intensity must be a non-negative number, got {total_intensity!r}.")
    return int(round(min(hi, max(lo, base + per_unit * t))))
