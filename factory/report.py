"""Statistics and plots of a built dataset (polars + matplotlib); the dataset card embeds them.

``make_report(DIR)`` writes ``DIR/report/``:

- ``counts_by_degradation.png``: images carrying each of the 16 degradations (catalogue order,
  coloured by stage; a degradation never drawn shows as an empty bar);
- ``counts_by_stage.png``: degradations and images per stage;
- ``intensity_hist.png``: intensity of single degradations, total intensity per image,
  degradations per image;
- ``length_vs_intensity.png``: reasoning length and whole-chain length against the total
  intensity, with Spearman's ρ in the titles: the paper's claim that the chain grows with the
  damage, checked on our own data;
- ``gallery.png``: up to 12 degraded samples spread over the intensity range, each with its
  TYPE line;
- ``stats.json`` (every number above, machine-readable) and ``summary.md`` (the same for humans).

Only the columns a statistic needs are read (lazily, through ``polars.scan_parquet``); the image
column is touched only for the gallery's samples, and only those are decoded. Every file is
written to a temporary name and renamed into place, so a crash never leaves half a PNG.
"""

from __future__ import annotations

import io
import json
import logging
import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factory.chains.prompting import LENGTH
from factory.layout import DATA_DIRS, ERRORS, MANIFEST, REPORT, atomic_write, errors_by_stage, read_errors, shard_files

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

log = logging.getLogger("robust_r1.report")

PLOTS = (
    "counts_by_degradation.png", "counts_by_stage.png", "intensity_hist.png", "length_vs_intensity.png", "gallery.png",
)  # fmt: skip
STAGE_COLORS = {
    "acquisition": "#4c72b0", "transmission": "#dd8452", "environment": "#55a868", "post-processing": "#c44e52",
}  # fmt: skip
FRAME_COLUMNS = ("id", "degradations", "total_intensity", "type", "reasoning", "solution", "target_words", "backend")
"""The only columns the statistics read (never ``image``)."""


# ---------------------------------------------------------------- reading


def load_frame(dataset_dir: str | Path) -> pl.DataFrame:
    """One row per sample with the columns the report needs (plus ``config``); images not read."""
    import polars as pl

    ds = Path(dataset_dir)
    files = shard_files(ds)
    if not files:
        raise ValueError(
            f"{ds}: no parquet files under data/sft, data/rl or data/validation; "
            "pass a folder written by `robust-r1 build`."
        )
    frames = []
    for cfg, paths in files.items():
        lf = pl.scan_parquet([str(p) for p in paths])
        have = set(lf.collect_schema().names())
        missing = [c for c in ("id", "degradations", "total_intensity", "type", "reasoning") if c not in have]
        if missing:
            raise ValueError(f"{ds}/data/{cfg}: missing column(s) {', '.join(missing)}; is it a robust-r1 dataset?")
        cols = [pl.col(c) for c in FRAME_COLUMNS if c in have]
        cols += [pl.lit(None, dtype=pl.String).alias(c) for c in ("solution", "backend") if c not in have]
        if "target_words" not in have:
            cols.append(pl.lit(None, dtype=pl.Int32).alias("target_words"))
        frames.append(lf.select(cols).with_columns(pl.lit(cfg).alias("config")))
    df = pl.concat(frames, how="vertical_relaxed").collect()
    return df.with_columns(
        pl.col("total_intensity").cast(pl.Float64),
        pl.col("reasoning").fill_null("").str.count_matches(r"\S+").alias("reasoning_words"),
        pl.col("solution").fill_null("").str.count_matches(r"\S+").alias("solution_words"),
        pl.col("degradations").list.len().fill_null(0).alias("n_degradations"),
    )


# ---------------------------------------------------------------- statistics


def spearman(x: Any, y: Any) -> float:
    """Spearman's rank correlation (ties get average ranks); NaN when undefined (n < 3 or a constant)."""
    import warnings

    import numpy as np
    from scipy.stats import spearmanr

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(x, y).statistic)


def _summary(values: Any) -> dict[str, float]:
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"mean": float("nan"), "median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "min": float(v.min()), "max": float(v.max())}


def _errors(ds: Path) -> dict[str, Any]:
    records = read_errors(ds / ERRORS)
    return {"total": len(records), "by_stage": errors_by_stage(records)}


def _length_scale(ds: Path) -> dict[str, float]:
    """Length-scaling settings recorded in build.json (the chain writer's defaults otherwise)."""
    try:
        chain = json.loads((ds / MANIFEST).read_text()).get("chain")
    except (OSError, ValueError, AttributeError):
        chain = None
    return {k: float(v) for k, v in LENGTH.updated(chain if isinstance(chain, dict) else None).settings().items()}


def compute_stats(df: pl.DataFrame, ds: Path) -> dict[str, Any]:
    """Every number of the report, from the frame of :func:`load_frame`."""
    import numpy as np
    import polars as pl

    from factory import degrade

    catalogue = {e.name: e.stage for e in degrade.catalogue()}
    degs = (
        df.select("config", "id", pl.col("degradations"))
        .explode("degradations")
        .drop_nulls("degradations")
        .unnest("degradations")
        .with_columns(pl.col("intensity").cast(pl.Float64))
    )
    rows = {cfg: int((df["config"] == cfg).sum()) for cfg in DATA_DIRS if (df["config"] == cfg).any()}
    rows["total"] = int(df.height)

    per_name = degs.group_by("name").agg(
        pl.col("stage").first(),
        pl.col("id").n_unique().alias("images"),
        pl.len().alias("n"),
        pl.col("intensity").mean().alias("mean_intensity"),
    )
    by_name = {r["name"]: r for r in per_name.to_dicts()}
    per_config = degs.group_by("name", "config").agg(pl.len().alias("n"))
    per_degradation: dict[str, dict[str, Any]] = {}
    for name in list(catalogue) + sorted(n for n in by_name if n not in catalogue):
        r = by_name.get(name)
        cfg_counts = {c["config"]: int(c["n"]) for c in per_config.filter(pl.col("name") == name).to_dicts()}
        per_degradation[name] = {
            "stage": catalogue.get(name) or (r["stage"] if r else "unknown"),
            "images": int(r["images"]) if r else 0,
            "mean_intensity": float(r["mean_intensity"]) if r else float("nan"),
            "per_config": {c: cfg_counts.get(c, 0) for c in rows if c != "total"},
        }
    stages = list(degrade.STAGES) + sorted({d["stage"] for d in per_degradation.values()} - set(degrade.STAGES))
    per_stage = {s: int((degs["stage"] == s).sum()) for s in stages}
    images_per_stage = {
        s: int(degs.filter(pl.col("stage") == s).select(pl.struct("config", "id").n_unique()).item()) for s in stages
    }

    total = df["total_intensity"].to_numpy()
    rwords = df["reasoning_words"].to_numpy()
    swords = df["solution_words"].to_numpy()
    target = df["target_words"].cast(pl.Float64).to_numpy()
    ndeg = df["n_degradations"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = np.abs(rwords - target) / target
    dev = dev[np.isfinite(dev)]
    rho = spearman(total, rwords)
    hist = {int(k): int(v) for k, v in zip(*np.unique(ndeg, return_counts=True))}
    return {
        "dataset": ds.resolve().name,
        "rows": rows,
        "per_stage": per_stage,
        "images_per_stage": images_per_stage,
        "per_degradation": per_degradation,
        "degradations_per_image": {**_summary(ndeg), "histogram": hist},
        "intensity": _summary(degs["intensity"].to_numpy()),
        "total_intensity": _summary(total),
        "reasoning_words": _summary(rwords),
        "solution_words": _summary(swords),
        "spearman_length_vs_intensity": rho,
        "spearman": {
            "n": int(len(total)),
            "reasoning_words": rho,
            "solution_words": spearman(total, swords),
            "target_words": spearman(total, target),
        },
        "length_vs_target": {"mean_abs_relative_deviation": float(dev.mean()) if len(dev) else float("nan")},
        "backends": {str(k): int(v) for k, v in df["backend"].fill_null("unknown").value_counts(sort=True).rows()},
        "errors": _errors(ds),
    }


# ---------------------------------------------------------------- writing


def _save_figure(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write(path, buf.getvalue(), fsync=False)


def _figure(w: float, h: float, rows: int = 1, cols: int = 1):
    """An Agg figure that never touches pyplot's global state (safe inside notebooks)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def fmt_number(x: float, nd: int = 3) -> str:
    """``x`` with ``nd`` decimals; ``n/a`` for None and NaN (undefined statistics)."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def _plot_degradations(stats: dict, path: Path) -> None:
    from matplotlib.patches import Patch

    items = list(stats["per_degradation"].items())[::-1]
    fig, axes = _figure(8, 0.32 * len(items) + 1.2)
    ax = axes[0, 0]
    colors = [STAGE_COLORS.get(d["stage"], "#8c8c8c") for _, d in items]
    ax.barh([n for n, _ in items], [d["images"] for _, d in items], color=colors)
    ax.set_xlabel("images carrying it")
    ax.set_title(f"Degradations ({stats['rows']['total']} images)")
    handles = [Patch(color=c, label=s) for s, c in STAGE_COLORS.items()]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    _save_figure(fig, path)


def _plot_stages(stats: dict, path: Path) -> None:
    import numpy as np

    stages = list(stats["per_stage"])
    x = np.arange(len(stages))
    fig, axes = _figure(7, 3.4)
    ax = axes[0, 0]
    colors = [STAGE_COLORS.get(s, "#8c8c8c") for s in stages]
    ax.bar(x - 0.2, [stats["per_stage"][s] for s in stages], 0.4, label="degradations", color=colors)
    ax.bar(x + 0.2, [stats["images_per_stage"][s] for s in stages], 0.4, label="images", color="#bbbbbb")
    ax.set_xticks(x, stages)
    ax.set_ylabel("count")
    ax.legend(fontsize=8)
    ax.set_title("Per stage: degradations drawn and images touched")
    _save_figure(fig, path)


def _plot_intensities(df: pl.DataFrame, stats: dict, path: Path) -> None:
    import numpy as np
    import polars as pl

    single = df.select(pl.col("degradations").explode().struct.field("intensity")).drop_nulls().to_series().to_numpy()
    ndeg = df["n_degradations"].to_numpy()
    fig, axes = _figure(13, 3.6, 1, 3)
    a, b, c = axes[0]
    a.hist(single, bins=20, range=(0, 1), color="#4c72b0")
    a.set_xlabel("intensity of one degradation")
    a.set_ylabel("count")
    a.set_title(f"mean {fmt_number(stats['intensity']['mean'], 2)}")
    b.hist(df["total_intensity"].to_numpy(), bins=20, color="#dd8452")
    b.set_xlabel("total intensity of an image (Σ s_i)")
    b.set_title(f"mean {fmt_number(stats['total_intensity']['mean'], 2)}")
    lo, top = (int(ndeg.min()), int(ndeg.max())) if len(ndeg) else (0, 1)
    c.hist(ndeg, bins=np.arange(lo - 0.5, top + 1.5, 1), color="#55a868", rwidth=0.85)
    c.xaxis.get_major_locator().set_params(integer=True)
    b.yaxis.get_major_locator().set_params(integer=True)
    c.set_xlabel("degradations per image")
    c.set_title(f"mean {fmt_number(stats['degradations_per_image']['mean'], 2)}")
    fig.suptitle("Intensities")
    _save_figure(fig, path)


def _plot_length(df: pl.DataFrame, stats: dict, chain: dict, path: Path) -> None:
    import numpy as np

    total = df["total_intensity"].to_numpy()
    sp = stats["spearman"]
    fig, axes = _figure(12, 4.3, 1, 2)
    for ax, col, label, rho in (
        (axes[0, 0], "reasoning_words", "reasoning length (words)", sp["reasoning_words"]),
        (axes[0, 1], "solution_words", "whole chain length (words)", sp["solution_words"]),
    ):
        for cfg, color in (("sft", "#4c72b0"), ("rl", "#dd8452"), ("validation", "#55a868")):
            sel = (df["config"] == cfg).to_numpy()
            if sel.any():
                ax.scatter(total[sel], df[col].to_numpy()[sel], s=10, alpha=0.6, color=color, label=cfg)
        ax.set_xlabel("total intensity Σ s_i")
        ax.set_ylabel(label)
        ax.set_title(f"Spearman ρ = {fmt_number(rho)} (n = {sp['n']})")
    if len(total):
        xs = np.linspace(0, max(float(np.nanmax(total)), 0.1), 50)
        ys = np.clip(chain["length_base"] + chain["length_per_unit"] * xs, chain["length_min"], chain["length_max"])
        axes[0, 0].plot(xs, ys, "k--", lw=1, label="target length")
    axes[0, 0].legend(fontsize=8)
    rho = fmt_number(sp["reasoning_words"])
    fig.suptitle(f"Chain length against damage: Spearman ρ(reasoning words, Σ s_i) = {rho}")
    _save_figure(fig, path)


def _pick_gallery(df: pl.DataFrame, n: int) -> list[dict]:
    """Up to ``n`` samples spread evenly over the total-intensity range (deterministic)."""
    import numpy as np
    import polars as pl

    if n <= 0 or df.height == 0:
        return []
    ordered = df.select("config", "id", "type", "total_intensity").sort(["total_intensity", "config", "id"])
    idx = sorted(set(np.linspace(0, ordered.height - 1, min(n, ordered.height)).round().astype(int).tolist()))
    return ordered[idx].with_columns(pl.col("total_intensity").round(4)).to_dicts()


def _decode_thumbnail(data: bytes, size: int = 256):
    """Decode one image for the gallery (the only place the report decodes pixels)."""
    from PIL import Image

    im = Image.open(io.BytesIO(data))
    im.draft("RGB", (size, size))
    im = im.convert("RGB")
    im.thumbnail((size, size))
    return im


def _load_gallery_images(ds: Path, picked: list[dict]) -> dict[tuple[str, str], bytes]:
    import polars as pl

    out: dict[tuple[str, str], bytes] = {}
    files = shard_files(ds)
    for cfg in {p["config"] for p in picked}:
        ids = [p["id"] for p in picked if p["config"] == cfg]
        got = (
            pl.scan_parquet([str(p) for p in files[cfg]])
            .filter(pl.col("id").is_in(ids))
            .select("id", pl.col("image").struct.field("bytes").alias("bytes"))
            .collect()
        )
        for r in got.iter_rows(named=True):
            out.setdefault((cfg, r["id"]), r["bytes"])
    return out


def _plot_gallery(ds: Path, picked: list[dict], path: Path) -> None:
    images = _load_gallery_images(ds, picked)
    cols = min(4, max(1, len(picked)))
    rows = max(1, math.ceil(len(picked) / cols))
    fig, axes = _figure(cols * 3.3, rows * 3.6, rows, cols)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        for side in ax.spines.values():
            side.set_visible(False)
    for ax, p in zip(axes.ravel(), picked):
        data = images.get((p["config"], p["id"]))
        if data:
            try:
                ax.imshow(_decode_thumbnail(data))
            except Exception as exc:  # noqa: BLE001 - a broken image shows as text, never fails the report
                ax.text(0.5, 0.5, f"undecodable: {type(exc).__name__}", ha="center", va="center", fontsize=7)
        ax.set_title(f"{textwrap.shorten(p['id'], 34)}  Σ={p['total_intensity']:.2f}", fontsize=7.5)
        ax.set_xlabel("\n".join(textwrap.wrap(p["type"] or "(no TYPE)", 44)[:5]), fontsize=6.5)
    if not picked:
        axes[0, 0].text(0.5, 0.5, "no samples", ha="center", va="center")
    fig.suptitle("Degraded samples with their TYPE line (sorted by total intensity)", fontsize=10)
    _save_figure(fig, path)


def _json_clean(obj: Any) -> Any:
    """NaN/inf → null so stats.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    return obj


def _verdict(rho: float) -> str:
    if rho is None or math.isnan(rho):
        return "Undefined here (fewer than 3 samples or a constant column)."
    if rho >= 0.3:
        return "Positive: heavier damage, longer chain, as the paper claims."
    if rho > -0.3:
        return "Weak: chain length hardly follows the damage here."
    return "Negative: chains get shorter with more damage, against the paper's claim; check the length scaling."


def summary_markdown(stats: dict[str, Any], *, images: bool = True, image_prefix: str = "") -> str:
    """The report as markdown (``summary.md``); ``image_prefix`` makes the plot links relative to
    another folder (the card, one level up, uses ``report/``)."""
    r = stats["rows"]
    sp = stats["spearman"]
    f = fmt_number
    per_image, total, rwords = stats["degradations_per_image"], stats["total_intensity"], stats["reasoning_words"]
    errors = stats["errors"]
    by_stage = " (" + ", ".join(f"{k} {v}" for k, v in errors["by_stage"].items()) + ")" if errors["total"] else ""
    deviation = 100 * stats["length_vs_target"]["mean_abs_relative_deviation"]
    lines = [
        f"# Report: {stats['dataset']}",
        "",
        "| config / split | rows |",
        "|---|---:|",
        *[f"| {k} | {v} |" for k, v in r.items() if k != "total"],
        f"| **total** | **{r['total']}** |",
        "",
        f"- failed samples (not in the data): {errors['total']}{by_stage}",
        f"- degradations per image: mean {f(per_image['mean'], 2)} "
        f"(min {f(per_image['min'], 0)}, max {f(per_image['max'], 0)})",
        f"- intensity of one degradation: mean {f(stats['intensity']['mean'], 2)}; total intensity per image: mean "
        f"{f(total['mean'], 2)} (min {f(total['min'], 2)}, max {f(total['max'], 2)})",
        f"- reasoning length: mean {f(rwords['mean'], 1)} words "
        f"(min {f(rwords['min'], 0)}, max {f(rwords['max'], 0)}); "
        f"mean deviation from the target length {f(deviation, 1)} %",
        f"- **Spearman ρ(total intensity, reasoning length) = {f(sp['reasoning_words'])}**; whole chain: "
        f"{f(sp['solution_words'])} (n = {sp['n']}). " + _verdict(sp["reasoning_words"]),
        "- chain backends: " + ", ".join(f"`{k}` {v}" for k, v in stats["backends"].items()),
        "",
        "| stage | degradations | images |",
        "|---|---:|---:|",
        *[f"| {s} | {n} | {stats['images_per_stage'][s]} |" for s, n in stats["per_stage"].items()],
        "",
        "| degradation | stage | images | mean intensity |",
        "|---|---|---:|---:|",
        *[
            f"| {k} | {v['stage']} | {v['images']} | {f(v['mean_intensity'], 2)} |"
            for k, v in stats["per_degradation"].items()
        ],
    ]
    if images:
        lines += ["", *[f"![{p[:-4].replace('_', ' ')}]({image_prefix}{p})" for p in PLOTS]]
    return "\n".join(lines) + "\n"


def make_report(
    dataset_dir: str | Path, out_dir: str | Path | None = None, *, gallery_size: int = 12
) -> dict[str, Any]:
    """Write plots, ``stats.json`` and ``summary.md`` of ``dataset_dir`` into ``out_dir``
    (default ``dataset_dir/report``) and return the statistics.

    Undefined statistics (Spearman ρ with fewer than 3 rows or a constant column) are NaN in the
    returned dict and ``null`` in ``stats.json``. Raises ``ValueError`` when the folder holds no
    dataset.
    """
    ds = Path(dataset_dir)
    if not ds.is_dir():
        raise ValueError(f"{ds}: no such folder; pass a dataset folder written by `robust-r1 build`.")
    out = Path(out_dir) if out_dir is not None else ds / REPORT
    df = load_frame(ds)
    out.mkdir(parents=True, exist_ok=True)
    stats = compute_stats(df, ds)
    picked = _pick_gallery(df, min(int(gallery_size), 12))
    stats["gallery"] = picked
    stats["files"] = list(PLOTS) + ["stats.json", "summary.md"]
    _plot_degradations(stats, out / "counts_by_degradation.png")
    _plot_stages(stats, out / "counts_by_stage.png")
    _plot_intensities(df, stats, out / "intensity_hist.png")
    _plot_length(df, stats, _length_scale(ds), out / "length_vs_intensity.png")
    _plot_gallery(ds, picked, out / "gallery.png")
    atomic_write(out / "stats.json", json.dumps(_json_clean(stats), indent=2, ensure_ascii=False) + "\n", fsync=False)
    atomic_write(out / "summary.md", summary_markdown(stats), fsync=False)
    log.info("report of %s written to %s (Spearman rho %.3f)", ds, out, stats["spearman_length_vs_intensity"])
    return stats
