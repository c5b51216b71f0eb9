"""Benchmark of the dataset build: samples/s and peak memory for 1K and 10K samples from a
synthetic 640×480 source, template backend, 1 and 2 workers.

Issue targets: >= 40 samples/s on 2 cores; peak RSS flat in dataset size (10K within 10 % of 1K).

Run:  .venv/bin/python bench/build.py [--sizes 1000,10000] [--workers 1,2] [--out DIR]

Each configuration is a fresh process running ``factory.build.build`` (PNG images, no report).
Besides wall-clock samples/s it reports the CPU time per sample of all build processes (main +
workers), which does not depend on other load on the machine, and the load average before and
after each run (a shared machine inflates wall-clock times).
The source is realistic: JPEG-encoded 640×480 photos-like images (decoded, degraded with the
``train`` recipe and re-encoded per sample, as with A-OKVQA). Memory: this script samples the RSS
of the build process and of all its descendants (worker processes) every 20 ms and reports the
peak of the main process and the peak of the whole tree (sum of RSS; shared pages counted once per
process, so the tree figure is an upper bound).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHILD = r'''
import io, json, sys, time
import numpy as np
from PIL import Image
from factory.build import BuildConfig, build
from factory.sources import Sample

class Synthetic:
    """n questions over a pool of 32 JPEG-encoded 640x480 images (gradients, shapes, texture)."""
    def __init__(self, n, pool=32):
        self.n, self.pool = n, []
        y, x = np.mgrid[0:480, 0:640].astype(np.float32)
        for j in range(pool):
            rng = np.random.default_rng(j)
            waves = [np.sin(x / rng.uniform(20, 90) + j), np.cos(y / rng.uniform(20, 90))]
            base = np.stack([*waves, np.sin((x + y) / rng.uniform(40, 120))], -1)
            img = (base * 0.35 + 0.5) * 255
            for _ in range(12):  # flat shapes with edges
                cx, cy, r = rng.integers(0, 640), rng.integers(0, 480), rng.integers(10, 90)
                img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
            img = (img + rng.normal(0, 4, img.shape)).clip(0, 255).astype(np.uint8)
            buf = io.BytesIO(); Image.fromarray(img).save(buf, format="JPEG", quality=90)
            self.pool.append(buf.getvalue())
    def __len__(self): return self.n
    def describe(self): return {"name": "synthetic", "n": self.n, "size": "640x480"}
    def __iter__(self):
        for i in range(self.n):
            yield Sample(id=f"syn:{i}", question=f"What is in picture {i}?", choices=["a", "b", "c", "d"],
                         answer=str(i % 4), answer_text="abcd"[i % 4], image=self.pool[i % len(self.pool)])

import os, resource
n, workers, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
src = Synthetic(n)
print("ready", flush=True)
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
s = build(BuildConfig(source=src, out=out, splits=("train",), workers=workers, report=False), progress=False)
dt = time.perf_counter() - t0
r1, rc = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)  # workers joined
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime) + rc.ru_utime + rc.ru_stime
print(json.dumps({"n": n, "workers": workers, "seconds": dt, "samples_per_s": n / dt,
                  "cpu_ms_per_sample": 1000 * cpu / n,
                  "load_after": os.getloadavg()[0], "rows": s.counts, "errors": s.errors}))
'''


def _rss_tree(pid: int) -> tuple[int, int]:
    """(RSS of pid, RSS of pid + all descendants) in bytes, from /proc."""

    def rss(p: int) -> int:
        try:
            with open(f"/proc/{p}/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            return 0

    def children(p: int) -> list[int]:
        out: list[int] = []
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as fh:
                    out += [int(c) for c in fh.read().split()]
        except OSError:
            pass
        return out

    main = rss(pid)
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += rss(p)
        todo += children(p)
    return main, total


def run(n: int, workers: int) -> dict:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(n), str(workers), f"{d}/out"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        peak = {"main": 0, "tree": 0}
        ready = threading.Event()
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                if ready.is_set():
                    m, t = _rss_tree(proc.pid)
                    peak["main"], peak["tree"] = max(peak["main"], m), max(peak["tree"], t)
                time.sleep(0.02)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "ready":
                ready.set()
            lines.append(line)
        proc.wait()
        stop.set()
        th.join()
        if proc.returncode:
            print(proc.stderr.read()[-3000:] if proc.stderr else "")
            raise SystemExit(f"n={n} workers={workers} failed")
        size = sum(p.stat().st_size for p in Path(d, "out", "data").rglob("*.parquet"))
    r = json.loads(lines[-1])
    r.update(
        load_before=load_before,
        peak_main_mb=peak["main"] / 2**20,
        peak_tree_mb=peak["tree"] / 2**20,
        dataset_mb=size / 2**20,
    )
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--json", type=Path, help="Also write the results here.")
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        for w in [int(x) for x in args.workers.split(",")]:
            r = run(n, w)
            rows.append(r)
            print(
                f"n={n:>6} workers={w}: {r['samples_per_s']:.1f} samples/s, {r['seconds']:.0f} s, "
                f"{r['cpu_ms_per_sample']:.1f} CPU ms/sample, peak RSS main {r['peak_main_mb']:.0f} MB, all processes "
                f"{r['peak_tree_mb']:.0f} MB, dataset {r['dataset_mb']:.0f} MB, "
                f"load {r['load_before']:.1f}->{r['load_after']:.1f}",
                flush=True,
            )
    print()
    print(
        "| samples | workers | samples/s | seconds | CPU ms/sample | peak RSS main (MB) "
        "| peak RSS all processes (MB) | dataset (MB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['n']} | {r['workers']} | {r['samples_per_s']:.1f} | {r['seconds']:.0f} | "
            f"{r['cpu_ms_per_sample']:.1f} | "
            f"{r['peak_main_mb']:.0f} | {r['peak_tree_mb']:.0f} | {r['dataset_mb']:.0f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
