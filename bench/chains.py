"""Benchmark of the chain writer.

* openai backend against the local OpenAI-compatible test server with a fixed latency per call
  (default 200 ms): samples/s at concurrency 1, 8, 64, and the share of the ideal throughput
  (concurrency / (latency × calls per sample)). Target: >= 85 % of ideal at 64.
* template backend: samples/s.

Run:  .venv/bin/python bench/chains.py [--latency 0.2] [--samples 64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from factory import degrade  # noqa: E402
from factory.chains.writer import ChainConfig, ChainRequest, write_chains  # noqa: E402


def requests(n: int, tag: str) -> list[ChainRequest]:
    img = np.zeros((32, 32, 3), np.uint8)
    out = []
    for i in range(n):
        r = degrade.sample_recipe("train", 0, f"{tag}{i}")
        out.append(ChainRequest(f"{tag}{i}", f"What is shown in picture {tag}{i}?", ["a cat", "a dog"], "0", "a cat", r, img, img))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--samples", type=int, default=64, help="samples per concurrency level (x4 at 64)")
    ap.add_argument("--template-samples", type=int, default=5000)
    ap.add_argument("--levels", type=str, default="1,8,64", help="concurrency levels, comma-separated")
    args = ap.parse_args()

    # The server runs in its own process so its threads do not share this process's GIL.
    import subprocess

    srv = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parents[1] / "tests" / "fake_llm_server.py"), "--latency", str(args.latency), "--seconds", "300"],
        stdout=subprocess.PIPE, text=True,
    )
    url = srv.stdout.readline().strip()
    print(f"openai backend vs local server (separate process), {args.latency * 1000:.0f} ms per call, no cache")
    print("| concurrency | samples | calls/sample | seconds | samples/s | ideal samples/s | % of ideal |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for conc in [int(x) for x in args.levels.split(",")]:
        n = args.samples if conc < 64 else args.samples * 4
        if conc == 1:
            n = max(4, args.samples // 8)
        reqs = requests(n, f"c{conc}-")
        with tempfile.TemporaryDirectory() as d:
            cfg = ChainConfig(backend="openai", model="fake", base_url=url, api_key="bench", concurrency=conc, cache_dir=d, timeout=30)
            t0 = time.perf_counter()
            rep = write_chains(reqs, cfg)
            dt = time.perf_counter() - t0
        calls = rep.usage["requests"] / n
        ok = sum(r.ok for r in rep.results)
        sps = n / dt
        ideal = conc / (args.latency * calls)
        print(f"| {conc} | {n} ({ok} ok) | {calls:.2f} | {dt:.2f} | {sps:.2f} | {ideal:.2f} | {100 * sps / ideal:.0f} % |")
    srv.terminate()
    srv.wait(timeout=10)

    reqs = requests(args.template_samples, "t-")
    t0 = time.perf_counter()
    rep = write_chains(reqs, ChainConfig())
    dt = time.perf_counter() - t0
    print(f"\ntemplate backend: {len(reqs) / dt:.0f} samples/s ({sum(r.ok for r in rep.results)}/{len(reqs)} valid), one core")


if __name__ == "__main__":
    main()
