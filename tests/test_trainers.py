"""Trainers on the CPU with the tiny Qwen2.5-VL: SFT, GRPO, resume, inference, presets."""

from __future__ import annotations

import json
import logging
import math

import pytest
from PIL import Image
from typer.testing import CliRunner

from _train_fixture import make_dataset
from factory.cli import app
from trainers.data import fit_pixels
from trainers.models import resolve_backend
from trainers.presets import PRESETS, parse_overrides, settings_for

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ds"), n=8)


@pytest.fixture(scope="module")
def sft_out(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    res = runner.invoke(
        app,
        [
            "train",
            "sft",
            "--preset",
            "tiny",
            "--dataset",
            str(dataset),
            "--output",
            str(out),
            "--max-steps",
            "4",
            "--merge",
        ],
    )
    assert res.exit_code == 0, res.output
    return out, res.output


def _batch_loss(model, processor, dataset) -> float:
    import torch

    from trainers.data import load_factory_dataset

    ds = load_factory_dataset(dataset, "sft")
    texts, images = [], []
    for row in ds.select(range(4)):
        msgs = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": row["prompt"]}]},
            {"role": "assistant", "content": [{"type": "text", "text": row["solution"]}]},
        ]
        texts.append(processor.apply_chat_template(msgs, tokenize=False))
        images.append(fit_pixels(row["image"], 56 * 56))
    inputs = processor(text=texts, images=images, return_tensors="pt", padding=True)
    labels = inputs["input_ids"].clone()
    labels[inputs["attention_mask"] == 0] = -100
    with torch.no_grad():
        return float(model(**inputs, labels=labels).loss)


def test_sft_lowers_the_training_loss_and_saves_a_reloadable_adapter(sft_out, dataset):
    out, output = sft_out
    assert "backend: hf; steps: 4" in output
    losses = [float(x) for x in output.split("loss: ")[1].split("\n")[0].split()]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert (out / "adapter_config.json").is_file() and (out / "base" / "config.json").is_file()
    from trainers.models import load_for_inference
    from trainers.tiny import build_tiny_model

    base, processor = build_tiny_model(seed=0)
    trained, _ = load_for_inference(str(out), backend="hf")
    before = _batch_loss(base.eval(), processor, dataset)
    after = _batch_loss(trained, processor, dataset)
    assert after < before - 0.05, (before, after)
    # --merge wrote a plain (non-adapter) 16-bit model with the same behaviour as the adapter
    assert (out / "merged" / "config.json").is_file() and not (out / "merged" / "adapter_config.json").exists()
    from safetensors import safe_open

    with safe_open(str(next((out / "merged").glob("*.safetensors"))), "pt") as fh:
        assert {fh.get_slice(k).get_dtype() for k in list(fh.keys())[:20]} == {"BF16"}
    merged, _ = load_for_inference(str(out / "merged"), backend="hf")
    assert abs(_batch_loss(merged, processor, dataset) - after) < 0.05


def test_grpo_logs_every_reward_and_resumes(sft_out, dataset, tmp_path):
    out, _ = sft_out
    out2 = tmp_path / "grpo"
    args = ["train", "grpo", "--preset", "tiny", "--dataset", str(dataset), "--model", str(out), "--output", str(out2)]
    res = runner.invoke(app, [*args, "--max-steps", "2"])
    assert res.exit_code == 0, res.output
    for name in ("r_deg", "r_len", "accuracy", "format"):
        line = next(x for x in res.output.splitlines() if x.startswith(f"rewards/{name}/mean:"))
        assert len(line.split()[1:]) == 2  # one mean per step
    assert (out2 / "checkpoint-2").is_dir()
    res2 = runner.invoke(app, [*args, "--max-steps", "3"])
    assert res2.exit_code == 0, res2.output
    assert "resumed from" in res2.output and "checkpoint-2" in res2.output and "steps: 3" in res2.output
    # inference on the GRPO result prints the parsed chain
    img = tmp_path / "img.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(img)
    inf = runner.invoke(
        app,
        [
            "infer",
            "--model",
            str(out2),
            "--image",
            str(img),
            "--question",
            "What colour?",
            "--max-new-tokens",
            "16",
            "--json",
        ],
    )
    assert inf.exit_code == 0, inf.output
    obj = json.loads(inf.output[inf.output.index("{") :])
    assert {"type_pairs", "influence", "reasoning", "answer", "format_problems", "text"} <= set(obj)
    assert "What colour?" in obj["prompt"]


def test_auto_backend_without_cuda_chooses_hf_and_says_so(caplog):
    with caplog.at_level(logging.INFO, logger="robust_r1.trainers"):
        assert resolve_backend("auto") == "hf"
    assert "chose hf (no CUDA GPU)" in caplog.text
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        resolve_backend("unsloth")


def test_presets_and_overrides(tmp_path):
    t4 = settings_for("t4", "grpo")
    assert (t4.model, t4.load_in_4bit, t4.lora_r, t4.num_generations, t4.max_completion_length) == (
        "Qwen/Qwen2.5-VL-3B-Instruct",
        True,
        16,
        4,
        1024,
    )
    paper = settings_for("paper", "grpo")
    assert (
        paper.finetune,
        paper.num_generations,
        paper.beta,
        paper.learning_rate,
        paper.max_completion_length,
        paper.temperature,
    ) == ("full", 8, 0.04, 1e-6, 2048, 1.0)
    assert settings_for("tiny", "sft").model == "tiny"
    (tmp_path / "s.yaml").write_text("lora_r: 32\nreward_weights: {degradation: 2.0, length: 1.0}\n")
    s = settings_for("t4", "grpo", yaml_path=tmp_path / "s.yaml", overrides=parse_overrides(["beta=0.1"]))
    assert s.lora_r == 32 and s.reward_weights == {"degradation": 2.0, "length": 1.0} and s.beta == 0.1
    for bad, match in (
        (dict(preset="huge"), "unknown preset"),
        (dict(overrides={"lr": 1}), "unknown training setting"),
    ):
        with pytest.raises(ValueError, match=match):
            settings_for(bad.get("preset", "t4"), "sft", overrides=bad.get("overrides"))
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["lora_r"])
    assert set(PRESETS) == {"t4", "paper", "tiny"}


def test_bad_cli_inputs_fail_clearly(tmp_path):
    res = runner.invoke(
        app, ["train", "sft", "--preset", "tiny", "--dataset", str(tmp_path / "none"), "--output", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "error:" in res.output
    res = runner.invoke(app, ["train", "sft", "--preset", "nope", "--dataset", "x", "--output", "y"])
    assert res.exit_code == 2 and "unknown preset" in res.output


def test_fit_pixels_bounds_image_tokens():
    im = fit_pixels(Image.new("RGB", (1000, 300)), 56 * 56)
    assert im.size[0] * im.size[1] <= 56 * 56 and min(im.size) >= 28
    small = Image.new("RGB", (40, 30))
    assert fit_pixels(small, 448 * 448).size == (40, 30)


def test_same_named_or_rebuilt_dataset_folders_are_never_read_from_a_stale_cache(tmp_path):
    import shutil

    from trainers.data import load_factory_dataset

    a, b = tmp_path / "x" / "dataset", tmp_path / "y" / "dataset"
    make_dataset(a, 3)
    make_dataset(b, 6)
    n_a, n_b = len(load_factory_dataset(a, "sft")), len(load_factory_dataset(b, "sft"))
    assert n_a != n_b
    shutil.rmtree(a)
    make_dataset(a, 6)
    assert len(load_factory_dataset(a, "sft")) == n_b


def test_grpo_rollouts_run_in_generation_mode_on_the_hf_backend(sft_out, dataset, tmp_path, monkeypatch):
    """TRL generates with the policy in training mode (dropout on; a layer in training mode with
    gradient checkpointing drops the KV cache). The hf backend's GRPO trainer switches to eval
    mode around every rollout (issue 12)."""
    from transformers.generation.utils import GenerationMixin

    from trainers.grpo import train_grpo
    from trainers.run import RunConfig

    seen: list[tuple[bool, bool]] = []
    original = GenerationMixin.generate

    def spy(self, *args, **kwargs):
        mods = list(self.modules())
        seen.append(
            (
                any(m.training for m in mods),
                any(getattr(m, "gradient_checkpointing", False) and m.training for m in mods),
            )
        )
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GenerationMixin, "generate", spy)
    s = settings_for(
        "tiny", "grpo", overrides={"model": str(sft_out[0]), "max_steps": 1, "gradient_checkpointing": True}
    )
    res = train_grpo(RunConfig(str(dataset), str(tmp_path / "grpo-gc"), s))
    assert res.global_step == 1 and seen
    assert seen == [(False, False)] * len(seen), seen


def test_infer_and_eval_feed_images_at_the_saved_pixel_budget(sft_out, tmp_path, monkeypatch):
    """The tiny preset trains at 56x56 pixels (robust_r1_settings.json); infer and eval use that
    budget unless --max-pixels overrides it (issue 12, item 5)."""
    import trainers.data
    from trainers.evaluate import EvalConfig, evaluate

    out = sft_out[0]
    assert json.loads((out / "robust_r1_settings.json").read_text())["max_pixels"] == 56 * 56
    asked: list[int] = []
    fit = trainers.data.fit_pixels

    def spy(image, max_pixels, **kw):
        asked.append(max_pixels)
        return fit(image, max_pixels, **kw)

    monkeypatch.setattr(trainers.data, "fit_pixels", spy)
    img = tmp_path / "img.png"
    Image.new("RGB", (640, 480), (200, 30, 30)).save(img)
    base = [
        "infer",
        "--model",
        str(out),
        "--image",
        str(img),
        "--question",
        "What colour?",
        "--max-new-tokens",
        "4",
        "--json",
    ]
    for extra, want in (([], 56 * 56), (["--max-pixels", "1568"], 1568)):
        res = runner.invoke(app, [*base, *extra])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output[res.output.index("{") :])["max_pixels"] == want and asked[-1] == want
    run = evaluate(
        EvalConfig(
            model=str(out / "merged"),
            out=str(tmp_path / "eval"),
            benchmark="demo",
            limit=1,
            levels="clean",
            max_new_tokens=4,
            backend="hf",
        ),
        progress=False,
    )
    assert run.generated == 1 and asked[-1] == 56 * 56  # the merged folder keeps the settings too
    assert json.loads((tmp_path / "eval" / "run.json").read_text())["config"]["max_pixels"] == 56 * 56
    res = runner.invoke(app, [*base, "--max-pixels", "10"])
    assert res.exit_code == 2 and "--max-pixels 10" in res.output


def test_checkpoints_are_sized_to_the_run():
    from trainers.run import planned_steps, sized_save_steps

    t4 = settings_for("t4", "grpo")
    assert sized_save_steps(t4.replace(max_steps=100), planned_steps(t4.replace(max_steps=100), 10_000)) == 10
    # one epoch of 7,500 prompts x 4 generations at 4 x 2 completions per step: 3,750 steps, saved every 25
    assert planned_steps(t4, 7_500 * 4) == 3_750 and sized_save_steps(t4, 3_750) == 25
    assert planned_steps(t4, 7_500 * 4, world_size=8) == 469
    assert sized_save_steps(settings_for("tiny", "sft"), 4) == 1


def test_fp16_training_keeps_trainable_weights_in_float32():
    """TRL casts a quantized model's LoRA weights to bf16; the fp16 grad scaler cannot unscale them
    (issue 12). align_trainable_dtype moves them back to float32 under fp16 and leaves bf16 runs."""
    import torch

    from trainers.models import align_trainable_dtype

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)
    model.to(torch.bfloat16)
    assert align_trainable_dtype(model, fp16=False) == 0 and model[1].weight.dtype == torch.bfloat16
    assert align_trainable_dtype(model, fp16=True) == 2
    assert model[1].weight.dtype == torch.float32 and model[0].weight.dtype == torch.bfloat16
