"""Benchmark of the degradation engine (issue targets: every op <= 5 ms at 640x480 on one core,
in every style; train recipe >= 50 images/s per core; shifting >= 100x faster than
cv2.pyrMeanShiftFiltering).

Run:  .venv/bin/python bench/degrade.py [--repeat 30] [--styles physical,reference] [--json OUT]

One core: the process is pinned to one CPU and OpenCV / BLAS threads are set to 1, as
albumentations' benchmark does. Times are medians of ``--repeat`` runs after one warm-up, on a
640x480 crop of the bundled astronaut photo (decode excluded).
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
from _machine import machine  # noqa: E402

from factory import degrade  # noqa: E402
from factory.photos import photo  # noqa: E402

LEVELS = (0.23, 0.45, 0.9)


STAT = {"median": statistics.median, "min": min}


def _median_ms(fn, repeat: int, stat: str = "median") -> float:
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return STAT[stat](ts) * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--recipe-images", type=int, default=200)
    ap.add_argument("--no-tune-allocator", action="store_true", help="measure with glibc's default malloc settings")
    ap.add_argument("--skip-baseline", action="store_true", help="skip the slow cv2.pyrMeanShiftFiltering baseline")
    ap.add_argument(
        "--stat",
        choices=sorted(STAT),
        default="median",
        help="per-op statistic over the repeats (min: robust to other load on a shared machine)",
    )
    ap.add_argument("--styles", default=",".join(degrade.RENDER_STYLES), help="comma-separated styles to time")
    ap.add_argument("--json", type=str, default=None, help="also write the results as JSON here")
    args = ap.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    tuned = False if args.no_tune_allocator else degrade.tune_allocator()

    img = cv2.resize(degrade.to_rgb_uint8(photo("astronaut")), (640, 480), interpolation=cv2.INTER_AREA)
    styles = [degrade.check_style(s, allow_mixed=False) for s in args.styles.split(",") if s.strip()]
    rows = []
    for style in styles:
        for d in degrade.catalogue():
            ms = [
                _median_ms(
                    lambda s=s, n=d.name, st=style: degrade.apply(img, n, s, seed=1, style=st), args.repeat, args.stat
                )
                for s in LEVELS
            ]
            rows.append({"name": d.name, "stage": d.stage, "style": style, "ms": ms})

    # The train recipe end to end (recipe sampling + rendering; decode excluded), per style.
    n = args.recipe_images
    recipe = {}
    for style in [*styles, "mixed"]:
        for i in range(5):
            degrade.render(img, degrade.sample_recipe("train", 0, f"warm{i}", style=style))
        t0 = time.perf_counter()
        total_steps = 0
        for i in range(n):
            r = degrade.sample_recipe("train", 0, f"bench{i}", style=style)
            total_steps += len(r.steps)
            degrade.render(img, r)
        recipe[style] = (n / (time.perf_counter() - t0), total_steps / n)

    # Shifting against OpenCV's mean-shift filtering at the reference's radii.
    ours = statistics.median([m for r in rows if r["name"] == "mean shift" for m in r["ms"]])
    if args.skip_baseline:
        base_ms = None
    else:
        t0 = time.perf_counter()
        cv2.pyrMeanShiftFiltering(img[:, :, ::-1].copy(), 36, 36)
        base_ms = (time.perf_counter() - t0) * 1000.0

    print(f"machine: {machine('cv2', 'numpy')}")
    print(f"one core, 640x480, {args.stat} of {args.repeat}; glibc allocator tuned: {tuned}")
    print()
    head = " | ".join(f"{st} ms @ {s}" for st in styles for s in LEVELS)
    print(f"| degradation | stage | {head} |")
    print("|---|---|" + "---:|" * (len(LEVELS) * len(styles)))
    by_name = {}
    for r in rows:
        by_name.setdefault((r["name"], r["stage"]), {})[r["style"]] = r["ms"]
    for (name, stage), per in by_name.items():
        print(f"| {name} | {stage} | " + " | ".join(f"{m:.2f}" for st in styles for m in per[st]) + " |")
    print()
    for st in styles:
        worst = max((max(r["ms"]), r["name"]) for r in rows if r["style"] == st)
        print(f"slowest {st} op: {worst[0]:.2f} ms ({worst[1]}; target <= 5 ms)")
    for st, (ips, per) in recipe.items():
        print(f"train recipe, {st}: {ips:.1f} images/s on one core ({per:.2f} degradations per image; target >= 50)")
    if base_ms is not None:
        print(
            f"shifting: cv2.pyrMeanShiftFiltering(img, 36, 36) {base_ms:.0f} ms vs our mean shift {ours:.2f} ms "
            f"(median over levels and styles) = {base_ms / ours:.0f}x (target >= 100x)"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "machine": machine("cv2", "numpy"),
                    "tuned": tuned,
                    "ops": rows,
                    "train": {st: {"images_per_s": v[0], "degradations_per_image": v[1]} for st, v in recipe.items()},
                    "pyrmeanshift_ms": base_ms,
                    "mean_shift_ms": ours,
                },
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
