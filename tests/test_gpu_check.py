"""bench/gpu_check.py, the parts that run without a GPU: the 3B shape (checked against the published
parameter count on the meta device) and the whole flow with the tiny model, both backends (the
Unsloth one through the stand-in of tests/stand_ins)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "gpu_check.py"


def _run(args: list[str], tmp: Path, *, stand_in: bool = False) -> subprocess.CompletedProcess:
    path = ([str(ROOT / "tests" / "stand_ins")] if stand_in else []) + [str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_DATASETS_CACHE": str(tmp / "hf-datasets-cache"), "ROBUST_R1_TINY_DIR": str(tmp / "tiny")}
    env.pop("OUT", None)
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=1200)


def test_dry_run_builds_the_qwen25_vl_3b_shape(tmp_path):
    res = _run(["--dry-run"], tmp_path)
    assert res.returncode == 0, res.stderr
    billions = float(re.search(r"Qwen2.5-VL-3B shape: ([\d.]+) B parameters", res.stdout).group(1))
    assert abs(billions - 3.75) < 0.02, res.stdout  # the published 3.75 B


def test_tiny_run_measures_both_backends(tmp_path):
    out = tmp_path / "out"
    res = _run(["--tiny", "--backends", "hf,unsloth", "--sft-steps", "1", "--grpo-steps", "1", "--out", str(out)],
               tmp_path, stand_in=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:] + (out / "gpu_check.log").read_text()[-3000:]
    rows = json.loads((out / "gpu_check.json").read_text())
    assert [(r["backend"], r["stage"], r["steps"]) for r in rows] == [
        ("hf", "sft", 1), ("hf", "grpo", 1), ("unsloth", "sft", 1), ("unsloth", "grpo", 1)]
    for r in rows:
        assert r["step_s"] > 0 and r["device"] == "cpu"
    assert {"rewards/r_deg/mean", "rewards/format/mean"} <= set(rows[1]["metrics"]) and "loss" in rows[0]["metrics"]
    table = (out / "gpu_check.md").read_text()
    assert table.count("\n| hf |") == 2 and table.count("\n| unsloth |") == 2
    assert "sft: Unsloth/hf step time" in table and "grpo: Unsloth/hf step time" in table
