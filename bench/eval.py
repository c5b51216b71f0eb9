"""Evaluation throughput: an OpenAI-compatible endpoint at several concurrencies, and batching.

* endpoint: ``trainers.evaluate`` against the local test server (``tests/fake_llm_server.py`` in
  its own process, a fixed latency per call), the demo questions at clean + 3 levels; answers/s
  against the ideal ``concurrency / latency``. Everything the harness does per answer is in the
  loop: degrade, PNG data URL, request, parse, score, append to predictions.jsonl.
* transformers: the tiny Qwen2.5-VL on the CPU at batch size 1 and 8 (greedy, fixed new tokens).
* resume: a finished run re-run (reads predictions, rewrites the reports, generates nothing).

Run: ``.venv/bin/python bench/eval.py`` (results in bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chains import _machine  # noqa: E402 - bench/chains.py, next to this file


def endpoint(url: str, concurrency: int, latency: float, tmp: Path, split: str) -> dict:
    from trainers.evaluate import EndpointModel, EvalConfig, evaluate

    out = tmp / f"ep-{concurrency}-{time.monotonic_ns()}"
    cfg = EvalConfig(model="bench", endpoint=url, out=str(out), benchmark="demo", split=split, concurrency=concurrency, seed=0)
    model = EndpointModel("bench", url, concurrency=concurrency)
    t = time.perf_counter()
    run = evaluate(cfg, model=model, progress=False)
    sec = time.perf_counter() - t
    ideal = concurrency / latency
    return {"n": run.generated, "seconds": sec, "aps": run.generated / sec, "ideal": ideal, "pct": 100 * run.generated / sec / ideal}


def transformers_batch(batch: int, tokens: int, tmp: Path, limit: int) -> dict:
    from trainers.evaluate import EvalConfig, TransformersModel, evaluate

    model = TransformersModel("tiny", batch_size=batch, max_new_tokens=tokens)
    out = tmp / f"tf-{batch}"
    cfg = EvalConfig(model="tiny", out=str(out), benchmark="demo", split="train", limit=limit, batch_size=batch, max_new_tokens=tokens)
    t = time.perf_counter()
    run = evaluate(cfg, model=model, progress=False)
    sec = time.perf_counter() - t
    t = time.perf_counter()
    again = evaluate(cfg, progress=False)
    resume = time.perf_counter() - t
    assert again.generated == 0
    return {"n": run.generated, "seconds": sec, "aps": run.generated / sec, "resume": resume}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--limit", type=int, default=16, help="questions for the transformers part")
    args = ap.parse_args()
    os.environ.setdefault("TRITON_INTERPRET", "1")
    print(f"machine: {_machine()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        srv = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "fake_llm_server.py"), "--latency", str(args.latency), "--seconds", "900"],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            url = srv.stdout.readline().strip()
            endpoint(url, 8, args.latency, tmp, "validation")  # warm-up
            print(f"\nendpoint, {args.latency * 1000:.0f} ms per call, demo train split (34 questions) x 4 levels")
            print("| concurrency | answers | seconds | answers/s | ideal | % of ideal |")
            print("|---:|---:|---:|---:|---:|---:|")
            for c in (int(x) for x in args.concurrency.split(",")):
                r = endpoint(url, c, args.latency, tmp, "train")
                print(f"| {c} | {r['n']} | {r['seconds']:.2f} | {r['aps']:.1f} | {r['ideal']:.1f} | {r['pct']:.0f} % |", flush=True)
        finally:
            srv.terminate()
            srv.wait(timeout=10)
        print(f"\ntiny Qwen2.5-VL on the CPU, {args.tokens} new tokens, {args.limit} questions x 4 levels")
        print("| batch size | answers | seconds | answers/s | finished run re-run (s) |")
        print("|---:|---:|---:|---:|---:|")
        for b in (1, 8):
            r = transformers_batch(b, args.tokens, tmp, args.limit)
            print(f"| {b} | {r['n']} | {r['seconds']:.2f} | {r['aps']:.1f} | {r['resume']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
