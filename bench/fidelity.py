"""Fidelity benchmark: how close each degradation style comes to the reference implementation.

The released Robust-R1 data and models learned what "<degradation> (s)" looks like from the
reference repository's ``add_degradation/add_degradation.py``. This benchmark renders the bundled
photos at 640x480 with both styles of our engine and compares five statistics per degradation
and level with the same statistics of the reference's outputs:

* ``ssim``: grey-level SSIM to the clean image (scikit-image, 7x7 window, data range 255);
* ``brightness``: mean grey level of the output / of the clean image;
* ``saturation``: mean HSV saturation (OpenCV 8-bit) of the output / of the clean image;
* ``log_sharpness``: log10 of the ratio of the variances of the 3x3 Laplacian (grey levels);
* ``mad``: mean absolute difference to the clean image over all channels, in [0, 1].

Each is averaged over photos x seeds. A (degradation, level) cell agrees when all five lie within
:data:`TOLERANCE` of the reference. The reference's figures are stored in
``bench/fidelity_reference.json`` (how they were made is written in that file and in
bench/README.md); no reference code is part of this repository.

Run:  .venv/bin/python bench/fidelity.py [--styles physical,reference] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

PHOTOS: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "hubble")
SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)
LEVELS: tuple[float, ...] = (0.23, 0.45, 0.9)
FRAME: tuple[int, int] = (640, 480)  # width, height: the frame the reference's pixel sizes assume
STATS: tuple[str, ...] = ("ssim", "brightness", "saturation", "log_sharpness", "mad")
TOLERANCE: dict[str, float] = {
    "ssim": 0.10,
    "brightness": 0.10,
    "saturation": 0.15,
    "log_sharpness": 0.30,
    "mad": 0.05,
}
REFERENCE_JSON = Path(__file__).with_name("fidelity_reference.json")

Render = Callable[[np.ndarray, str, float, int], np.ndarray]
"""``render(rgb_uint8_640x480, degradation_name, intensity, seed) -> rgb_uint8``."""


def frame(name: str) -> np.ndarray:
    """A bundled photo as an RGB uint8 640x480 frame (area-resampled, aspect not kept)."""
    from factory.degrade import to_rgb_uint8
    from factory.photos import photo

    return np.ascontiguousarray(cv2.resize(to_rgb_uint8(photo(name)), FRAME, interpolation=cv2.INTER_AREA))


def _lap_var(grey: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_64F, ksize=1).var())


def statistics(clean: np.ndarray, out: np.ndarray) -> dict[str, float]:
    """The five statistics of one degraded RGB uint8 image against its clean original."""
    from skimage.metrics import structural_similarity

    gc = cv2.cvtColor(clean, cv2.COLOR_RGB2GRAY)
    go = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    sc = float(cv2.cvtColor(clean, cv2.COLOR_RGB2HSV)[:, :, 1].mean())
    so = float(cv2.cvtColor(out, cv2.COLOR_RGB2HSV)[:, :, 1].mean())
    eps = 1e-6
    return {
        "ssim": float(structural_similarity(gc, go, data_range=255)),
        "brightness": (float(go.mean()) + eps) / (float(gc.mean()) + eps),
        "saturation": (so + eps) / (sc + eps),
        "log_sharpness": math.log10((_lap_var(go) + eps) / (_lap_var(gc) + eps)),
        "mad": float(np.abs(out.astype(np.int16) - clean.astype(np.int16)).mean()) / 255.0,
    }


def _mean(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in STATS}


def level_key(level: float) -> str:
    return f"{level:.2f}"


def measure(
    render: Render,
    names: Iterable[str],
    *,
    photos: Sequence[str] = PHOTOS,
    seeds: Sequence[int] = SEEDS,
    levels: Sequence[float] = LEVELS,
    frames: Mapping[str, np.ndarray] | None = None,
) -> dict:
    """Statistics of ``render`` per degradation and level: ``{"mean": ..., "per_photo": ...}``.

    ``mean[name][level]`` averages over photos x seeds; ``per_photo[photo][name][level]`` over
    seeds. Levels are keyed as ``"0.23"``.
    """
    frames = dict(frames or {})
    for p in photos:
        if p not in frames:
            frames[p] = frame(p)
    names = list(names)
    per_photo: dict = {p: {n: {} for n in names} for p in photos}
    mean: dict = {n: {} for n in names}
    for n in names:
        for lv in levels:
            everything = []
            for p in photos:
                clean = frames[p]
                rows = [statistics(clean, render(clean, n, lv, seed)) for seed in seeds]
                per_photo[p][n][level_key(lv)] = _mean(rows)
                everything += rows
            mean[n][level_key(lv)] = _mean(everything)
    return {"mean": mean, "per_photo": per_photo}


def within(ours: Mapping[str, float], ref: Mapping[str, float]) -> list[str]:
    """The statistics of one cell that are out of tolerance (empty: the cell agrees)."""
    return [k for k in STATS if abs(ours[k] - ref[k]) > TOLERANCE[k]]


def agreement(ours: Mapping, ref: Mapping) -> tuple[int, int, list[tuple[str, str, list[str]]]]:
    """(cells within tolerance, cells compared, failures) for two ``mean`` tables."""
    ok, total, failures = 0, 0, []
    for n, by_level in ours.items():
        for lv, st in by_level.items():
            total += 1
            bad = within(st, ref[n][lv])
            if bad:
                failures.append((n, lv, bad))
            else:
                ok += 1
    return ok, total, failures


def load_reference(path: Path = REFERENCE_JSON) -> dict:
    return json.loads(Path(path).read_text())


def engine_render(style: str) -> Render:
    from factory import degrade

    def render(img: np.ndarray, name: str, s: float, seed: int) -> np.ndarray:
        return degrade.apply(img, name, s, seed=seed, style=style)

    return render


def markdown_table(results: Mapping[str, Mapping], ref: Mapping) -> str:
    """One row per degradation and level: reference | each style, the five statistics each."""
    styles = list(results)
    head = "| degradation | s | stat | reference code | " + " | ".join(f"{st} style" for st in styles) + " |"
    lines = [head, "|---|---|---|---:|" + "---:|" * len(styles)]
    for n in ref:
        for lv in ref[n]:
            for k in STATS:
                cells = []
                for st in styles:
                    v = results[st][n][lv][k]
                    mark = "" if abs(v - ref[n][lv][k]) <= TOLERANCE[k] else " ✗"
                    cells.append(f"{v:.3f}{mark}")
                lines.append(f"| {n} | {lv} | {k} | {ref[n][lv][k]:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compact_table(results: Mapping[str, Mapping], ref: Mapping) -> str:
    """One row per degradation and level; each cell ``ssim / brightness / saturation / log10 sharpness / mad``."""
    styles = list(results)

    def fmt(st: Mapping[str, float]) -> str:
        return " / ".join(f"{st[k]:.2f}" for k in STATS)

    head = "| degradation | s | reference code | " + " | ".join(f"{st} style" for st in styles) + " |"
    lines = [head, "|---|---|---|" + "---|" * len(styles)]
    for n in ref:
        for lv in ref[n]:
            cells = []
            for st in styles:
                bad = within(results[st][n][lv], ref[n][lv])
                cells.append(fmt(results[st][n][lv]) + (" ✓" if not bad else " ✗ " + ",".join(bad)))
            lines.append(f"| {n} | {lv} | {fmt(ref[n][lv])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--styles", default="physical,reference", help="comma-separated engine styles to measure")
    ap.add_argument("--photos", default=",".join(PHOTOS))
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)))
    ap.add_argument("--only", default="", help="comma-separated degradations to measure (default: all)")
    ap.add_argument("--reference", default=str(REFERENCE_JSON), help="the reference's figures (JSON)")
    ap.add_argument("--long", action="store_true", help="one row per statistic instead of one per cell")
    ap.add_argument("--json", default=None, help="also write our figures as JSON here")
    ap.add_argument("--results", default=None, help="print the tables of an earlier --json run instead of measuring")
    args = ap.parse_args(argv)

    from factory import degrade

    cv2.setNumThreads(1)
    ref_all = load_reference(Path(args.reference))
    photos = [p for p in args.photos.split(",") if p]
    seeds = [int(x) for x in args.seeds.split(",") if x]
    if photos == list(ref_all["photos"]):
        ref = ref_all["mean"]
    else:  # compare like with like: the reference averaged over the same photos
        ref = {
            n: {lv: _mean([ref_all["per_photo"][p][n][lv] for p in photos]) for lv in ref_all["mean"][n]}
            for n in ref_all["mean"]
        }
    only = {degrade.get(n).name for n in args.only.split(",") if n.strip()}
    names = [n for n in degrade.names() if n in ref and (not only or n in only)]
    results = {}
    if args.results:
        earlier = json.loads(Path(args.results).read_text())
        photos, seeds, results = earlier["photos"], earlier["seeds"], earlier["styles"]
    else:
        frames = {p: frame(p) for p in photos}
        for style in [s for s in args.styles.split(",") if s]:
            results[style] = measure(engine_render(style), names, photos=photos, seeds=seeds, frames=frames)["mean"]
    ref = {n: ref[n] for n in names}
    print(f"photos: {', '.join(photos)} at {FRAME[0]}x{FRAME[1]}; seeds: {', '.join(map(str, seeds))}")
    print("tolerance: " + ", ".join(f"{k} ±{v:g}" for k, v in TOLERANCE.items()))
    print()
    print((markdown_table if args.long else compact_table)(results, ref))
    print()
    for style, res in results.items():
        ok, total, failures = agreement(res, ref)
        print(f"{style}: {ok} of {total} cells within tolerance")
        for n, lv, bad in failures:
            print(f"  {n} @ {lv}: " + ", ".join(f"{k} {res[n][lv][k]:.3f} vs {ref[n][lv][k]:.3f}" for k in bad))
    if args.json:
        Path(args.json).write_text(json.dumps({"photos": photos, "seeds": seeds, "styles": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
