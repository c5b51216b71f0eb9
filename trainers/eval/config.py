"""What one evaluation run is: :class:`EvalConfig`, and the intensity levels it asks at."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from factory.degrade import DEFAULT_STYLE, EVAL_LEVELS
from factory.errors import ConfigError

__all__ = [
    "DEFAULT_LEVELS",
    "LEVEL_NAMES",
    "PROMPTS",
    "PROMPT_KINDS",
    "QWEN_MAX_PIXELS",
    "RUN_KEYS",
    "EvalConfig",
    "PromptKind",
    "level_name",
    "parse_levels",
]

QWEN_MAX_PIXELS = 12845056
"""The stock Qwen2.5-VL processor's ``max_pixels`` (``preprocessor_config.json``; 16384 × 28 × 28):
what a model sees when nobody passes a budget (the reference ``demo.py`` passes none)."""


@dataclass(frozen=True)
class PromptKind:
    """How a prompt kind shows a question and how its answers are read.

    ``template`` is a ``prompts/*.j2`` file (rendered with ``question``, ``choices`` and
    ``letters``; ``robust`` goes through :func:`factory.chains.prompting.build_prompt`);
    ``labels`` (``index`` / ``letter``, :data:`factory.chains.answers.LABELS`) is how the template
    labels the options, so how a bare number in an answer is read; ``image_first`` the order of
    image and text in the user turn; ``max_pixels`` the image budget its models expect (``None``:
    the training budget, :data:`trainers.presets.DEFAULT_MAX_PIXELS`)."""

    name: str
    template: str
    labels: str
    image_first: bool = True
    max_pixels: int | None = None
    about: str = ""


PROMPTS: dict[str, PromptKind] = {
    "robust": PromptKind(
        "robust", "instruction", "index",
        about="the Robust-R1 instruction (prompts/instruction.j2): options as '0. x 1. y', TYPE ... ANSWER blocks",
    ),
    "plain": PromptKind(
        "plain", "plain", "letter",
        about="question, options as 'A. x' lines, 'Answer with the option's letter ...' (prompts/plain.j2)",
    ),
    "reference": PromptKind(
        "reference", "reference", "index", image_first=False, max_pixels=QWEN_MAX_PIXELS,
        about="the released Robust-R1 models' prompt (demo.py): options as '0. x' lines, text before the image",
    ),
}
"""The prompt kinds (``--prompt``); a new kind is one entry and one template."""
PROMPT_KINDS = tuple(PROMPTS)
DEFAULT_LEVELS: tuple[float, ...] = (0.0, *EVAL_LEVELS)
LEVEL_NAMES = {0.0: "clean", 0.23: "25%", 0.45: "50%", 0.9: "100%"}
LEVEL_ALIASES = {"low": 0.23, "mid": 0.45, "high": 0.9}
"""The level names of the published degraded benchmarks (MMD-Bench's LOW/MID/HIGH files, R-Bench's
strengths) on the same intensity axis."""
RUN_KEYS = (
    "model", "endpoint", "benchmark", "prompt", "seed", "only", "style", "max_new_tokens", "max_pixels", "temperature",
)
"""Settings a resumed run must share with the run that wrote the folder (a key the older folder's
``run.json`` lacks is not compared)."""

_LEVELS_FIX = (
    "use numbers in [0, 1] or clean / 25% / 50% / 100% (low / mid / high), e.g. levels=(0, 0.23, 0.45, 0.9) "
    "or --levels clean,0.23"
)


@dataclass
class EvalConfig:
    """One evaluation run. Every field has a documented default.

    Bad values raise :class:`factory.errors.ConfigError` naming the field (the CLI maps fields to
    its flags)."""

    model: str
    """A local model folder, a Hub id, a LoRA adapter folder, ``tiny`` (the test model), or with
    ``endpoint`` the model name the server serves."""
    out: str = "eval-output"
    benchmark: str = "demo"
    """A preset (a key of :data:`trainers.eval.benchmarks.PRESETS`: ``demo``, ``mmstar``, ...), a Hub id
    or a local file/folder."""
    split: str | None = None
    columns: str | dict[str, str] | None = None
    """Column mapping for a non-preset benchmark: ``image=img,question=q,choices=opts,answer=label``."""
    options: str | None = None
    """Options layout override: ``list``, ``columns[:A|B|C|D]`` or ``inline``."""
    answer_format: str | None = None
    """Answer format override: ``auto``, ``index``, ``letter`` or ``text``."""
    config_name: str | None = None
    """Hub configuration of the benchmark dataset."""
    endpoint: str | None = None
    """Base URL of an OpenAI-compatible server (``http://host:8000/v1``); key from OPENAI_API_KEY."""
    prompt: str = "robust"
    """A key of :data:`PROMPTS`: ``robust`` (the Robust-R1 instruction, TYPE … ANSWER), ``plain``
    (answer with the option's letter) or ``reference`` (the released models' own prompt)."""
    prompts_dir: str | None = None
    levels: tuple[float, ...] = DEFAULT_LEVELS
    """Intensities; 0 is the clean image."""
    seed: int = 0
    only: tuple[str, ...] | None = None
    """Draw the degradation from these names only (default: all 16)."""
    style: str = DEFAULT_STYLE
    """Degradation style of the degraded levels: ``reference`` (default: the look and strength of the
    reference code, so 25 / 50 / 100 % mean what the paper's columns mean), ``physical`` or ``mixed``."""
    limit: int | None = None
    batch_size: int = 8
    """Questions per generation batch (transformers)."""
    concurrency: int = 8
    """Requests in flight (endpoint)."""
    max_new_tokens: int = 1024
    max_pixels: int | None = None
    """Image budget (width × height) of what the model is shown, by transformers models and
    endpoints alike (the image is resized to fit, aspect kept). Default: the prompt kind's
    (:attr:`PromptKind.max_pixels`: the stock Qwen2.5-VL processor's for ``reference``), else the
    budget the model folder was trained with (its ``robust_r1_settings.json``), else 448 × 448."""
    temperature: float = 0.0
    """0: greedy decoding (the default; VLMEvalKit's Qwen2-VL wrapper decodes with top_k=1); above 0:
    sampling, seeded by ``seed`` (the reference demo.py samples at 0.6)."""
    backend: str = "auto"
    name: str | None = None
    """Label of the run in tables and plots (default: the model's name)."""
    judge_model: str | None = None
    """The LLM judge of answers a benchmark scores by judgement (R-Bench VQA / CAP, MM-Vet): a model
    name for the OpenAI-compatible chat backend (default: each judge's own, e.g. gpt-3.5-turbo for
    R-Bench, gpt-4-turbo for MM-Vet). Key from OPENAI_API_KEY."""
    judge_endpoint: str | None = None
    """Base URL of the judge's OpenAI-compatible server (default: OpenAI)."""
    judge_backend: str = "openai"
    """The chat backend of the judge (:func:`factory.chains.backends.open_chat`)."""
    judge_concurrency: int = 8
    """Judge requests in flight."""

    def __post_init__(self) -> None:
        if isinstance(self.levels, str):
            self.levels = parse_levels(self.levels)
        levels = [float(x) for x in self.levels]
        odd = [x for x in levels if x == x and abs(round(x, 2) - x) > 1e-9]
        if odd:
            raise ConfigError(
                "levels",
                f"{odd[0]!r}: intensities have two decimals (the engine rounds them)",
                value=odd[0],
                fix="use e.g. 0.23",
            )
        self.levels = tuple(sorted({round(x, 2) for x in levels}))
        if self.max_pixels is None and self.prompt in PROMPTS:  # else the runner reads the model's budget
            self.max_pixels = PROMPTS[self.prompt].max_pixels
        if isinstance(self.only, str):
            self.only = tuple(x.strip() for x in self.only.split(",") if x.strip())
        elif self.only is not None:
            self.only = tuple(self.only)

    def validate(self) -> None:
        from factory.degrade import check_intensity, check_seed, check_style, get

        if not self.model:
            raise ConfigError(
                "model", "name a model", fix="a folder, a Hub id, an adapter, or the served name with an endpoint"
            )
        if self.prompt not in PROMPT_KINDS:
            raise ConfigError(
                "prompt",
                f"unknown prompt kind {self.prompt!r}",
                value=self.prompt,
                fix=f"use one of {', '.join(PROMPTS)} (--prompt on the command line)",
            )
        if not self.levels:
            raise ConfigError("levels", "give at least one intensity", value=self.levels, fix=_LEVELS_FIX)
        for x in self.levels:
            try:
                check_intensity(x, "levels")
            except ValueError:
                raise ConfigError("levels", f"intensity {x!r} is outside [0, 1]", value=x, fix=_LEVELS_FIX) from None
        try:
            check_seed(self.seed, "seed")
        except ValueError:
            raise ConfigError("seed", f"must be a non-negative integer, got {self.seed!r}", value=self.seed) from None
        self.style = check_style(self.style)
        for n in self.only or ():
            try:
                get(n)
            except ValueError as exc:  # names the unknown degradation and the closest names
                raise ConfigError("only", str(exc), value=n) from None
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 2:
            raise ConfigError("temperature", f"must be a number in [0, 2], got {t!r}", value=t,
                              fix="0 for greedy decoding (the default), e.g. 0.6 to sample like the reference demo")
        for field_name in ("batch_size", "concurrency", "max_new_tokens", "max_pixels", "judge_concurrency"):
            v = getattr(self, field_name)
            if v is None and field_name == "max_pixels":  # resolved by the runner from the model folder
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(field_name, f"must be a number >= 1, got {v!r}", value=v)
        if self.limit is not None and (isinstance(self.limit, bool) or self.limit < 0):
            raise ConfigError("limit", f"must be a number >= 0, got {self.limit!r}", value=self.limit)

    @property
    def label(self) -> str:
        return self.name or Path(self.model.rstrip("/")).name or self.model

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["levels"] = list(self.levels)
        d["only"] = list(self.only) if self.only else None
        return d


def parse_levels(text: str | Iterable[Any]) -> tuple[float, ...]:
    """``"clean,0.23,0.45,0.9"`` (``clean`` = 0; ``25%`` = ``low`` = 0.23, ``50%`` = ``mid`` = 0.45,
    ``100%`` = ``high`` = 0.9)."""
    names = {**{v: k for k, v in LEVEL_NAMES.items()}, **LEVEL_ALIASES}
    items = text.split(",") if isinstance(text, str) else list(text)
    out = []
    for item in items:
        s = str(item).strip().lower()
        if not s:
            continue
        if s in names:
            out.append(names[s])
            continue
        try:
            out.append(float(s))
        except ValueError:
            raise ConfigError("levels", f"{item!r} is not an intensity", value=item, fix=_LEVELS_FIX) from None
    return tuple(out)


def level_name(level: float) -> str:
    return LEVEL_NAMES.get(round(level, 2), f"{level:.2f}")
