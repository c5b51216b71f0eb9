"""Robust-R1 Studio end to end in headless Chromium (Debian's package, driven by Playwright).

One studio is served per test process (``python -m factory.studio`` in a subprocess, on a free
port, with the demo dataset and a tiny model taught to write a chain, both built once per run);
every test opens a fresh page. Expected values come from the engine, the chain writer and the
dataset's parquet files, not from the app. The browser missing is a failure, not a skip, unless
ROBUST_R1_SKIP_BROWSER=1.
"""

from __future__ import annotations

import io
import json
import re
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _studio_fixture import (
    CHOICES,
    LAUNCH_ARGS,
    StudioServer,
    build_demo_dataset,
    chatty_tiny_model,
    model_chain,
    require_browser,
)
from factory import degrade
from factory.photos import photo

TIMEOUT = 60_000  # ms; two shared cores


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def chromium() -> str:
    return require_browser()


@pytest.fixture(scope="session")
def studio(tmp_path_factory, worker_id, chromium):
    """The demo dataset and the tiny model are built once per test run (under a file lock, shared by
    the xdist workers); each worker serves its own studio on them."""
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if worker_id != "master" else base) / "studio-shared"
    truth = degrade.sample_recipe("eval", 0, "studio", intensity=0.45).steps[0].name  # the Model tab's default image
    extra = next(n for n in ("gaussian noise", "lens blur") if n != truth)
    chain = model_chain(truth, extra)
    with FileLock(str(shared) + ".lock"):
        ds = build_demo_dataset(shared / "demo-dataset")
        model = shared / "model"
        if not (model / "learned").is_file():
            chatty_tiny_model(model, chain)
            (model / "learned").write_text(chain)
    before = _snapshot(ds)
    server = StudioServer(tmp_path_factory.mktemp("studio"), dataset=ds, model=model)
    yield types.SimpleNamespace(
        server=server, url=server.url, dataset=ds, dataset_files=before, truth=truth, extra=extra, chain=chain
    )
    server.stop()


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)  # a fresh profile every launch
        yield b
        b.close()


@pytest.fixture
def page(browser, studio):
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT)
    pg.goto(studio.url)
    pg.wait_for_selector("#degrade-run")
    yield pg
    ctx.close()


# ---------------------------------------------------------------- helpers


def expect():
    from playwright.sync_api import expect as _expect

    _expect.set_options(timeout=TIMEOUT)  # generation on two shared cores can take a while
    return _expect


def choose(page, elem_id: str, option: str) -> None:
    """Pick ``option`` in a gradio dropdown (its list is found through the input's aria-controls:
    the lists of other dropdowns may still be in the page)."""
    box = page.locator(f"#{elem_id} input[role=combobox]").first
    box.click()
    listbox = box.get_attribute("aria-controls")
    page.locator(f"[id^='{listbox}-option-'][aria-label='{option}']").click()


def set_number(page, elem_id: str, value: float) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def image_of(page, elem_id: str, base: str) -> np.ndarray:
    """The pixels an image component shows, fetched from the URL the browser has."""
    src = page.locator(f"#{elem_id} img").first.get_attribute("src")
    assert src, f"#{elem_id} shows no image"
    url = src if src.startswith("http") else base.rstrip("/") + "/" + src.lstrip("/")
    resp = page.request.get(url)
    assert resp.ok, f"{url}: {resp.status}"
    return np.asarray(Image.open(io.BytesIO(resp.body())).convert("RGB"))


def text_of(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} textarea").input_value()


# ---------------------------------------------------------------- tests


def test_app_loads_with_its_four_tabs(page, studio):
    assert page.title() == "Robust-R1 Studio"
    for name in ("Degrade", "Chain", "Dataset", "Model"):
        expect()(page.get_by_role("tab", name=name, exact=True)).to_be_visible()
    expect()(page.locator("#studio-header")).to_contain_text(str(studio.server.workdir))


def test_degrade_a_bundled_photo_with_two_degradations(page, studio):
    choose(page, "degrade-photo", "coffee")
    expect()(page.locator("#degrade-status")).to_contain_text("coffee")
    choose(page, "degrade-name-0", "lens blur")
    set_number(page, "degrade-s-0", 0.6)
    choose(page, "degrade-name-1", "jpeg compression")
    set_number(page, "degrade-s-1", 0.8)
    page.locator("#degrade-run").click()
    expect()(page.locator("#degrade-type textarea")).to_have_value("lens blur(0.60), jpeg compression(0.80)")
    clean = image_of(page, "degrade-clean", studio.url)
    out = image_of(page, "degrade-out", studio.url)
    coffee = degrade.to_rgb_uint8(photo("coffee"))
    assert np.array_equal(clean, coffee)  # shown at full size (under 1024 px), lossless PNG
    assert out.shape == clean.shape
    assert np.abs(out.astype(int) - clean.astype(int)).mean() > 2, "the degraded image did not change"
    # Exactly the engine's pixels for that recipe (steps seeded from seed 0 and the sample id).
    steps = [
        degrade.make_step(n, s, degrade.derive_seed(0, "studio", n))
        for n, s in (("lens blur", 0.6), ("jpeg compression", 0.8))
    ]
    assert np.array_equal(out, degrade.render(coffee, degrade.Recipe(tuple(steps))))
    sidecars = sorted((studio.server.workdir / "degrade").glob("coffee-*.json"))
    assert sidecars and json.loads(sidecars[-1].read_text())["type"] == "lens blur(0.60), jpeg compression(0.80)"
    expect()(page.locator(f"#degrade-files a[href$='/{sidecars[-1].name}']")).to_have_count(1)  # downloadable
    expect()(page.locator(f"#degrade-files a[href$='/{sidecars[-1].stem}.png']")).to_have_count(1)


def test_eval_recipe_and_the_strip_across_intensities(page, studio):
    page.locator("#degrade-mode").get_by_text("eval recipe", exact=True).click()
    page.locator("#degrade-level").get_by_text("0.90", exact=True).click()
    page.locator("#degrade-run").click()
    want = degrade.sample_recipe("eval", 0, "studio", intensity=0.9)
    name = want.steps[0].name
    expect()(page.locator("#degrade-type textarea")).to_have_value(f"{name}(0.90)")
    choose(page, "strip-name", "graffiti")
    page.locator("#strip-levels textarea").fill("0, 0.3, 0.6, 0.9")
    page.locator("#strip-run").click()
    expect()(page.locator("#strip-status")).to_contain_text("graffiti at 4 intensities")
    expect()(page.locator("#strip-gallery img")).to_have_count(4)


def test_chain_from_the_template_backend(page, studio):
    from factory.chains.format import format_type
    from factory.chains.writer import ChainConfig

    tab(page, "Chain")
    page.locator("#chain-run").click()
    expect()(page.locator("#chain-status")).to_contain_text("chain written")
    recipe = degrade.sample_recipe("train", 0, "studio")
    assert text_of(page, "chain-type") == format_type(recipe.type_pairs())
    target = ChainConfig().target(recipe.total_intensity)
    expect()(page.locator("#chain-target")).to_contain_text(f"{target} reasoning words")
    n = len(text_of(page, "chain-reasoning").split())
    assert 0.75 * target <= n <= 1.25 * target
    assert text_of(page, "chain-answer") == "1"
    assert "orange spacesuit" in text_of(page, "chain-conclusion")


def test_open_the_demo_dataset_and_filter_by_a_degradation(page, studio):
    import polars as pl

    frame = pl.concat(
        [pl.read_parquet(p, columns=["id", "degradations"]) for p in sorted(studio.dataset.glob("data/*/*.parquet"))]
    )
    with_graffiti = frame.filter(
        pl.col("degradations").list.eval(pl.element().struct.field("name")).list.contains("graffiti")
    )
    tab(page, "Dataset")
    expect()(page.locator("#dataset-count")).to_contain_text(f"{frame.height} of {frame.height} rows match")
    choose(page, "dataset-degradations", "graffiti")
    page.keyboard.press("Escape")
    expect()(page.locator("#dataset-count")).to_contain_text(f"{with_graffiti.height} of {frame.height} rows match")
    # gradio 6 tables are virtual grids: the row count is in aria-rowcount (plus the header row),
    # the rendered rows are role=row elements with data-testid="cell-ROW-COL" cells.
    grid = page.locator("#dataset-table [role=grid]")
    expect()(grid).to_have_attribute("aria-rowcount", str(with_graffiti.height + 1))
    ids = set(with_graffiti["id"].to_list())
    rendered = page.locator("#dataset-table [role=row][data-index]")
    assert rendered.count() >= min(5, with_graffiti.height)
    for r in range(rendered.count()):
        assert page.locator(f"#dataset-table [data-testid='cell-{r}-1']").inner_text().strip() in ids
        assert "graffiti" in page.locator(f"#dataset-table [data-testid='cell-{r}-4']").inner_text()
    cell = page.locator("#dataset-table [data-testid='cell-1-1']")
    second = cell.inner_text().strip()
    cell.click()
    expect()(page.locator("#dataset-row")).to_contain_text(second)
    assert "graffiti" in text_of(page, "dataset-type")
    assert image_of(page, "dataset-image", studio.url).ndim == 3


def test_ask_the_tiny_model_and_see_the_parsed_chain(page, studio):
    tab(page, "Model")
    expect()(page.locator("#model-status")).to_contain_text("ready", timeout=2 * TIMEOUT)
    page.locator("#model-ask").click()
    expect()(page.locator("#model-ask-status")).to_contain_text(f"{studio.truth}(0.45)")
    assert text_of(page, "model-type") == f"{studio.truth}(0.40), {studio.extra}(0.30)"
    assert "orange spacesuit" in text_of(page, "model-reasoning")
    assert text_of(page, "model-answer") == "1"
    expect()(page.locator("#model-format")).to_contain_text("all five blocks")
    verdict = page.locator("#model-verdict")
    expect()(verdict).to_contain_text("answer right")
    expect()(verdict).to_contain_text(f"option 1: {CHOICES[1]}")
    expect()(verdict).to_contain_text("named 1 of 1 · missed 0 · extra 1 · mean intensity error 0.05")
    table = page.locator("#model-type-table [role=row][data-index]")
    expect()(table.filter(has_text=studio.truth)).to_contain_text("named")
    expect()(table.filter(has_text=studio.extra)).to_contain_text("extra")


def test_a_dataset_row_goes_to_the_model(page, studio):
    import polars as pl

    tab(page, "Dataset")
    expect()(page.locator("#dataset-row")).to_contain_text("total intensity")
    row_id = re.search(r"(\w+) / (\S+)", page.locator("#dataset-row").inner_text()).group(2)
    page.locator("#dataset-to-model").click()
    expect()(page.locator("#model-image-from input[value='the dataset row']")).to_be_checked()
    expect()(page.locator("#model-status")).to_contain_text("ready", timeout=2 * TIMEOUT)
    set_number(page, "model-max-new", 160)  # another question than the one it learned: keep the answer short
    page.locator("#model-ask").click()
    expect()(page.locator("#model-ask-status")).to_contain_text(row_id)
    expect()(page.locator("#model-verdict")).to_contain_text("answer")
    # The truth compared with is the row's own degradations (read here from the parquet files).
    frame = pl.concat(
        [pl.read_parquet(p, columns=["id", "degradations"]) for p in sorted(studio.dataset.glob("data/*/*.parquet"))]
    )
    truth = [d["name"] for d in frame.filter(pl.col("id") == row_id)["degradations"][0]]
    table = page.locator("#model-type-table [role=row][data-index]")
    for name in truth:
        expect()(table.filter(has_text=name).first).to_contain_text(re.compile("named|missed"))


def test_bad_uploads_show_a_message_and_the_app_lives_on(page, studio, tmp_path):
    not_image = tmp_path / "holiday.png"
    not_image.write_text("this is not an image")
    page.locator("#degrade-upload input[type=file]").set_input_files(str(not_image))
    expect()(page.locator("#degrade-status")).to_contain_text("holiday.png: not an image")
    huge = tmp_path / "huge.png"
    Image.new("1", (6000, 5000)).save(huge)  # 30 megapixels, 2 kB on disk
    page.locator("#degrade-upload input[type=file]").set_input_files(str(huge))
    expect()(page.locator("#degrade-status")).to_contain_text("6000×5000 (30.0 megapixels)")
    expect()(page.locator("#degrade-status")).to_contain_text("downscale it first")
    # The app lives on: the next degradation works, on the last good image.
    page.locator("#degrade-run").click()
    expect()(page.locator("#degrade-type textarea")).to_have_value("lens blur(0.45)")
    expect()(page.locator("#degrade-status")).to_contain_text("astronaut")
    tab(page, "Model")
    page.locator("#model-upload input[type=file]").set_input_files(str(not_image))
    expect()(page.locator("#model-ask-status")).to_contain_text("holiday.png: not an image")
    good = tmp_path / "small.png"
    Image.fromarray(degrade.to_rgb_uint8(photo("chelsea"))).save(good)
    page.locator("#model-upload input[type=file]").set_input_files(str(good))
    expect()(page.locator("#model-ask-status")).to_contain_text("uploaded small.png")
    expect()(page.locator("#model-image-from input[value='upload']")).to_be_checked()


def test_zz_nothing_written_outside_the_work_folder(studio):
    """Runs last in this file: after everything above, the server's cwd and HOME are empty and the
    dataset it read is unchanged; what it wrote is under --workdir."""
    server = studio.server
    assert sorted(p.name for p in server.cwd.iterdir()) == []
    assert sorted(str(p.relative_to(server.home)) for p in server.home.rglob("*")) == []
    assert _snapshot(studio.dataset) == studio.dataset_files
    assert list((server.workdir / "degrade").glob("*.png"))
    assert (server.workdir / ".gradio").is_dir()
