"""Robust-R1 Studio startup time on the demo dataset and the tiny model (issue: < 10 s).

Runs ``python -m factory.studio --dataset DEMO --model TINY --workdir ... --port N`` in a fresh
process, ``--repeat`` times, and measures from the moment the process is started:

* ``http``: the server answers ``GET /`` (the app can be opened);
* ``page``: headless Chromium (started beforehand, not counted) shows the app with the demo
  dataset listed in the Dataset tab (the first useful paint);
* ``model``: the Model tab says the tiny model is ready (it loads in the background).

``--screenshots DIR`` also drives each tab once and saves small PNGs of them (docs/images); for the
Model tab it teaches the tiny model a chain first (tests/_studio_fixture.py), so the screenshot
shows a parsed chain and the TYPE comparison rather than a random model's noise.

    .venv/bin/python bench/studio.py --repeat 3
    .venv/bin/python bench/studio.py --repeat 1 --screenshots docs/images
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _machine import load, machine  # noqa: E402

from _studio_fixture import CHROMIUM, LAUNCH_ARGS, free_port  # noqa: E402


def prepare(work: Path, dataset: str | None, model: str | None) -> tuple[str, str]:
    from factory.build import demo
    from trainers.tiny import build_tiny_model

    if dataset is None:
        ds = work / "demo-dataset"
        if not (ds / "build.json").is_file():
            print("building the demo dataset ...", flush=True)
            demo(ds, progress=False)
        dataset = str(ds)
    if model is None:
        m = work / "tiny-model"
        if not (m / "config.json").is_file():
            print("building the tiny model ...", flush=True)
            build_tiny_model(m)
        model = str(m)
    return dataset, model


def start(dataset: str, model: str, workdir: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "factory.studio",
        "--dataset",
        dataset,
        "--model",
        model,
        "--workdir",
        str(workdir),
        "--port",
        str(port),
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir.parent)
    return proc, f"http://127.0.0.1:{port}/", t0


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the studio exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no answer from {url} in {timeout} s")


def one_run(browser, dataset: str, model: str, workdir: Path) -> dict[str, float]:
    from playwright.sync_api import expect

    proc, url, t0 = start(dataset, model, workdir)
    try:
        wait_http(url, proc)
        t_http = time.perf_counter() - t0
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.get_by_role("tab", name="Dataset", exact=True).click()
        expect(page.locator("#dataset-count")).to_contain_text("rows match", timeout=120_000)
        t_page = time.perf_counter() - t0
        page.get_by_role("tab", name="Model", exact=True).click()
        expect(page.locator("#model-status")).to_contain_text("ready", timeout=300_000)
        t_model = time.perf_counter() - t0
        page.close()
        return {"http": t_http, "page": t_page, "model": t_model}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def shrink(path: Path, width: int = 960) -> None:
    """Downscale a screenshot and store it as a palette PNG (small files for the docs)."""
    from PIL import Image

    im = Image.open(path).convert("RGB")
    if im.width > width:
        im = im.resize((width, round(im.height * width / im.width)), Image.LANCZOS)
    im.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def screenshots(browser, dataset: str, out: Path, work: Path) -> list[Path]:
    from playwright.sync_api import expect

    from _studio_fixture import chatty_tiny_model, model_chain
    from factory import degrade

    truth = degrade.sample_recipe("eval", 0, "studio", intensity=0.45).steps[0].name
    model = work / "chatty-model"
    if not (model / "config.json").is_file():
        print("teaching the tiny model a chain (for the Model tab's screenshot) ...", flush=True)
        chatty_tiny_model(model, model_chain(truth, "gaussian noise" if truth != "gaussian noise" else "lens blur"))
    proc, url, _ = start(dataset, str(model), work / "shots-work")
    out.mkdir(parents=True, exist_ok=True)
    files = []
    try:
        wait_http(url, proc)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(120_000)
        expect.set_options(timeout=120_000)
        page.goto(url)

        def choose(elem_id: str, option: str) -> None:
            box = page.locator(f"#{elem_id} input[role=combobox]").first
            box.click()
            page.locator(f"[id^='{box.get_attribute('aria-controls')}-option-'][aria-label='{option}']").click()

        def shot(name: str, anchor: str | None = None) -> None:
            p = out / f"studio-{name}.png"
            page.evaluate("window.scrollTo(0, 0)")
            if anchor:  # scroll so that this element is at the top
                page.locator(anchor).evaluate("e => e.scrollIntoView()")
            page.mouse.move(0, 0)
            page.screenshot(path=str(p), full_page=False)
            shrink(p)
            files.append(p)

        choose("degrade-name-1", "jpeg compression")
        box = page.locator("#degrade-s-1 input[type=number]")
        box.fill("0.8")
        box.press("Enter")
        page.locator("#degrade-run").click()
        expect(page.locator("#degrade-type textarea")).to_have_value("lens blur(0.45), jpeg compression(0.80)")
        shot("degrade")
        page.get_by_role("tab", name="Chain", exact=True).click()
        page.locator("#chain-run").click()
        expect(page.locator("#chain-status")).to_contain_text("chain written")
        shot("chain")
        page.get_by_role("tab", name="Dataset", exact=True).click()
        expect(page.locator("#dataset-count")).to_contain_text("rows match")
        choose("dataset-degradations", "graffiti")
        page.keyboard.press("Escape")
        expect(page.locator("#dataset-count")).to_contain_text("of")
        page.locator("#dataset-table [data-testid='cell-0-1']").click()
        expect(page.locator("#dataset-row")).to_contain_text("total intensity")
        shot("dataset", "#dataset-status")
        page.get_by_role("tab", name="Model", exact=True).click()
        expect(page.locator("#model-status")).to_contain_text("ready")
        page.locator("#model-ask").click()
        expect(page.locator("#model-verdict")).to_contain_text("answer right")
        shot("model")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dataset", help="dataset folder (default: build the demo dataset into --work)")
    ap.add_argument("--model", help="model folder (default: build the tiny model into --work)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--screenshots", type=Path, default=None, help="also save a PNG of each tab into this folder")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="studio-bench-")
        args.work = Path(tmp.name)
    args.work.mkdir(parents=True, exist_ok=True)
    dataset, model = prepare(args.work, args.dataset, args.model)
    print(f"machine: {machine('gradio')}; load {load()}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        runs = []
        for i in range(args.repeat):
            r = one_run(browser, dataset, model, args.work / f"run{i}")
            runs.append(r)
            print(
                f"run {i + 1}: http {r['http']:.2f} s, page with the dataset {r['page']:.2f} s, "
                f"model ready {r['model']:.2f} s",
                flush=True,
            )
        if runs:
            med = {k: statistics.median(r[k] for r in runs) for k in ("http", "page", "model")}
            print(
                f"median of {len(runs)}: http {med['http']:.2f} s, page {med['page']:.2f} s, "
                f"model {med['model']:.2f} s; load after {load()}"
            )
        if args.screenshots:
            for f in screenshots(browser, dataset, args.screenshots, args.work):
                print(f"screenshot: {f} ({f.stat().st_size // 1024} kB)")
        browser.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
