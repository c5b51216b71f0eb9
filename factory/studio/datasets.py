"""Open a built dataset (a folder or a Hub id), filter its rows, read one row with its image.

Only the text columns are read into memory (polars, lazily from the parquet shards); a row's
image is read and decoded when that row is shown. A Hub dataset is downloaded into the work
folder (``WORKDIR/hub/datasets/<id>``), never into a global cache.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factory.chains.format import FIELDS, parse_chain

from .common import StudioError, Workdir, slug

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import polars as pl

CONFIGS = ("sft", "rl", "validation")
IMAGE_COLUMNS = ("image", "clean_image")
REQUIRED = ("id", "degradations", "total_intensity")
TABLE_COLUMNS = ("config", "id", "total_intensity", "n", "type", "question")
TABLE_LIMIT = 500
"""Rows listed in the table at most (the count says how many match)."""
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
HUB_PATTERNS = ["data/**", "README.md", "build.json", "errors.jsonl", "report/*"]


def is_hub_id(spec: str) -> bool:
    return bool(HUB_ID.fullmatch(spec)) and not Path(spec).exists()


def download(spec: str, workdir: Workdir, progress: Callable[[float, str], Any] | None = None) -> Path:
    """Download the Hub dataset ``spec`` (its data, card and report) into the work folder."""
    from huggingface_hub import snapshot_download

    dest = workdir.path("hub", "datasets", slug(spec.replace("/", "--"), 120))
    if progress is not None:
        progress(0.05, f"downloading {spec} from the Hub into {dest}")
    try:
        snapshot_download(repo_id=spec, repo_type="dataset", local_dir=str(dest), allow_patterns=HUB_PATTERNS)
    except Exception as exc:  # noqa: BLE001 - network, auth, missing repo: all shown in the page
        raise StudioError(
            f"dataset {spec}: could not download it from the Hugging Face Hub "
            f"({type(exc).__name__}: {str(exc)[:300]}); "
            "check the id, the network, and HF_TOKEN for a private dataset, or give a local folder."
        ) from None
    return dest


def _strip_options(question: str, choices: Sequence[str]) -> str:
    """The question without the ``0. x 1. y`` suffix the dataset appends for multiple choice."""
    from factory.chains.prompting import format_question

    q = " ".join(str(question or "").split())
    if choices:
        suffix = format_question("", list(choices)).strip()
        if suffix and q.endswith(suffix):
            return q[: -len(suffix)].strip()
    return q


@dataclass
class DatasetView:
    """The rows of one dataset folder (text columns only) and where its shards and plots are."""

    path: Path
    label: str
    frame: pl.DataFrame
    files: dict[str, list[Path]]
    manifest: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, folder: str | Path, label: str | None = None) -> DatasetView:
        import polars as pl

        ds = Path(folder)
        if not ds.is_dir():
            raise StudioError(
                f"dataset {folder}: no such folder; give a folder written by `robust-r1 build` or a Hub id (user/name)."
            )
        files = {
            c: sorted(p for p in (ds / "data" / c).glob("*.parquet") if not p.name.startswith(".")) for c in CONFIGS
        }
        files = {c: v for c, v in files.items() if v}
        if not files:
            raise StudioError(
                f"dataset {ds}: no parquet files under data/sft, data/rl or data/validation; "
                "give a folder written by `robust-r1 build` (try the demo: `robust-r1 demo`)."
            )
        frames = []
        for cfg, paths in files.items():
            try:
                lf = pl.scan_parquet([str(p) for p in paths])
                have = lf.collect_schema().names()
            except Exception as exc:  # noqa: BLE001 - a broken shard is named in the page
                raise StudioError(
                    f"dataset {ds}/data/{cfg}: unreadable parquet ({type(exc).__name__}: {exc})."
                ) from None
            missing = [c for c in REQUIRED if c not in have]
            if missing:
                raise StudioError(
                    f"dataset {ds}/data/{cfg}: missing column(s) {', '.join(missing)}; is it a robust-r1 dataset?"
                )
            cols = [pl.col(c) for c in have if c not in IMAGE_COLUMNS]
            frames.append(lf.select(cols).with_columns(pl.lit(cfg).alias("config")))
        try:
            df = pl.concat(frames, how="diagonal_relaxed").collect()
        except Exception as exc:  # noqa: BLE001
            raise StudioError(f"dataset {ds}: the shards do not fit together ({type(exc).__name__}: {exc}).") from None
        for c, dtype in (("question", pl.String), ("type", pl.String), ("solution", pl.String)):
            if c not in df.columns:
                df = df.with_columns(pl.lit(None, dtype=dtype).alias(c))
        df = df.with_columns(
            pl.col("total_intensity").cast(pl.Float64),
            pl.col("degradations").list.eval(pl.element().struct.field("name")).alias("_names"),
            pl.col("degradations").list.eval(pl.element().struct.field("stage")).alias("_stages"),
            pl.col("degradations").list.len().fill_null(0).alias("n"),
        ).with_row_index("_row")
        manifest: dict[str, Any] = {}
        if (ds / "build.json").is_file():
            try:
                manifest = json.loads((ds / "build.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                manifest = {}
        return cls(path=ds, label=label or str(ds), frame=df, files=files, manifest=manifest)

    # ---------------------------------------------------------------- describing

    @property
    def degradations(self) -> list[str]:
        """Degradations present, in catalogue order."""
        from factory.degrade import names

        present = set(self.frame["_names"].explode().drop_nulls().to_list())
        known = [n for n in names() if n in present]
        return known + sorted(present - set(known))

    @property
    def stages(self) -> list[str]:
        from factory.degrade import STAGES

        present = set(self.frame["_stages"].explode().drop_nulls().to_list())
        return [s for s in STAGES if s in present] + sorted(present - set(STAGES))

    @property
    def configs(self) -> list[str]:
        return [c for c in CONFIGS if c in self.files]

    def intensity_range(self) -> tuple[float, float]:
        col = self.frame["total_intensity"].drop_nulls()
        if col.len() == 0:
            return 0.0, 0.0
        return float(col.min()), float(col.max())

    def summary_markdown(self) -> str:
        counts = self.frame.group_by("config").len()
        by = {r["config"]: r["len"] for r in counts.iter_rows(named=True)}
        lo, hi = self.intensity_range()
        parts = [
            f"**{self.label}**: {self.frame.height} rows ("
            + ", ".join(f"{c} {by.get(c, 0)}" for c in self.configs)
            + ")",
            f"total intensity {lo:.2f}–{hi:.2f}; {len(self.degradations)} degradations present",
        ]
        backend = self.manifest.get("backend")
        if backend:
            parts.append(f"chains: `{backend}`")
        command = self.manifest.get("command")
        if command:
            parts.append(f"built with `{command}`")
        return "  \n".join(parts)

    # ---------------------------------------------------------------- filtering

    def filter(
        self,
        *,
        degradations: Sequence[str] = (),
        stages: Sequence[str] = (),
        configs: Sequence[str] = (),
        min_total: float | None = None,
        max_total: float | None = None,
        text: str = "",
    ) -> pl.DataFrame:
        """Rows carrying every chosen degradation and a degradation of every chosen stage, in the
        chosen configs, with total intensity in ``[min_total, max_total]`` and ``text`` (case-insensitive)
        in the question, TYPE or id."""
        import polars as pl

        from factory.degrade import get

        expr = pl.lit(True)
        for name in degradations or ():
            expr = expr & pl.col("_names").list.contains(get(name).name)
        for st in stages or ():
            expr = expr & pl.col("_stages").list.contains(st)
        if configs:
            expr = expr & pl.col("config").is_in(list(configs))
        if min_total is not None:
            expr = expr & (pl.col("total_intensity") >= float(min_total) - 1e-9)
        if max_total is not None:
            expr = expr & (pl.col("total_intensity") <= float(max_total) + 1e-9)
        if text and text.strip():
            needle = text.strip().lower()
            expr = expr & (
                pl.col("question").fill_null("").str.to_lowercase().str.contains(needle, literal=True)
                | pl.col("type").fill_null("").str.to_lowercase().str.contains(needle, literal=True)
                | pl.col("id").str.to_lowercase().str.contains(needle, literal=True)
            )
        return self.frame.filter(expr)

    @staticmethod
    def table(rows: pl.DataFrame, limit: int = TABLE_LIMIT) -> Any:
        """The listing shown in the page (a pandas frame of :data:`TABLE_COLUMNS`)."""
        import polars as pl

        return (
            rows.head(limit)
            .select(
                pl.col("config"),
                pl.col("id"),
                pl.col("total_intensity").round(2),
                pl.col("n"),
                pl.col("type").fill_null(""),
                pl.col("question").fill_null("").str.slice(0, 90),
            )
            .to_pandas()
        )

    # ---------------------------------------------------------------- one row

    def row(self, config: str, sample_id: str) -> dict[str, Any]:
        """Every column of one row, the image decoded (RGB uint8), the chain parsed into its blocks."""
        import polars as pl

        match = self.frame.filter((pl.col("config") == config) & (pl.col("id") == sample_id))
        if match.height == 0:
            raise StudioError(f"row {config}/{sample_id}: not in {self.label}.")
        rec = match.row(0, named=True)
        rec["image"] = self._image(config, sample_id)
        choices = [str(c) for c in (rec.get("choices") or [])]
        rec["choices"] = choices
        rec["question_text"] = _strip_options(rec.get("question") or "", choices)
        parsed = parse_chain(rec.get("solution") or "")
        blocks = {f: (rec.get(f) if rec.get(f) is not None else getattr(parsed, f)) for f in FIELDS}
        if blocks.get("answer") is None:
            blocks["answer"] = rec.get("answer")
        rec["blocks"] = blocks
        degs = []
        for d in rec.get("degradations") or []:
            try:
                params = json.loads(d.get("params") or "{}")
            except ValueError:
                params = {}
            degs.append(
                {"name": d.get("name"), "stage": d.get("stage"), "intensity": d.get("intensity"), "params": params}
            )
        rec["degradations"] = degs
        return rec

    def _image(self, config: str, sample_id: str) -> np.ndarray | None:
        import polars as pl

        from factory.degrade import to_rgb_uint8

        with self._lock:
            got = (
                pl.scan_parquet([str(p) for p in self.files[config]])
                .filter(pl.col("id") == sample_id)
                .select(pl.col("image"))
                .head(1)
                .collect()
            )
        if got.height == 0:
            return None
        cell = got["image"][0]
        data, rel = (cell.get("bytes"), cell.get("path")) if isinstance(cell, dict) else (cell, None)
        from PIL import Image

        try:
            if data:
                im = Image.open(io.BytesIO(data))
            elif rel and (self.path / rel).is_file():
                im = Image.open(self.path / rel)
            else:
                return None
            return to_rgb_uint8(im)
        except Exception as exc:  # noqa: BLE001 - a broken image is named, the app goes on
            raise StudioError(
                f"row {config}/{sample_id}: the image cannot be decoded ({type(exc).__name__}: {exc})."
            ) from None

    # ---------------------------------------------------------------- report

    def report_dir(self) -> Path | None:
        from factory.report import PLOTS

        d = self.path / "report"
        return d if all((d / p).is_file() for p in PLOTS) else None


def report_images(folder: Path) -> list[tuple[str, str]]:
    from factory.report import PLOTS

    return [(str(folder / p), p[:-4].replace("_", " ")) for p in PLOTS if (folder / p).is_file()]


def report_summary(folder: Path) -> str:
    """``summary.md`` without its image links (the plots are shown beside it)."""
    p = folder / "summary.md"
    if not p.is_file():
        return ""
    lines = [ln for ln in p.read_text(encoding="utf-8").splitlines() if not ln.startswith("![")]
    return "\n".join(lines).strip()


class DatasetCache:
    """Opened datasets, shared by every browser session (re-read when a shard changes)."""

    def __init__(self, workdir: Workdir):
        self.workdir = workdir
        self._views: dict[str, tuple[tuple, DatasetView]] = {}
        self._lock = threading.Lock()

    def resolve(self, spec: str, progress: Callable[[float, str], Any] | None = None) -> tuple[Path, str]:
        spec = str(spec or "").strip()
        if not spec:
            raise StudioError("dataset: give a folder written by `robust-r1 build` or a Hub id (user/name).")
        p = Path(spec).expanduser()
        if p.exists():
            return p.resolve(), spec
        if is_hub_id(spec):
            return download(spec, self.workdir, progress), spec
        raise StudioError(f"dataset {spec}: no such folder, and not a Hub id (user/name).")

    @staticmethod
    def _stamp(folder: Path) -> tuple:
        return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.glob("data/*/*.parquet")))

    def open(self, spec: str, progress: Callable[[float, str], Any] | None = None) -> DatasetView:
        folder, label = self.resolve(spec, progress)
        key = str(folder)
        stamp = self._stamp(folder) if folder.is_dir() else ()
        with self._lock:
            hit = self._views.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
        if progress is not None:
            progress(0.5, f"reading {label}")
        view = DatasetView.open(folder, label)
        with self._lock:
            self._views[key] = (stamp, view)
        return view

    def get(self, key: str | None) -> DatasetView:
        with self._lock:
            hit = self._views.get(str(key)) if key else None
        if hit is None:
            raise StudioError("no dataset is open: give a folder or Hub id and press Open.")
        return hit[1]
