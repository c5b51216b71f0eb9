"""Statistics and plots of a built dataset (polars + matplotlib), embedded in the card.

Writes ``report/``: counts per stage and per degradation, intensity histograms, reasoning length
against total intensity with Spearman's ρ (the paper's claim that the chain grows with the
damage, checked on our own data), a gallery of degraded samples with their TYPE line,
``stats.json`` and ``summary.md``. Only the columns needed are read; only the gallery's images
are decoded.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from factory.degrade.registry import STAGES


def _frame(dataset_dir: Path):
    import polars as pl

    files = sorted((dataset_dir / "data").glob("*/*.parquet"))
    if not files:
        raise ValueError(f"{dataset_dir}: no data/*/*.parquet files; build the dataset first (robust-r1 build).")
    frames = []
    for f in files:
        df = pl.read_parquet(f, columns=["id", "degradations", "total_intensity", "reasoning", "type"])
        frames.append(df.with_columns(pl.lit(f.parent.name).alias("config")))
    return pl.concat(frames), files


def _spearman(x, y) -> float:
    from scipy.stats import spearmanr

    if len(x) < 3:
        return float("nan")
    rho = spearmanr(x, y).statistic
    return float(rho)


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    tmp.replace(path)


def make_report(dataset_dir: str | Path, out_dir: str | Path | None = None, *, gallery_size: int = 12) -> dict[str, Any]:
    """Write the report of ``dataset_dir`` into ``out_dir`` (default ``dataset_dir/report``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import polars as pl

    ds = Path(dataset_dir)
    out = Path(out_dir) if out_dir else ds / "report"
    out.mkdir(parents=True, exist_ok=True)
    df, files = _frame(ds)
    degs = df.select("id", "config", "degradations").explode("degradations").unnest("degradations").drop_nulls("name")
    by_name = degs.group_by("name").agg(pl.len().alias("n"), pl.col("intensity").mean().alias("mean_intensity")).sort("n", descending=True)
    by_stage = degs.group_by("stage").agg(pl.len().alias("n"))
    stage_counts = {s: int(by_stage.filter(pl.col("stage") == s)["n"].sum()) for s in STAGES}
    words = df["reasoning"].str.split(" ").list.len().to_numpy()
    total = df["total_intensity"].to_numpy()
    rho = _spearman(total, words)
    per_image = df["degradations"].list.len().to_numpy()

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.barh(by_name["name"].to_list()[::-1], by_name["n"].to_list()[::-1], color="#4c72b0")
    ax.set_xlabel("images carrying it")
    ax.set_title("Degradations")
    _save(fig, out / "counts_by_degradation.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(list(stage_counts), list(stage_counts.values()), color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"])
    ax.set_ylabel("degradations")
    ax.set_title("Degradations per stage")
    _save(fig, out / "counts_by_stage.png")
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    axes[0].hist(degs["intensity"].to_numpy(), bins=20, range=(0, 1), color="#4c72b0")
    axes[0].set_xlabel("intensity of one degradation")
    axes[0].set_ylabel("count")
    axes[1].hist(total, bins=20, color="#dd8452")
    axes[1].set_xlabel("total intensity of an image")
    fig.suptitle("Intensities")
    _save(fig, out / "intensity_hist.png")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(total, words, s=10, alpha=0.6)
    ax.set_xlabel("total intensity Σ s_i")
    ax.set_ylabel("reasoning length (words)")
    ax.set_title(f"Chain length grows with the damage: Spearman ρ = {rho:.3f}")
    _save(fig, out / "length_vs_intensity.png")
    plt.close(fig)

    _gallery(files, out / "gallery.png", gallery_size)

    stats = {
        "rows": {c: int(df.filter(pl.col("config") == c).height) for c in sorted(set(df["config"].to_list()))},
        "degradations_per_image": {"mean": float(per_image.mean()), "min": int(per_image.min()), "max": int(per_image.max())},
        "total_intensity": {"mean": float(total.mean()), "min": float(total.min()), "max": float(total.max())},
        "reasoning_words": {"mean": float(words.mean()), "min": int(words.min()), "max": int(words.max())},
        "spearman_length_vs_intensity": rho,
        "per_stage": stage_counts,
        "per_degradation": {r["name"]: {"images": int(r["n"]), "mean_intensity": round(float(r["mean_intensity"]), 3)} for r in by_name.to_dicts()},
    }
    tmp = out / ".stats.json.tmp"
    tmp.write_text(json.dumps(stats, indent=2) + "\n")
    tmp.replace(out / "stats.json")
    lines = [
        "| rows | " + " | ".join(f"{k}: {v}" for k, v in stats["rows"].items()) + " |",
        "|---|---|" if len(stats["rows"]) == 1 else "|---|" + "---|" * len(stats["rows"]),
        "",
        f"- degradations per image: mean {stats['degradations_per_image']['mean']:.2f} (min {stats['degradations_per_image']['min']}, max {stats['degradations_per_image']['max']})",
        f"- total intensity: mean {stats['total_intensity']['mean']:.2f} (min {stats['total_intensity']['min']:.2f}, max {stats['total_intensity']['max']:.2f})",
        f"- reasoning length: mean {stats['reasoning_words']['mean']:.1f} words (min {stats['reasoning_words']['min']}, max {stats['reasoning_words']['max']})",
        f"- Spearman ρ between total intensity and reasoning length: **{rho:.3f}**",
        "- degradations per stage: " + ", ".join(f"{k} {v}" for k, v in stage_counts.items()),
        "",
        "| degradation | images | mean intensity |",
        "|---|---:|---:|",
        *[f"| {k} | {v['images']} | {v['mean_intensity']:.2f} |" for k, v in stats["per_degradation"].items()],
    ]
    tmp = out / ".summary.md.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(out / "summary.md")
    return stats


def _gallery(files, path: Path, n: int) -> None:
    import matplotlib.pyplot as plt
    import numpy as np
    import pyarrow.parquet as pq
    from PIL import Image

    picked = []
    for f in files:
        t = pq.read_table(f, columns=["image", "type"]).slice(0, n - len(picked)).to_pylist()
        picked += t
        if len(picked) >= n:
            break
    if not picked:
        return
    cols = 4
    rows = (len(picked) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 3.4, rows * 3.2))
    for ax, row in zip(np.atleast_1d(axes).ravel(), picked):
        im = Image.open(io.BytesIO(row["image"]["bytes"]))
        im.thumbnail((320, 320))
        ax.imshow(im)
        ax.set_title(_wrap(row["type"], 40), fontsize=7)
    for ax in np.atleast_1d(axes).ravel():
        ax.axis("off")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:4])
