"""Fidelity of our degradations against MMD-Bench's published per-degradation images.

MMD-Bench (CLEAR, arXiv 2604.04780; ``CUDAOUTOFMEMORY/MMD-Bench``) applied the Robust-R1 reference
degradation code at intensity 0.9 to VLMEvalKit benchmarks, one file per degradation
(``{Base}_{method}.tsv``, base64 JPEG q95). This script renders our degradation of the same name
at 0.9 and compares, per degradation:

* **matched** (the base benchmark's clean file ``{Base}.tsv`` is available and the row with the
  same ``index`` holds the same question): ours is rendered on that clean image, re-encoded as
  MMD-Bench re-encodes (OpenCV JPEG, quality 95), and both are measured against the clean image on
  five statistics (grey SSIM to clean, brightness ratio, HSV-saturation ratio, log10
  Laplacian-variance ratio, mean absolute difference; the statistics of issue 16's fidelity
  benchmark), averaged over images x seeds, plus the grey SSIM between ours and theirs;
* **unmatched** (no clean file): only the no-reference statistics can be compared (mean
  brightness, mean HSV saturation, log10 Laplacian variance of the degraded images); ours are
  rendered on the bundled photos, so content differs and the numbers are indicative only.

A cell agrees when |ours - theirs| is within issue 16's tolerance (SSIM 0.10, brightness 0.10,
saturation 0.15, log10 sharpness 0.30, mean abs diff 0.05). Our ``reference`` style is used when
the engine has one (``factory.degrade.apply(..., style="reference")``), else the default style (the
report says which).

Run (no download happens here; point it at a local copy)::

    python bench/mmdbench_fidelity.py PATH/TO/MMD-Bench --base MMStar [--clean PATH/TO/MMStar.tsv]
        [--limit 50] [--seeds 0,1,2] [--style reference|default] [--json out.json]
"""

from __future__ import annotations

import argparse
import base64
import inspect
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from factory import degrade  # noqa: E402
from trainers.eval.predegraded import MMDBENCH_METHODS  # noqa: E402
from trainers.eval.tsv import MAX_REFERENCE_CHARS, read_tsv  # noqa: E402

STATS = ("ssim", "brightness", "saturation", "log10_sharpness", "mad")
NO_REFERENCE = ("abs_brightness", "abs_saturation", "abs_log10_sharpness")
TOLERANCE = {"ssim": 0.10, "brightness": 0.10, "saturation": 0.15, "log10_sharpness": 0.30, "mad": 0.05,
             "abs_brightness": 0.10, "abs_saturation": 0.15, "abs_log10_sharpness": 0.30}
LEVEL = 0.9


# ---------------------------------------------------------------- statistics


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _sat(rgb: np.ndarray) -> float:
    return float(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1].mean()) / 255.0


def _lapvar(rgb: np.ndarray) -> float:
    return float(cv2.Laplacian(_grey(rgb), cv2.CV_64F).var())


def _bright(rgb: np.ndarray) -> float:
    return float(_grey(rgb).mean()) / 255.0


def relative_stats(deg: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """The five statistics of ``deg`` against ``clean`` (same size, RGB uint8)."""
    from skimage.metrics import structural_similarity

    eps = 1e-6
    return {
        "ssim": float(structural_similarity(_grey(clean), _grey(deg), data_range=255)),
        "brightness": _bright(deg) / max(_bright(clean), eps),
        "saturation": _sat(deg) / max(_sat(clean), eps),
        "log10_sharpness": math.log10(max(_lapvar(deg), eps) / max(_lapvar(clean), eps)),
        "mad": float(np.abs(deg.astype(np.float32) - clean.astype(np.float32)).mean()) / 255.0,
    }


def absolute_stats(img: np.ndarray) -> dict[str, float]:
    return {"abs_brightness": _bright(img), "abs_saturation": _sat(img),
            "abs_log10_sharpness": math.log10(max(_lapvar(img), 1e-6))}


# ---------------------------------------------------------------- images


def decode(cell: str) -> np.ndarray | None:
    """A base64 image cell → RGB uint8 (as MMD-Bench decodes: OpenCV, 3 channels); ``None`` if not an image."""
    try:
        data = np.frombuffer(base64.b64decode(cell), np.uint8)
    except (ValueError, TypeError):
        return None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def jpeg95(rgb: np.ndarray) -> np.ndarray:
    """The round trip MMD-Bench's images went through (``cv2.imencode('.jpg', img)``: quality 95)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def engine_style(wanted: str) -> tuple[dict[str, Any], str]:
    """Keyword arguments for ``degrade.apply`` and the style actually used (with a note)."""
    if wanted == "default":
        return {}, "default"
    if "style" in inspect.signature(degrade.apply).parameters:
        return {"style": wanted}, wanted
    return {}, f"default (this engine has no style={wanted!r}; the reference style is not merged yet)"


def ours(clean: np.ndarray, method: str, seed: int, kwargs: dict[str, Any]) -> np.ndarray:
    name = degrade.canonical_name(method)
    return jpeg95(degrade.apply(clean, name, LEVEL, seed=seed, **kwargs))


# ---------------------------------------------------------------- the comparison


def find(root: Path, name: str) -> Path | None:
    hits = sorted(root.rglob(name))
    return hits[0] if hits else None


def _mean(vals: list[dict[str, float]], keys) -> dict[str, float]:
    return {k: float(np.mean([v[k] for v in vals])) for k in keys} if vals else {}


def compare_method(path: Path, method: str, clean_rows: dict[Any, dict] | None, *, limit: int, seeds: list[int],
                   kwargs: dict[str, Any], photos: list[np.ndarray]) -> dict[str, Any]:
    table = read_tsv(path)
    theirs_rel, ours_rel, cross, theirs_abs, ours_abs = [], [], [], [], []
    used = skipped = 0
    for row in table:
        if used >= limit:
            break
        cell = row.get("image")
        if not isinstance(cell, str) or len(cell) <= MAX_REFERENCE_CHARS:
            continue
        theirs = decode(cell)
        if theirs is None:
            skipped += 1
            continue
        base = clean_rows.get(row.get("index")) if clean_rows is not None else None
        clean = decode(base["image"]) if base is not None and isinstance(base.get("image"), str) else None
        if base is not None and str(base.get("question")) != str(row.get("question")):
            clean = None  # not the same question: not the same base image
        if clean is not None and clean.shape == theirs.shape:
            theirs_rel.append(relative_stats(theirs, clean))
            for s in seeds:
                mine = ours(clean, method, s, kwargs)
                ours_rel.append(relative_stats(mine, clean))
                cross.append(relative_stats(mine, theirs)["ssim"])
        else:
            theirs_abs.append(absolute_stats(theirs))
        used += 1
    if not theirs_rel:  # unmatched: our degradation on the bundled photos
        for k, p in enumerate(photos):
            for s in seeds:
                ours_abs.append(absolute_stats(ours(p, method, s + 100 * k, kwargs)))
    matched = bool(theirs_rel)
    keys = STATS if matched else NO_REFERENCE
    t = _mean(theirs_rel if matched else theirs_abs, keys)
    o = _mean(ours_rel if matched else ours_abs, keys)
    cells = {k: {"theirs": t.get(k), "ours": o.get(k),
                 "agree": (abs(t[k] - o[k]) <= TOLERANCE[k]) if k in t and k in o else None} for k in keys}
    return {"method": method, "file": path.name, "mode": "matched" if matched else "unmatched", "images": used,
            "undecodable": skipped, "cells": cells, "ssim_ours_vs_theirs": float(np.mean(cross)) if cross else None}


def run(data: Path, base: str, clean: Path | None, *, limit: int, seeds: list[int], style: str,
        methods: list[str]) -> dict[str, Any]:
    kwargs, used_style = engine_style(style)
    clean_path = clean or find(data, f"{base}.tsv")
    if clean_path is None and os.environ.get("LMUData"):
        clean_path = find(Path(os.environ["LMUData"]).expanduser(), f"{base}.tsv")
    clean_rows = read_tsv(clean_path).by_index() if clean_path else None
    from factory.photos import RGB_PHOTOS, photo

    photos = [cv2.resize(photo(n), (640, 480), interpolation=cv2.INTER_AREA) for n in RGB_PHOTOS[:3]]
    results = []
    for m in methods:
        path = find(data, f"{base}_{m}.tsv")
        if path is None:
            results.append({"method": m, "file": f"{base}_{m}.tsv", "mode": "missing"})
            continue
        results.append(compare_method(path, m, clean_rows, limit=limit, seeds=seeds, kwargs=kwargs, photos=photos))
    return {"data": str(data), "base": base, "clean": str(clean_path) if clean_path else None, "style": used_style,
            "level": LEVEL, "seeds": seeds, "limit": limit, "results": results}


def markdown(report: dict[str, Any]) -> str:
    lines = [f"MMD-Bench per-degradation files of {report['base']} vs our degradations at {report['level']} "
             f"(style: {report['style']}; clean: {report['clean'] or 'not available (unmatched mode)'})", ""]
    rel = [r for r in report["results"] if r.get("mode") == "matched"]
    unm = [r for r in report["results"] if r.get("mode") == "unmatched"]

    def cell(c):
        if c["theirs"] is None or c["ours"] is None:
            return "–"
        mark = "✓" if c["agree"] else "✗"
        return f"{c['theirs']:.2f} / {c['ours']:.2f} {mark}"

    if rel:
        lines += ["Matched on the same base images: theirs / ours (✓ within tolerance)", "",
                  "| degradation | images | SSIM to clean | brightness | saturation | log10 sharpness | mean abs diff "
                  "| SSIM ours vs theirs |", "|---|---:|---|---|---|---|---|---:|"]
        for r in rel:
            x = r["ssim_ours_vs_theirs"]
            lines.append(f"| {r['method']} | {r['images']} | " + " | ".join(cell(r["cells"][k]) for k in STATS)
                         + f" | {x:.2f} |")
        agree = sum(bool(c["agree"]) for r in rel for c in r["cells"].values())
        lines += ["", f"{agree} of {5 * len(rel)} cells agree.", ""]
    if unm:
        lines += ["Unmatched (no clean image): no-reference statistics, ours on the bundled photos (indicative)", "",
                  "| degradation | images | brightness | saturation | log10 sharpness |", "|---|---:|---|---|---|"]
        for r in unm:
            lines.append(f"| {r['method']} | {r['images']} | " + " | ".join(cell(r["cells"][k]) for k in NO_REFERENCE)
                         + " |")
        lines.append("")
    missing = [r["method"] for r in report["results"] if r.get("mode") == "missing"]
    if missing:
        lines.append(f"No file for: {', '.join(missing)}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="local copy of CUDAOUTOFMEMORY/MMD-Bench (any layout below it)")
    ap.add_argument("--base", default="MMStar", help="VLMEvalKit base name (MMStar, MMBench_DEV_EN_V11, ...)")
    ap.add_argument("--clean", type=Path, help="the base benchmark's VLMEvalKit TSV (default: in DATA or $LMUData)")
    ap.add_argument("--limit", type=int, default=50, help="images per degradation")
    ap.add_argument("--seeds", default="0,1,2", help="our seeds per image")
    ap.add_argument("--style", default="reference", help="our degradation style: reference (default) or default")
    ap.add_argument("--methods", default=",".join(MMDBENCH_METHODS), help="per-degradation file suffixes")
    ap.add_argument("--json", type=Path, help="write the report as JSON here")
    a = ap.parse_args(argv)
    if not a.data.is_dir():
        ap.error(f"{a.data}: no such folder (a local copy of CUDAOUTOFMEMORY/MMD-Bench)")
    seeds = [int(x) for x in a.seeds.split(",") if x.strip()]
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    report = run(a.data, a.base, a.clean, limit=a.limit, seeds=seeds, style=a.style, methods=methods)
    print(markdown(report))
    if a.json:
        a.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if any(r.get("mode") in ("matched", "unmatched") for r in report["results"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
