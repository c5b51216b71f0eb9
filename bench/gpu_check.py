"""GPU check of the training path (issue 12): both backends on a Qwen2.5-VL-3B-shaped model.

On a machine with one NVIDIA GPU and no internet (``bench/gpu_check.sh`` installs the carried
wheels, then runs this):

1. builds a model with the *shape* of Qwen/Qwen2.5-VL-3B-Instruct (its config.json, below) and
   random weights, saved with an offline tokenizer (nothing is downloaded; the token ids of the
   special tokens follow that tokenizer);
2. builds a 16-row dataset (the trainer tests' fixture, images at 640x480 so the t4 preset's
   448x448 budget gives ~256 image tokens);
3. for each backend (``hf``, ``unsloth``), in a fresh interpreter each (import order matters to
   Unsloth): SFT 5 steps with the ``t4`` preset, then GRPO 3 steps (4 generations, completions up
   to the preset's 1024 tokens) from the SFT adapter;
4. prints one table: median step time (the first step, warm-up, apart), peak GPU memory
   (``torch.cuda.max_memory_reserved``), the SFT loss and the GRPO rewards, and the Unsloth/hf
   ratios; writes it to OUT/gpu_check.md and OUT/gpu_check.json.

A random model writes random tokens, so every GRPO completion runs to the 1024-token cap: the
timings are the worst case of the preset, not a measure of learning.

CPU modes (tested in tests/test_gpu_check.py): ``--dry-run`` builds the 3B config on the meta
device and checks its parameter count (3.75 B, as published) without weights; ``--tiny`` runs the
whole flow with the tiny Qwen2.5-VL on the CPU (with ``--backends hf,unsloth`` when an ``unsloth``
package imports, e.g. the tests' stand-in).

Run:  bench/gpu_check.sh                         (both backends; the command in bench/README.md)
      python bench/gpu_check.py --dry-run        (anywhere)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

# Qwen/Qwen2.5-VL-3B-Instruct, config.json (on the Hub; also in unsloth/Qwen2.5-VL-3B-Instruct-unsloth-bnb-4bit):
# hidden_size 2048, intermediate_size 11008, num_hidden_layers 36, num_attention_heads 16, num_key_value_heads 2,
# vocab_size 151936, rope_theta 1e6, mrope_section [16, 24, 24], rms_norm_eps 1e-6, tie_word_embeddings true,
# vision_config: hidden_size 1280, out_hidden_size 2048, depth 32, intermediate_size 3420, num_heads 16,
# patch_size 14, spatial_merge_size 2, temporal_patch_size 2, window_size 112, fullatt_block_indexes [7, 15, 23, 31],
# tokens_per_second 2.
QWEN25_VL_3B = {
    "text": dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
                 num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=128000, rms_norm_eps=1e-6,
                 hidden_act="silu", rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                                     "mrope_section": [16, 24, 24]}),
    "vision": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                   patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                   fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, hidden_act="silu"),
    "tie_word_embeddings": True,
}
PUBLISHED_PARAMS = 3.75e9
"""Qwen2.5-VL-3B-Instruct's parameter count as published (the model card: 3.75B)."""


def qwen25_vl_3b_config(tokenizer):
    """The 3B config with the special-token ids of ``tokenizer`` (shapes unchanged)."""
    from transformers import Qwen2_5_VLConfig

    from trainers.tiny import SPECIAL_TOKENS

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = dict(QWEN25_VL_3B["text"], bos_token_id=None, eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"])
    return Qwen2_5_VLConfig(
        text_config=text, vision_config=dict(QWEN25_VL_3B["vision"]),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=QWEN25_VL_3B["tie_word_embeddings"],
    )


def count_params_meta(config) -> int:
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    return sum(p.numel() for p in model.parameters())


def build_model(out: Path, seed: int = 0) -> Path:
    """Random-weight 3B-shaped Qwen2.5-VL in bf16 on the GPU, saved with the offline processor."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from trainers.tiny import build_processor

    if (out / "config.json").is_file():
        return out
    processor = build_processor(max_pixels=448 * 448)
    config = qwen25_vl_3b_config(processor.tokenizer)
    torch.manual_seed(seed)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2_5_VLForConditionalGeneration(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    os.replace(tmp, out)
    return out


def build_dataset(out: Path, n: int = 16, size: tuple[int, int] = (640, 480)) -> Path:
    """The trainer tests' fixture rows (tests/_train_fixture.py), images resized to ``size``."""
    from datasets import Dataset

    from _train_fixture import CARD, make_rows
    from factory.build import features

    if (out / "README.md").is_file():
        return out
    rows = make_rows(n)
    for r in rows:
        r["image"] = r["image"].resize(size)
    for cfg, part in (("sft", rows[: n // 2]), ("rl", rows[n // 2:]), ("validation", rows[:2])):
        d = out / "data" / cfg
        d.mkdir(parents=True, exist_ok=True)
        name = "validation" if cfg == "validation" else "train"
        Dataset.from_list(part, features=features()).to_parquet(str(d / f"{name}-00000-of-00001.parquet"))
    (out / "README.md").write_text(CARD)
    return out


def worker(a) -> dict:
    """One (backend, stage) run in this fresh interpreter; returns its measurements."""
    from trainers.models import resolve_backend

    backend = resolve_backend(a.backend)  # first: imports Unsloth before TRL when it is the backend
    import torch
    from transformers import TrainerCallback

    from trainers.presets import settings_for
    from trainers.run import RunConfig

    gpu = torch.cuda.is_available()
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if gpu:
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if gpu:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)

    over = {"model": a.model, "backend": backend, "max_steps": a.steps, "seed": 0}
    if not a.four_bit:
        over["load_in_4bit"] = False
    s = settings_for(a.preset, a.stage, overrides=over)
    run = RunConfig(dataset=a.dataset, output=a.output, settings=s, resume=False)
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    if a.stage == "sft":
        from trainers.sft import train_sft

        res = train_sft(run, callbacks=[StepTimer()])
    else:
        from trainers.grpo import train_grpo

        res = train_grpo(run, callbacks=[StepTimer()])
    metrics = {}
    for key in sorted({k for h in res.log_history for k in h}):
        if key == "loss" or key == "reward" or (key.startswith("rewards/") and key.endswith("/mean")):
            vals = res.metric(key)
            metrics[key] = round(sum(vals) / len(vals), 4) if vals else None
    return {
        "backend": res.backend, "stage": a.stage, "steps": res.global_step,
        "first_step_s": round(times[0], 3) if times else None,
        "step_s": round(statistics.median(times[1:] or times), 3) if times else None,
        "peak_gb": round(torch.cuda.max_memory_reserved() / 2**30, 2) if gpu else None,
        "peak_allocated_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if gpu else None,
        "device": torch.cuda.get_device_name(0) if gpu else "cpu",
        "max_completion_length": s.max_completion_length if a.stage == "grpo" else None,
        "load_in_4bit": s.load_in_4bit, "metrics": metrics,
    }


def run_worker(backend: str, stage: str, model: str, dataset: Path, output: Path, steps: int, preset: str,
               four_bit: bool, log: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--backend", backend, "--stage", stage,
           "--model", model, "--dataset", str(dataset), "--output", str(output), "--steps", str(steps),
           "--preset", preset] + ([] if four_bit else ["--no-4bit"])
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=fh, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("GPU_CHECK_RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"backend": backend, "stage": stage, "error": f"exit {proc.returncode}; see {log}",
                "wall_s": round(time.perf_counter() - t0, 1)}
    res = json.loads(lines[-1][len("GPU_CHECK_RESULT "):])
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    return res


def table(rows: list[dict]) -> str:
    out = ["| backend | stage | steps | step s (median) | first step s | peak GB (reserved) | loss / rewards |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['backend']} | {r['stage']} | failed | | | | {r['error']} |")
            continue
        m = r["metrics"]
        if r["stage"] == "sft":
            what = f"loss {m.get('loss')}"
        else:
            what = ", ".join(f"{k.split('/')[1]} {v}" for k, v in m.items() if k.startswith("rewards/"))
        out.append(f"| {r['backend']} | {r['stage']} | {r['steps']} | {r['step_s']} | {r['first_step_s']} | "
                   f"{r['peak_gb']} | {what} |")
    by = {(r["backend"], r["stage"]): r for r in rows if "error" not in r}
    for stage in ("sft", "grpo"):
        u, h = by.get(("unsloth", stage)), by.get(("hf", stage))
        if u and h and u["step_s"] and h["step_s"]:
            mem = f"{u['peak_gb'] / h['peak_gb']:.2f}" if u["peak_gb"] and h["peak_gb"] else "n/a"
            out.append(f"\n{stage}: Unsloth/hf step time {u['step_s'] / h['step_s']:.2f}, peak memory {mem}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description="GPU check of both training backends (see the module docstring).")
    ap.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "bench" / "gpu_check_out"))
    ap.add_argument("--work", default=None, help="scratch folder (model, data, runs); default OUT/work")
    ap.add_argument("--backends", default="hf,unsloth")
    ap.add_argument("--sft-steps", type=int, default=5)
    ap.add_argument("--grpo-steps", type=int, default=3)
    ap.add_argument("--tiny", action="store_true", help="the tiny model and preset on any machine (CPU test)")
    ap.add_argument("--dry-run", action="store_true", help="build the 3B config on the meta device and stop")
    ap.add_argument("--no-4bit", dest="four_bit", action="store_false", help="16-bit LoRA (no bitsandbytes)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for name in ("backend", "stage", "model", "dataset", "output", "preset"):
        ap.add_argument(f"--{name}", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print("GPU_CHECK_RESULT " + json.dumps(worker(a)), flush=True)
        return
    from trainers.tiny import build_tokenizer

    n = count_params_meta(qwen25_vl_3b_config(build_tokenizer()))
    print(f"Qwen2.5-VL-3B shape: {n / 1e9:.3f} B parameters (published: {PUBLISHED_PARAMS / 1e9:.2f} B)")
    if a.dry_run:
        return
    out = Path(a.out)
    work = Path(a.work) if a.work else out / "work"
    work.mkdir(parents=True, exist_ok=True)
    log = out / "gpu_check.log"
    dataset = build_dataset(work / "ds")
    if a.tiny:
        model, preset = "tiny", "tiny"
    else:
        t0 = time.perf_counter()
        model, preset = str(build_model(work / "qwen25-vl-3b-shape")), "t4"
        print(f"model built and saved in {time.perf_counter() - t0:.0f} s: {model}", flush=True)
    rows = []
    for backend in [b.strip() for b in a.backends.split(",") if b.strip()]:
        sft_dir, grpo_dir = work / f"{backend}-sft", work / f"{backend}-grpo"
        r = run_worker(backend, "sft", model, dataset, sft_dir, a.sft_steps, preset, a.four_bit, log)
        rows.append(r)
        print(json.dumps(r), flush=True)
        if "error" in r:
            continue
        r = run_worker(backend, "grpo", str(sft_dir), dataset, grpo_dir, a.grpo_steps, preset, a.four_bit, log)
        rows.append(r)
        print(json.dumps(r), flush=True)
    text = table(rows)
    device = next((r["device"] for r in rows if "device" in r), "?")
    header = (f"GPU check on {device}: preset {preset}, SFT {a.sft_steps} steps, GRPO {a.grpo_steps} steps "
              f"({'4-bit' if a.four_bit else '16-bit'} LoRA)\n\n")
    print("\n" + header + text)
    (out / "gpu_check.md").write_text(header + text + "\n")
    (out / "gpu_check.json").write_text(json.dumps(rows, indent=2) + "\n")
    if any("error" in r for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
