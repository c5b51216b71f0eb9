"""Evaluation throughput: an OpenAI-compatible endpoint at several concurrencies, and batching.

* endpoint: ``trainers.evaluate`` against the local test server (``tests/fake_llm_server.py`` in
  its own process, a fixed latency per call) at clean + 3 levels; answers/s against the ideal
  ``concurrency / latency``. Everything the harness does per answer is in the loop: decode, degrade,
  fit to the pixel budget, PNG data URL, request, parse, score, append to predictions.jsonl; and
  so is what it does once per run (open the benchmark and the folder, write the reports and the
  plot), which a short run cannot amortise.
  Two workloads: ``demo`` (the bundled demo questions, 34 x 4 = 136 answers: the historical
  benchmark) and ``sized`` (the same photos as JPEG in a local parquet, enough questions for about
  ``--seconds`` of ideal run time at each concurrency, so the once-per-run costs weigh little).
  Each configuration runs ``--repeat`` times; the best and the median are printed with the CPU
  milliseconds per answer of this process (the client) and of the server process.
* transformers: the tiny Qwen2.5-VL on the CPU at batch size 1 and 8 (greedy, fixed new tokens).
* resume: a finished run re-run (reads predictions, rewrites the reports, generates nothing).
* ``--stages``: the client's CPU per answer, step by step (one thread, sequential), which bounds what
  the endpoint part can reach on a machine's cores.

Run: ``.venv/bin/python bench/eval.py`` (results in bench/README.md). Other engineers' jobs on the
machine slow every number: the load average is printed with each row.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _machine import machine  # noqa: E402 - bench/_machine.py, next to this file

LEVELS = (0.0, 0.23, 0.45, 0.9)


def sized_benchmark(tmp: Path, questions: int) -> Path:
    """A local parquet benchmark of ``questions`` rows: the demo train photos as JPEG (q 95), cycled
    under distinct ids, with their questions and options."""
    import cv2
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainers.eval.benchmarks import load_benchmark

    demo = [s for s in load_benchmark("demo", split="train") if hasattr(s, "load_image")]
    jpegs = [cv2.imencode(".jpg", s.load_image()[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
             for s in demo]
    rows = []
    for i in range(questions):
        s = demo[i % len(demo)]
        rows.append({"qid": f"q{i}", "img": {"bytes": jpegs[i % len(demo)], "path": None}, "q": s.question,
                     "opts": list(s.choices), "label": int(s.answer)})
    path = tmp / f"sized-{questions}.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _cpu(pid: int | None = None) -> float:
    """CPU seconds (user + system) of this process, or of process ``pid`` (Linux ``/proc``)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def endpoint(url: str, concurrency: int, latency: float, tmp: Path, bench: str, server_pid: int) -> dict:
    from trainers.evaluate import EndpointModel, EvalConfig, evaluate

    out = tmp / f"ep-{concurrency}-{time.monotonic_ns()}"
    extra = {} if bench == "demo" else {"columns": "id=qid,image=img,question=q,choices=opts,answer=label"}
    split = "train"
    cfg = EvalConfig(model="bench", endpoint=url, out=str(out), benchmark=bench, split=split, concurrency=concurrency,
                     seed=0, **extra)
    model = EndpointModel("bench", url, concurrency=concurrency)
    c0, s0 = _cpu(), _cpu(server_pid)
    t = time.perf_counter()
    run = evaluate(cfg, model=model, progress=False)
    sec = time.perf_counter() - t
    c1, s1 = _cpu(), _cpu(server_pid)
    ideal = concurrency / latency
    n = run.generated
    return {"n": n, "seconds": sec, "aps": n / sec, "ideal": ideal, "pct": 100 * n / sec / ideal,
            "client_ms": 1000 * (c1 - c0) / n, "server_ms": 1000 * (s1 - s0) / n, "load": os.getloadavg()[0]}


def stages(passes: int = 3, max_pixels: int = 448 * 448) -> dict[str, float]:
    """CPU ms per answer of each client step, one thread, sequential (``time.process_time``): the
    demo train questions as JPEG at clean + 3 levels, ``passes`` times."""
    import base64

    import cv2
    import numpy as np

    from factory.chains.backends import chat_messages
    from factory.chains.llm import DiskCache, request_blob
    from factory.degrade import render
    from factory.degrade.image import encode_png
    from trainers.eval.benchmarks import load_benchmark
    from trainers.eval.models import budget_side
    from trainers.eval.runner import eval_recipe, make_prompt
    from trainers.eval.scoring import score_output

    demo = [s for s in load_benchmark("demo", split="train") if hasattr(s, "load_image")]
    jpegs = [cv2.imencode(".jpg", s.load_image()[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1] for s in demo]
    steps = ["decode the JPEG (once per question)", "draw the recipe and degrade", "resize to the pixel budget",
             "lossless PNG", "base64", "prompt", "request JSON + key", "score"]
    acc = dict.fromkeys(steps, 0.0)
    clock, n = time.process_time, 0

    def timed(step: str, fn: Any) -> Any:
        t = clock()
        out = fn()
        acc[step] += clock() - t
        return out

    for _ in range(passes):
        for s, jpg in zip(demo, jpegs, strict=True):
            img = timed(steps[0], lambda jpg=jpg: cv2.cvtColor(cv2.imdecode(jpg, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
            for lv in LEVELS:
                recipe = eval_recipe(s.id, lv, 0)
                im = timed(steps[1], lambda img=img, r=recipe: img if r is None else render(img, r))
                side = budget_side(im.shape, max_pixels)
                h, w = im.shape[:2]
                size = (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w)))) if side else None
                small = timed(steps[2], lambda im=im, size=size: im if size is None else
                              cv2.resize(im, size, interpolation=cv2.INTER_AREA))
                png = timed(steps[3], lambda small=small: encode_png(np.ascontiguousarray(small)))
                url = timed(steps[4], lambda png=png: "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
                prompt = timed(steps[5], lambda s=s: make_prompt("robust", s.question, s.choices))
                body = {"model": "bench", "messages": chat_messages(prompt, [url]), "temperature": 0.0,
                        "max_tokens": 1024, "seed": 0}
                timed(steps[6], lambda body=body: DiskCache.key(request_blob(body)))
                timed(steps[7], lambda s=s, lv=lv, r=recipe: score_output("<ANSWER>1<ANSWER_END>", s, lv, r))
                n += 1
    return {k: 1000 * v / n for k, v in acc.items()} | {"answers": n}


def transformers_batch(batch: int, tokens: int, tmp: Path, limit: int) -> dict:
    from trainers.evaluate import EvalConfig, TransformersModel, evaluate

    model = TransformersModel("tiny", batch_size=batch, max_new_tokens=tokens)
    out = tmp / f"tf-{batch}"
    cfg = EvalConfig(model="tiny", out=str(out), benchmark="demo", split="train", limit=limit, batch_size=batch,
                     max_new_tokens=tokens)
    t = time.perf_counter()
    run = evaluate(cfg, model=model, progress=False)
    sec = time.perf_counter() - t
    t = time.perf_counter()
    again = evaluate(cfg, progress=False)
    resume = time.perf_counter() - t
    assert again.generated == 0
    return {"n": run.generated, "seconds": sec, "aps": run.generated / sec, "resume": resume}


def _row(c: int, runs: list[dict]) -> str:
    best = max(runs, key=lambda r: r["aps"])
    med = statistics.median(r["aps"] for r in runs)
    ideal = runs[0]["ideal"]
    cm = statistics.median(r["client_ms"] for r in runs)
    sm = statistics.median(r["server_ms"] for r in runs)
    loads = f"{min(r['load'] for r in runs):.1f}–{max(r['load'] for r in runs):.1f}"
    return (f"| {c} | {runs[0]['n']} | {best['aps']:.1f} ({100 * best['aps'] / ideal:.0f} %) | {med:.1f} "
            f"({100 * med / ideal:.0f} %) | {ideal:.0f} | {cm:.1f} | {sm:.1f} | {loads} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--workloads", default="demo,sized", help="demo and/or sized")
    ap.add_argument("--seconds", type=float, default=6.0, help="ideal run time of a sized workload")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--limit", type=int, default=16, help="questions for the transformers part")
    ap.add_argument("--no-transformers", action="store_true")
    ap.add_argument("--no-endpoint", action="store_true")
    ap.add_argument("--stages", action="store_true", help="only the client's CPU per answer, step by step")
    args = ap.parse_args()
    os.environ.setdefault("TRITON_INTERPRET", "1")
    print(f"machine: {machine('openai')}; load average {os.getloadavg()[0]:.1f} at the start")
    if args.stages:
        res = stages()
        print(f"\nclient CPU per answer, one thread, sequential ({res.pop('answers')} answers)")
        print("| step | ms per answer |\n|---|---:|")
        for k, v in res.items():
            print(f"| {k} | {v:.2f} |")
        print(f"| **total** | **{sum(res.values()):.2f}** |")
        return
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        srv = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "fake_llm_server.py"), "--latency", str(args.latency), "--seconds",
             "3600"], stdout=subprocess.PIPE, text=True,
        )
        try:
            url = srv.stdout.readline().strip()
            if not args.no_endpoint:
                endpoint(url, 8, args.latency, tmp, "demo", srv.pid)  # warm-up (imports, first connections)
            for workload in [] if args.no_endpoint else args.workloads.split(","):
                print(f"\nendpoint, {args.latency * 1000:.0f} ms per call, workload {workload}, "
                      f"{args.repeat} runs per row (best and median)")
                print("| concurrency | answers | best answers/s (% of ideal) | median (%) | ideal | "
                      "client CPU ms/answer | server CPU ms/answer | load |")
                print("|---:|---:|---:|---:|---:|---:|---:|---|")
                for c in (int(x) for x in args.concurrency.split(",")):
                    bench = "demo"
                    if workload == "sized":
                        questions = max(34, math.ceil(c / args.latency * args.seconds / len(LEVELS)))
                        bench = str(sized_benchmark(tmp, questions))
                    runs = [endpoint(url, c, args.latency, tmp, bench, srv.pid) for _ in range(args.repeat)]
                    print(_row(c, runs), flush=True)
        finally:
            srv.terminate()
            srv.wait(timeout=10)
        if args.no_transformers:
            return
        print(f"\ntiny Qwen2.5-VL on the CPU, {args.tokens} new tokens, {args.limit} questions x 4 levels")
        print("| batch size | answers | seconds | answers/s | finished run re-run (s) |")
        print("|---:|---:|---:|---:|---:|")
        for b in (1, 8):
            r = transformers_batch(b, args.tokens, tmp, args.limit)
            print(f"| {b} | {r['n']} | {r['seconds']:.2f} | {r['aps']:.1f} | {r['resume']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
