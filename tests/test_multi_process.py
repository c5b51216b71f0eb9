"""More than one GPU: the same commands under ``accelerate launch`` (DDP), shown here with two CPU
processes (gloo), and the shipped accelerate / DeepSpeed configs checked against the keys their
libraries accept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from _train_fixture import make_dataset

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def launch(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(tmp / "hf-datasets-cache"),
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
    }
    cmd = [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch",
           "--config_file", str(CONFIGS / "accelerate" / "cpu_2proc.yaml"), "-m", "factory.cli", *args]
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)


def test_two_processes_train_tiny_sft_then_grpo(tmp_path):
    ds = make_dataset(tmp_path / "ds", n=8)
    common = ["--preset", "tiny", "--dataset", str(ds), "--backend", "hf", "--max-steps", "1"]
    sft = launch(["train", "sft", *common, "--output", str(tmp_path / "sft")], tmp_path)
    assert sft.returncode == 0, sft.stdout[-3000:] + sft.stderr[-3000:]
    # one report, from the main process, naming both processes
    assert sft.stdout.count("backend: hf; steps: 1") == 1 and "processes: 2" in sft.stdout, sft.stdout
    assert (tmp_path / "sft" / "adapter_config.json").is_file()
    grpo_args = ["train", "grpo", *common, "--model", str(tmp_path / "sft"), "--output", str(tmp_path / "grpo")]
    grpo = launch(grpo_args, tmp_path)
    assert grpo.returncode == 0, grpo.stdout[-3000:] + grpo.stderr[-3000:]
    assert grpo.stdout.count("backend: hf; steps: 1") == 1 and "processes: 2" in grpo.stdout, grpo.stdout
    assert "rewards/r_deg/mean" in grpo.stdout
    assert (tmp_path / "grpo" / "adapter_config.json").is_file()
    assert json.loads((tmp_path / "grpo" / "robust_r1_settings.json").read_text())["model"] == str(tmp_path / "sft")


@pytest.mark.parametrize("name", sorted(p.name for p in (CONFIGS / "accelerate").glob("*.yaml")))
def test_accelerate_configs_load(name):
    """Every accelerate config loads with accelerate's own loader (which rejects unknown keys),
    and its deepspeed_config keys are options of `accelerate launch`."""
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    cfg = ClusterConfig.from_yaml_file(str(CONFIGS / "accelerate" / name))
    raw = yaml.safe_load((CONFIGS / "accelerate" / name).read_text())
    options = {a.dest for a in launch_command_parser()._actions}
    ds = raw.get("deepspeed_config") or {}
    assert set(ds) <= options, set(ds) - options
    if ds.get("deepspeed_config_file"):
        # accelerate refuses these next to a DeepSpeed file (utils/dataclasses.py, _deepspeed_config_checks)
        assert not {"zero_stage", "offload_optimizer_device", "offload_param_device", "gradient_accumulation_steps",
                    "gradient_clipping", "zero3_save_16bit_model"} & set(ds)
        assert "mixed_precision" not in raw
        assert (ROOT / ds["deepspeed_config_file"]).is_file()
        assert cfg.distributed_type.value == "DEEPSPEED"


# DeepSpeed's config keys: deepspeed/runtime/constants.py (top level) and DeepSpeedZeroConfig in
# deepspeed/runtime/zero/config.py (zero_optimization; stage-3 names are its field aliases).
DS_TOP = {"fp16", "bf16", "zero_optimization", "gradient_accumulation_steps", "gradient_clipping", "train_batch_size",
          "train_micro_batch_size_per_gpu", "steps_per_print", "wall_clock_breakdown", "optimizer", "scheduler"}
DS_ZERO = {"stage", "contiguous_gradients", "reduce_scatter", "reduce_bucket_size", "allgather_partitions",
           "allgather_bucket_size", "overlap_comm", "offload_param", "offload_optimizer", "sub_group_size",
           "stage3_prefetch_bucket_size", "stage3_param_persistence_threshold", "stage3_model_persistence_threshold",
           "stage3_max_live_parameters", "stage3_max_reuse_distance", "stage3_gather_16bit_weights_on_model_save",
           "round_robin_gradients", "ignore_unused_parameters"}
DS_FP16 = {"enabled", "auto_cast", "loss_scale", "initial_scale_power", "loss_scale_window", "hysteresis",
           "min_loss_scale"}


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_configs_use_deepspeeds_keys(stage):
    cfg = json.loads((CONFIGS / "deepspeed" / f"zero{stage}.json").read_text())
    assert set(cfg) <= DS_TOP and set(cfg["zero_optimization"]) <= DS_ZERO and set(cfg["fp16"]) <= DS_FP16
    assert cfg["zero_optimization"]["stage"] == stage
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size"):
        assert cfg[key] == "auto"  # filled from the training arguments by transformers (HfTrainerDeepSpeedConfig)
    assert cfg["bf16"]["enabled"] == "auto" and cfg["fp16"]["enabled"] == "auto"
    for sub in ("offload_optimizer", "offload_param"):
        if sub in cfg["zero_optimization"]:
            assert cfg["zero_optimization"][sub]["device"] in ("none", "cpu", "nvme")
    if stage == 3:
        assert cfg["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
