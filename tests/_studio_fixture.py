"""Fixtures of the studio's browser tests: Debian's Chromium, a tiny model that writes a chain, and
the studio served by ``python -m factory.studio`` in a subprocess on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("ROBUST_R1_CHROMIUM", "/usr/bin/chromium")
"""Debian's ``chromium`` package (``make test`` installs it when missing)."""
SKIP_ENV = "ROBUST_R1_SKIP_BROWSER"
# Flags that work on a closed network: no background connections (refused there), no sandbox
# (CI runs as root), no GPU. Playwright adds --headless itself.
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def require_browser() -> str:
    """The Chromium executable. Missing browser or Playwright: the tests FAIL (CI must run them),
    unless ROBUST_R1_SKIP_BROWSER=1 asks to skip them."""
    problems = []
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        problems.append(
            f"no Chromium at {CHROMIUM} (`make test` installs Debian's chromium; or set ROBUST_R1_CHROMIUM)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright Python package is missing (pip install -e '.[dev]')")
    if problems:
        msg = "browser tests cannot run: " + "; ".join(problems)
        if os.environ.get(SKIP_ENV) == "1":
            pytest.skip(msg + f" ({SKIP_ENV}=1)")
        pytest.fail(msg + f". Set {SKIP_ENV}=1 to skip them knowingly.", pytrace=False)
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- a tiny model that writes a chain

QUESTION = "What is the person wearing?"
CHOICES = ["a business suit", "an orange spacesuit", "a white lab coat", "a diving suit"]
"""The first bundled demo question (factory/assets/demo_qa.jsonl), the Model tab's default."""


def model_chain(truth: str, extra: str) -> str:
    """The chain the test model is taught: names the true degradation at 0.40 (truth 0.45) and one
    that was not applied, answers option 1 (right)."""
    from factory.chains.format import render_chain

    return render_chain(
        [(truth, 0.40), (extra, 0.30)],
        "The damage hides fine detail, but the main shapes stay visible.",
        "Looking past the damage, the picture shows a person in an orange spacesuit.",
        "The visible evidence points to an orange spacesuit.",
        "1",
    )


def chatty_tiny_model(out_dir: Path, chain: str, *, max_steps: int = 400) -> Path:
    """The tiny random Qwen2.5-VL (trainers.tiny) taught, by a few hundred optimizer steps on this
    CPU, to answer the demo question with ``chain`` whatever the image: a real model whose greedy
    output is a parsable chain, so the Model tab's parse / compare / judge path runs for real."""
    import torch

    from factory import degrade
    from factory.chains.prompting import build_prompt
    from factory.photos import photo
    from trainers.data import fit_pixels
    from trainers.infer import Predictor
    from trainers.tiny import build_tiny_model

    model, proc = build_tiny_model(seed=0)
    prompt = build_prompt(QUESTION, CHOICES)
    text = proc.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}],
        add_generation_prompt=True,
        tokenize=False,
    )
    batches = []
    for name in ("astronaut", "coffee", "chelsea"):
        pix = fit_pixels(degrade.to_rgb_uint8(photo(name)), 448 * 448)  # what Predictor feeds the processor
        full = proc(text=[text + chain + "<|im_end|>"], images=[pix], return_tensors="pt")
        n_prompt = proc(text=[text], images=[pix], return_tensors="pt")["input_ids"].shape[1]
        labels = full["input_ids"].clone()
        labels[:, :n_prompt] = -100
        batches.append((full, labels))
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for step in range(max_steps):
        inputs, labels = batches[step % len(batches)]
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if loss.item() < 0.01:
            break
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    proc.save_pretrained(out_dir)
    # The fixture checks itself: the saved model, loaded as the studio loads it, writes the chain.
    got = (
        Predictor(str(out_dir))
        .ask(degrade.to_rgb_uint8(photo("rocket")), QUESTION, choices=CHOICES, max_new_tokens=160)
        .text
    )
    assert got.strip() == chain, f"the tiny model did not learn the chain: {got[:200]!r}"
    return out_dir


# ---------------------------------------------------------------- the served studio


class StudioServer:
    """``python -m factory.studio ...`` in a subprocess with its own cwd and HOME (to show it writes
    nowhere but its work folder)."""

    def __init__(self, root: Path, *, dataset: Path, model: Path, timeout: float = 180.0):
        self.root = root
        self.cwd, self.home, self.workdir = root / "cwd", root / "home", root / "work"
        for d in (self.cwd, self.home):
            d.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "MPLCONFIGDIR"))}
        env.update(
            HOME=str(self.home),
            PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            PYTHONUNBUFFERED="1",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
        )
        self.log = root / "server.log"
        cmd = [
            sys.executable,
            "-m",
            "factory.studio",
            "--dataset",
            str(dataset),
            "--model",
            str(model),
            "--workdir",
            str(self.workdir),
            "--port",
            str(self.port),
        ]
        self._fh = open(self.log, "wb")
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=env, stdout=self._fh, stderr=subprocess.STDOUT)
        self._wait(timeout)

    def _wait(self, timeout: float) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the studio exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the studio did not answer on {self.url} within {timeout:.0f} s:\n{self.output()}")

    def output(self) -> str:
        self._fh.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._fh.close()


def build_demo_dataset(out: Path) -> Path:
    from factory.build import demo

    if not (out / "build.json").is_file():
        if out.exists():
            shutil.rmtree(out)
        demo(out, seed=0, workers=1, progress=False)
    return out
