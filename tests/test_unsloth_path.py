"""The Unsloth path without a GPU: SFT -> GRPO from the SFT adapter -> infer, all with
``--backend unsloth``, against the stand-in package in tests/stand_ins/unsloth (which mimics
unsloth 2026.10.9's contracts, cited there, and logs what happened).

Each run is a fresh interpreter (``python -m factory.cli``), the way a user runs the CLI, because
import order is the thing under test. The tests fail if any of these comes back (issue 12):

1. GRPO from the SFT adapter wraps it in a second LoRA (the stand-in's ``get_peft_model`` raises
   "You already added LoRA adapters", as Unsloth's does);
2. trl/transformers/peft are imported before unsloth on the unsloth path (the stand-in records
   ``already_imported`` exactly as ``unsloth/_gpu_init.py`` computes it), the trainers used are not
   Unsloth's patched ones, or GRPO rollouts are generated in training mode; and the hf/CPU path
   imports unsloth at all;
5. infer ignores the pixel budget saved with the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _train_fixture import make_dataset

ROOT = Path(__file__).resolve().parents[1]
STAND_INS = Path(__file__).resolve().parent / "stand_ins"
TINY_PIXELS = 56 * 56  # the tiny preset's max_pixels (trainers/presets.py), != the 448x448 default


def cli(args: list[str], log: Path, tmp: Path, *, stand_in: bool = True) -> subprocess.CompletedProcess:
    path = [str(STAND_INS)] if stand_in else []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*path, str(ROOT)]),
        "UNSLOTH_STANDIN_LOG": str(log),
        "ROBUST_R1_TINY_DIR": str(tmp / "tiny-models"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(tmp / "hf-datasets-cache"),
        "TOKENIZERS_PARALLELISM": "false",
    }
    return subprocess.run([sys.executable, "-m", "factory.cli", *args], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=900)


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


@pytest.fixture(scope="module")
def unsloth_runs(tmp_path_factory):
    """SFT (2 steps) -> GRPO from the SFT output (1 step) -> infer, each with --backend unsloth."""
    tmp = tmp_path_factory.mktemp("unsloth")
    ds = make_dataset(tmp / "ds", n=8)
    common = ["--preset", "tiny", "--dataset", str(ds), "--backend", "unsloth"]
    logs = {k: tmp / f"{k}.jsonl" for k in ("sft", "grpo", "infer")}
    sft = cli(["train", "sft", *common, "--output", str(tmp / "sft"), "--max-steps", "2", "--merge"], logs["sft"], tmp)
    assert sft.returncode == 0, sft.stdout + sft.stderr
    grpo = cli(["train", "grpo", *common, "--model", str(tmp / "sft"), "--output", str(tmp / "grpo"),
                "--max-steps", "1"], logs["grpo"], tmp)
    from PIL import Image

    Image.new("RGB", (640, 480), (30, 120, 200)).save(tmp / "img.png")
    infer = cli(["infer", "--model", str(tmp / "grpo"), "--image", str(tmp / "img.png"), "--question", "What colour?",
                 "--backend", "unsloth", "--max-new-tokens", "8", "--json"], logs["infer"], tmp)
    return {"tmp": tmp, "sft": sft, "grpo": grpo, "infer": infer, "logs": logs}


def test_sft_through_unsloth_imports_it_first_and_uses_its_trainer(unsloth_runs):
    ev = events(unsloth_runs["logs"]["sft"])
    imports = [e for e in ev if e["event"] == "import"]
    assert imports and all(e["already_imported"] == [] for e in imports), imports  # item 2
    assert "Unsloth should be imported before" not in unsloth_runs["sft"].stderr
    assert [e["cls"] for e in ev if e["event"] == "trainer_init"] == ["UnslothSFTTrainer"]
    loads = [e for e in ev if e["event"] == "from_pretrained"]
    assert len(loads) == 1 and not loads[0]["is_peft"] and loads[0]["load_in_4bit"] is False
    peft = [e for e in ev if e["event"] == "get_peft_model"]
    assert len(peft) == 1 and not peft[0]["refused"] and peft[0]["finetune_vision_layers"] is False
    out = unsloth_runs["tmp"] / "sft"
    assert "backend: unsloth; steps: 2" in unsloth_runs["sft"].stdout
    assert (out / "adapter_config.json").is_file() and (out / "robust_r1_settings.json").is_file()
    # --merge went through Unsloth's save_pretrained_merged, and the merged folder keeps the settings
    assert [e["save_method"] for e in ev if e["event"] == "save_pretrained_merged"] == ["merged_16bit"]
    assert (out / "merged" / "config.json").is_file() and (out / "merged" / "robust_r1_settings.json").is_file()


def test_grpo_continues_the_sft_adapter_without_a_second_lora(unsloth_runs):
    run = unsloth_runs["grpo"]
    assert run.returncode == 0, run.stdout + run.stderr  # item 1: a second get_peft_model raises
    ev = events(unsloth_runs["logs"]["grpo"])
    assert all(e["already_imported"] == [] for e in ev if e["event"] == "import")  # item 2
    loads = [e for e in ev if e["event"] == "from_pretrained"]
    assert len(loads) == 1 and loads[0]["is_peft"] and loads[0]["returns_peft"]
    assert [e for e in ev if e["event"] == "get_peft_model"] == []
    assert [e["cls"] for e in ev if e["event"] == "trainer_init"] == ["UnslothGRPOTrainer"]
    gens = [e for e in ev if e["event"] == "generate"]
    assert gens and not any(e["training"] or e["gc_active"] for e in gens), gens  # rollouts in inference mode
    assert "backend: unsloth; steps: 1" in run.stdout and "rewards/r_deg/mean" in run.stdout


def test_infer_through_unsloth_uses_the_saved_pixel_budget(unsloth_runs):
    run = unsloth_runs["infer"]
    assert run.returncode == 0, run.stdout + run.stderr
    obj = json.loads(run.stdout[run.stdout.index("{"):])
    assert obj["max_pixels"] == TINY_PIXELS  # item 5: the budget in robust_r1_settings.json, not 448x448
    ev = events(unsloth_runs["logs"]["infer"])
    assert all(e["already_imported"] == [] for e in ev if e["event"] == "import")
    assert [e["is_peft"] for e in ev if e["event"] == "from_pretrained"] == [True]
    assert [e["event"] for e in ev if e["event"].startswith("for_")] == ["for_inference"]


def test_the_hf_and_auto_paths_never_import_unsloth(unsloth_runs):
    """With the stand-in importable, --backend auto on a machine without CUDA trains with hf and
    never imports unsloth; --backend hf inference neither."""
    tmp = unsloth_runs["tmp"]
    log = tmp / "hf.jsonl"
    sft = cli(["train", "sft", "--preset", "tiny", "--dataset", str(tmp / "ds"), "--output", str(tmp / "hf-sft"),
               "--backend", "auto", "--max-steps", "1", "--limit", "2"], log, tmp)
    assert sft.returncode == 0, sft.stdout + sft.stderr
    assert "backend: hf; steps: 1" in sft.stdout
    inf = cli(["infer", "--model", str(tmp / "sft"), "--image", str(tmp / "img.png"), "--question", "What colour?",
               "--backend", "hf", "--max-new-tokens", "4", "--json"], log, tmp)
    assert inf.returncode == 0, inf.stdout + inf.stderr
    assert events(log) == []  # no event at all: `import unsloth` never ran


def test_the_stand_in_detects_a_late_import(tmp_path):
    """The detector the tests above rely on can fail: trl imported first is recorded and warned
    about, as unsloth/_gpu_init.py does."""
    code = (
        "import warnings, trl\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import unsloth\n"
        "print('WARNED' if any('Unsloth should be imported before' in str(x.message) for x in w) else '')"
    )
    log = tmp_path / "late.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(STAND_INS), str(ROOT)]), "UNSLOTH_STANDIN_LOG": str(log)}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "WARNED" in res.stdout
    first = [e for e in events(log) if e["event"] == "import"]
    assert len(first) == 1 and "trl" in first[0]["already_imported"]
