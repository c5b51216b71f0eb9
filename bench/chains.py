"""Benchmark of the chain writer (run by hand; results in bench/chains.md).

* ``openai`` backend against the local OpenAI-compatible test server (``tests/fake_llm_server.py``,
  run as a separate process on 127.0.0.1) that answers every call after a fixed latency
  (default 200 ms): samples/s at concurrency 1, 8 and 64, and the share of the ideal throughput
  ``concurrency / (latency × calls per sample)`` (a sample takes 3 or 4 sequential calls:
  influence, reasoning, conclusion, and length scaling when the draft misses the target).
  Target (issue #3): >= 85 % of ideal at concurrency 64.
* ``template`` backend: samples/s on one core.

The real ``openai`` client, a fresh cache folder per run (no cache hits, every entry written),
32×32 images sent as data URLs. One untimed warm-up batch first (imports, connection pool):
the numbers are the steady state of a long job. Each level runs ``--repeat`` times; the median is
reported.

Run:  .venv/bin/python bench/chains.py [--latency 0.2] [--levels 1,8,64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import load, machine

from factory import degrade
from factory.chains.writer import ChainConfig, ChainRequest, write_chains

ROOT = Path(__file__).resolve().parents[1]


def requests(n: int, tag: str) -> list[ChainRequest]:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        r = degrade.sample_recipe("train", 0, f"{tag}{i}")
        out.append(
            ChainRequest(
                f"{tag}{i}", f"What is shown in picture {tag}{i}?", ["a cat", "a dog"], "0", "a cat", r, img, img
            )
        )
    return out


def run_level(url: str, conc: int, n: int, latency: float, transport: str) -> dict:
    reqs = requests(n, f"c{conc}-{time.perf_counter_ns()}-")
    with tempfile.TemporaryDirectory() as d:
        cfg = ChainConfig(
            backend="openai",
            model="fake",
            base_url=url,
            api_key="bench",
            concurrency=conc,
            cache_dir=d,
            timeout=30,
            transport=transport,
        )
        t0 = time.perf_counter()
        rep = write_chains(reqs, cfg)
        dt = time.perf_counter() - t0
    calls = rep.usage["requests"] / n
    sps = n / dt
    ideal = conc / (latency * calls)
    return {
        "n": n,
        "ok": len(rep.ok),
        "calls": calls,
        "seconds": dt,
        "sps": sps,
        "ideal": ideal,
        "pct": 100 * sps / ideal,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency", type=float, default=0.2, help="seconds the server waits per call")
    ap.add_argument("--levels", type=str, default="1,8,64", help="concurrency levels, comma-separated")
    ap.add_argument("--samples-per-slot", type=int, default=8, help="samples per level = concurrency × this")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--transport", default="auto", choices=["auto", "aiohttp", "httpx"])
    ap.add_argument("--template-samples", type=int, default=5000)
    args = ap.parse_args()

    print(f"machine: {machine('openai')}; load average before: {load()}")
    # The server runs in its own process, so its threads do not share this process's GIL.
    srv = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "tests" / "fake_llm_server.py"),
            "--latency",
            str(args.latency),
            "--seconds",
            "1800",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = srv.stdout.readline().strip()
        levels = [int(x) for x in args.levels.split(",")]
        run_level(url, max(levels), max(levels), args.latency, args.transport)  # warm-up, untimed
        print(
            f"\nopenai backend vs local server (separate process), {args.latency * 1000:.0f} ms per call, "
            f"transport {args.transport}, median of {args.repeat}"
        )
        print(
            "| concurrency | samples | calls/sample | seconds | samples/s | ideal samples/s | % of ideal | runs (%) |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---|")
        for conc in levels:
            n = conc * args.samples_per_slot
            runs = [run_level(url, conc, n, args.latency, args.transport) for _ in range(args.repeat)]
            med = sorted(runs, key=lambda r: r["pct"])[len(runs) // 2]
            spread = ", ".join(f"{r['pct']:.0f}" for r in runs)
            print(
                f"| {conc} | {n} ({med['ok']} ok) | {med['calls']:.2f} | {med['seconds']:.2f} | {med['sps']:.2f} | "
                f"{med['ideal']:.2f} | {med['pct']:.0f} % | {spread} |",
                flush=True,
            )
    finally:
        srv.terminate()
        srv.wait(timeout=10)

    reqs = requests(args.template_samples, "t-")
    write_chains(reqs[:200], ChainConfig())  # warm-up
    rates = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        rep = write_chains(reqs, ChainConfig())
        rates.append(len(reqs) / (time.perf_counter() - t0))
    print(
        f"\ntemplate backend: {statistics.median(rates):.0f} samples/s (median of {args.repeat}; "
        f"{len(rep.ok)}/{len(reqs)} valid), one process"
    )
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
