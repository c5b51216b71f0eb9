"""What a build is told (:class:`BuildConfig`) and what it reports back (:class:`BuildSummary`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from factory.degrade.recipes import TrainRecipeConfig
from factory.degrade.registry import DEFAULT_STYLE, check_style
from factory.errors import ConfigError
from factory.layout import CARD, DEFAULT_SFT_FRACTION, ERRORS, REPORT, SPLIT_DIRS
from factory.secrets import redact_url

IMAGE_FORMATS: dict[str, str] = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
"""Image encodings of the dataset → the file suffix stored with the image bytes."""


def _default_chain():
    from factory.chains.writer import ChainConfig

    return ChainConfig()


def parse_limit(text: str | None) -> int | dict[str, int] | None:
    """``"100"`` → 100; ``"train=10000,validation=1000"`` → a dict per split."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    try:
        if "=" not in text:
            return int(text)
        out = {}
        for item in text.split(","):
            k, v = (x.strip() for x in item.split("=", 1))
            from factory.sources import normalize_split

            out[normalize_split(k)] = int(v)
        return out
    except ValueError:
        raise ConfigError("limit", "give a number, or train=N,validation=M.", value=text) from None


@dataclass
class BuildConfig:
    """Everything a build needs. The defaults build the demo dataset with the template backend."""

    source: Any = "demo"
    """``demo``, ``aokvqa``, a local path, a Hub repo id, or a source object (see factory.sources)."""
    out: str = "dataset"
    """Output folder (a Hub dataset repo layout)."""
    splits: tuple[str, ...] | None = None
    """Source splits to build (``train``, ``validation``); None = both, where the source has them."""
    limit: int | dict[str, int] | None = None
    """At most this many samples per split (the first ones, in source order); a dict sets it per
    split, e.g. ``{"train": 10000, "validation": 1000}`` (the paper's sizes)."""
    seed: int = 0
    """Base seed: recipes and the sft/rl assignment derive from (seed, sample id)."""
    workers: int = 1
    """Processes that load and degrade images (1 = in this process). Results do not depend on it."""
    sft_fraction: float = DEFAULT_SFT_FRACTION
    """Share of train samples in the ``sft`` config; the rest go to ``rl``."""
    keep_clean: bool = False
    """Also store the pristine image (column ``clean_image``)."""
    image_format: str = "png"
    """``png`` (lossless, fast encoder; default), ``webp`` (lossless, ~20 % smaller, slower) or
    ``jpeg`` (quality 95, ~4× smaller, but re-encoding alters the degradations slightly)."""
    shard_size: int = 1000
    """Samples per chunk: the unit of resume, and one shard per config per chunk."""
    row_group_size: int = 64
    """Rows per parquet row group (and the most rows held per config before a flush)."""
    columns: dict[str, str] | None = None
    """Column mapping for other datasets: ``{"image": "img", "question": "q", ...}``."""
    recipe: TrainRecipeConfig = field(default_factory=TrainRecipeConfig)
    style: str = DEFAULT_STYLE
    """Degradation style: ``reference`` (the look of the paper's data; default), ``physical`` or
    ``mixed`` (one drawn per degradation from the seed); see docs/degradations.md."""
    chain: Any = field(default_factory=_default_chain)
    """A ``factory.chains.writer.ChainConfig`` (backend, model, base_url, concurrency, cache, ...)."""
    command: str | None = None
    """The command recorded in build.json and the card (the CLI sets it; default: the API call)."""
    report: bool = True
    """At the end, write report/ (factory.report) and the card README.md (factory.card)."""

    def __post_init__(self) -> None:
        if isinstance(self.splits, str):
            self.splits = (self.splits,)
        if self.splits is not None:
            from factory.sources import normalize_split

            self.splits = tuple(dict.fromkeys(normalize_split(s) for s in self.splits))
        if isinstance(self.limit, str):
            self.limit = parse_limit(self.limit)
        if self.columns is not None and not isinstance(self.columns, dict):
            from factory.sources import parse_columns

            self.columns = parse_columns(self.columns)

    def validate(self) -> None:
        """Raise :class:`factory.errors.ConfigError` naming the first unusable field."""
        if isinstance(self.sft_fraction, bool) or not 0.0 <= float(self.sft_fraction) <= 1.0:
            raise ConfigError("sft_fraction", "must be in [0, 1].", value=self.sft_fraction)
        if self.image_format not in IMAGE_FORMATS:
            raise ConfigError("image_format", "use png, jpeg or webp.", value=self.image_format)
        for s in self.splits or ():
            if s not in SPLIT_DIRS:
                raise ConfigError("splits", "use train and/or validation.", value=s)
        if self.workers < 1:
            raise ConfigError("workers", "must be >= 1.", value=self.workers)
        if self.shard_size < 1:
            raise ConfigError("shard_size", "must be >= 1.", value=self.shard_size)
        if self.row_group_size < 1:
            raise ConfigError("row_group_size", "must be >= 1.", value=self.row_group_size)
        limits = self.limit.values() if isinstance(self.limit, dict) else [self.limit]
        if any(x is not None and (isinstance(x, bool) or not isinstance(x, int) or x < 0) for x in limits):
            raise ConfigError("limit", "must be a number >= 0 (or train=N,validation=M).", value=self.limit)
        if isinstance(self.limit, dict) and set(self.limit) - set(SPLIT_DIRS):
            raise ConfigError("limit", "limits apply to the splits train and validation.", value=self.limit)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError("seed", "must be a non-negative integer.", value=self.seed)
        self.style = check_style(self.style)
        self.recipe.validate()
        self.chain.validate()

    def limit_for(self, split: str) -> int | None:
        return self.limit.get(split) if isinstance(self.limit, dict) else self.limit


def _jsonable(settings: dict[str, Any]) -> dict[str, Any]:
    """Chain settings as plain JSON values, the server URL without credentials."""
    settings = dict(settings)
    settings.pop("api_key", None)
    settings["base_url"] = redact_url(settings.get("base_url"))
    return json.loads(json.dumps(settings, default=str))


def chain_settings(chain) -> dict[str, Any]:
    """Every setting of a ``ChainConfig``, without secrets (what ``api_command`` shows)."""
    return _jsonable(asdict(chain))


def chain_key(chain) -> dict[str, Any]:
    """The settings of a ``ChainConfig`` that change the written text (``ChainConfig.fingerprint``),
    without secrets: the resume key and build.json's ``chain``."""
    return _jsonable(chain.fingerprint())


def api_command(cfg: BuildConfig) -> str:
    """``factory.build.build(BuildConfig(...))`` with the settings that differ from the defaults."""
    default = BuildConfig()
    parts = []
    for f in fields(cfg):
        if f.name in ("command", "chain", "recipe", "report"):
            continue
        v = getattr(cfg, f.name)
        if v != getattr(default, f.name):
            plain = isinstance(v, (str, int, float, bool, tuple, dict, type(None)))
            parts.append(f"{f.name}={v!r}" if plain else f"{f.name}=<{type(v).__name__}>")
    if cfg.recipe != default.recipe:
        parts.append(f"recipe={cfg.recipe!r}")
    defaults = chain_settings(default.chain)
    chain = {k: v for k, v in chain_settings(cfg.chain).items() if v != defaults.get(k)}
    if chain:
        parts.append("chain=ChainConfig(" + ", ".join(f"{k}={v!r}" for k, v in chain.items()) + ")")
    return f"factory.build.build(BuildConfig({', '.join(parts)}))"


@dataclass
class BuildSummary:
    """What a build produced."""

    out: Path
    counts: dict[str, int]
    """Rows per folder: ``{"sft": n, "rl": n, "validation": n}``."""
    errors: int
    seconds: float
    processed: int
    """Samples processed by this call (chunks resumed from disk are not counted)."""
    samples_per_s: float
    """Samples processed per second of the build proper (report and card excluded)."""
    error_stages: dict[str, int] = field(default_factory=dict)
    report_seconds: float = 0.0
    """Time spent on report/ and the card."""
    retry: int = 0
    """Samples whose chain failed because the LLM service did (an outage, a wrong key): listed in
    errors.jsonl with ``"retry": true`` and retried by the next run of the same build."""
    retry_reason: str | None = None
    """The reason of the first of them (redacted), e.g. the server's 401 message."""

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    @property
    def card(self) -> Path:
        return self.out / CARD

    @property
    def report_dir(self) -> Path:
        return self.out / REPORT

    def publish_command(self) -> str:
        return f"robust-r1 publish {self.out} --repo-id USER/NAME"

    def lines(self) -> list[str]:
        """The end-of-build summary: where everything is and how to publish it."""
        errs = f"errors: {self.errors}"
        if self.errors:
            stages = ", ".join(f"{k} {v}" for k, v in self.error_stages.items() if v)
            errs += f" ({stages}; see {self.out / ERRORS})"
        out = [
            f"dataset: {self.out} (" + ", ".join(f"{k} {v}" for k, v in self.counts.items()) + " rows)",
            errs,
            f"time: {self.seconds:.1f} s: {self.processed} samples processed ({self.samples_per_s:.1f} samples/s)"
            + (f", report and card {self.report_seconds:.1f} s" if self.report_seconds else ""),
        ]
        if self.retry:
            out.append(
                f"incomplete: {self.retry} sample(s) failed because the LLM service did ({self.retry_reason}); "
                "fix the service (key, URL, server) and run the same command again to retry them."
            )
        if self.card.exists():
            out.append(f"card: {self.card}")
        if self.report_dir.exists():
            out.append(f"plots: {self.report_dir}")
        out.append(f"publish with: {self.publish_command()}")
        return out
