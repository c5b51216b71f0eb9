"""Robust-R1 Studio without a browser: the logic behind the four tabs, the settings, the CLI, and
that the app builds. (The browser tests in test_studio_browser.py drive the running app.)"""

from __future__ import annotations

import inspect
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from factory import degrade
from factory.chains.format import format_type, render_chain
from factory.photos import photo
from factory.studio import engine
from factory.studio.common import StudioError, Workdir, display, guarded, load_upload, parse_options, resolve_answer
from factory.studio.context import Studio, StudioConfig

# ---------------------------------------------------------------- uploads and the work folder


def test_upload_that_is_not_an_image_is_refused_by_name(tmp_path):
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"GIF89a but not really" * 10)
    with pytest.raises(StudioError, match=r"holiday\.jpg: not an image"):
        load_upload(bad)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(StudioError, match=r"empty\.png: the file is empty"):
        load_upload(empty)
    with pytest.raises(StudioError, match="no file"):
        load_upload(None)


def test_huge_images_are_refused_before_decoding(tmp_path):
    big = tmp_path / "big.png"
    Image.new("1", (6000, 5000)).save(big)  # 30 MP, a few kB
    with pytest.raises(StudioError, match=r"6000×5000 \(30\.0 megapixels\).*up to 25 megapixels"):
        load_upload(big)
    assert load_upload(big, max_pixels=31_000_000).shape == (5000, 6000, 3)
    # A decompression bomb: a PNG header claiming 40000×40000 (1.6 gigapixels), no pixel data.
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(StudioError, match=r"bomb\.png: the image is far too large \(a decompression bomb"):
        load_upload(bomb)
    side = tmp_path / "side.png"  # under Pillow's bomb limit, over ours: refused by our check, undecoded
    side.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 10000, 9000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(StudioError, match=r"side\.png: the image is 10000×9000 \(90\.0 megapixels\)"):
        load_upload(side)


def test_upload_keeps_orientation_and_converts_to_rgb(tmp_path):
    gray = tmp_path / "g.png"
    Image.fromarray(np.arange(12 * 20, dtype=np.uint8).reshape(12, 20)).save(gray)
    img = load_upload(gray)
    assert img.shape == (12, 20, 3) and img.dtype == np.uint8


def test_workdir_never_writes_outside(tmp_path):
    wd = Workdir(tmp_path / "w").ensure()
    p = wd.write_bytes("a/b.bin", b"x")
    assert p == (tmp_path / "w" / "a" / "b.bin").resolve() and p.read_bytes() == b"x"
    assert json.loads(wd.write_json("c.json", {"k": 1}).read_text()) == {"k": 1}
    with pytest.raises(StudioError, match="outside the work folder"):
        wd.path("..", "escape.txt")
    with pytest.raises(StudioError, match="outside the work folder"):
        wd.write_bytes("../../escape.txt", b"x")
    assert not (tmp_path / "escape.txt").exists()
    assert not [p for p in (tmp_path / "w").rglob("*.tmp")]  # atomic writes leave no temporaries


def test_guarded_handlers_show_errors_instead_of_raising():
    import gradio as gr

    @guarded(3, reset={2: None})
    def handler(x, progress=None):
        if x == "bad":
            raise StudioError("the input is bad; fix it")
        if x == "bug":
            raise KeyError("oops")
        return "ok", 1, 2

    assert handler("good") == ("ok", 1, 2)
    status, a, b = handler("bad")
    assert "Error" in status and "the input is bad; fix it" in status
    assert a == gr.skip() and b is None
    status, _, _ = handler("bug")
    assert "unexpected KeyError" in status
    assert "progress" in inspect.signature(handler).parameters  # gradio still sees gr.Progress


def test_options_and_answers():
    assert parse_options("a cat\n\n a  dog \n") == ["a cat", "a dog"]
    assert parse_options("red; green;blue") == ["red", "green", "blue"]
    assert parse_options("") == [] and parse_options(None) == []
    assert resolve_answer("B", ["x", "y"]) == ("1", "y")
    assert resolve_answer("y", ["x", "y"]) == ("1", "y")
    assert resolve_answer("blue", []) == ("blue", "blue")
    with pytest.raises(StudioError, match="^answer '7': option index out of range 0..1"):
        resolve_answer("7", ["x", "y"])


# ---------------------------------------------------------------- the engine view (Degrade tab)


def test_manual_recipe_is_ordered_seeded_and_checked():
    r = engine.manual_recipe([("jpeg compression", 0.8), (None, 0.5), ("Defocus", 0.6)], seed=3, sample_id="s")
    assert r.names == ["lens blur", "jpeg compression"]  # acquisition before transmission; alias resolved
    assert r.type_pairs() == [("lens blur", 0.6), ("jpeg compression", 0.8)]
    assert [s.seed for s in r.steps] == [degrade.derive_seed(3, "s", n) for n in r.names]
    assert engine.type_text(r) == "lens blur(0.60), jpeg compression(0.80)"
    with pytest.raises(StudioError, match="at least one"):
        engine.manual_recipe([(None, 0.3)], seed=0)
    with pytest.raises(StudioError, match="lens blur is chosen twice"):
        engine.manual_recipe([("lens blur", 0.3), ("defocus blur", 0.4)], seed=0)
    with pytest.raises(ValueError, match="intensity must be in"):
        engine.manual_recipe([("lens blur", 1.5)], seed=0)


def test_render_equals_the_engine_and_reports_progress():
    img = degrade.to_rgb_uint8(photo("coffee"))[::4, ::4]
    recipe = degrade.sample_recipe("train", 0, "studio")
    seen = []
    out = engine.render(img, recipe, progress=lambda f, d: seen.append(d))
    assert np.array_equal(out, degrade.render(img, recipe))
    assert len(seen) == len(recipe.steps) and seen[0].startswith(recipe.steps[0].name)


def test_drawn_recipes_match_the_engine():
    assert engine.drawn_recipe("eval", seed=1, sample_id="q", level=0.9) == degrade.sample_recipe(
        "eval", 1, "q", intensity=0.9
    )
    assert engine.drawn_recipe("train", seed=1, sample_id="q") == degrade.sample_recipe("train", 1, "q")
    with pytest.raises(StudioError, match="use train or eval"):
        engine.drawn_recipe("test", seed=0)


def test_levels_and_seeds_are_validated():
    assert engine.parse_levels("0, 0.23 0.45;0.9") == [0.0, 0.23, 0.45, 0.9]
    with pytest.raises(StudioError, match="'x' is not a number"):
        engine.parse_levels("0.1, x")
    with pytest.raises(ValueError, match="intensity must be in"):
        engine.parse_levels("0.5, 2")
    assert engine.check_seed(7.0) == 7
    for bad in (-1, 1.5, "abc", float("nan")):
        with pytest.raises(StudioError, match="whole number"):
            engine.check_seed(bad)


def test_the_chosen_style_reaches_the_engine():
    assert engine.styles() == degrade.STYLES and engine.default_style() == degrade.DEFAULT_STYLE
    img = degrade.to_rgb_uint8(photo("coffee"))[:96, :128]
    # watermark damage differs in kind between the styles (erased rectangles vs a text overlay)
    ref = engine.strip(img, "watermark damage", [0.9], seed=3, style="reference")[0][0]
    phy = engine.strip(img, "watermark damage", [0.9], seed=3, style="physical")[0][0]
    assert np.array_equal(ref, degrade.apply(img, "watermark damage", 0.9, seed=3, style="reference"))
    assert np.array_equal(phy, degrade.apply(img, "watermark damage", 0.9, seed=3, style="physical"))
    assert not np.array_equal(ref, phy)
    recipe = engine.drawn_recipe("train", seed=1, sample_id="s", style="physical")
    assert {st.style for st in recipe.steps} == {"physical"}
    manual = engine.manual_recipe([("lens blur", 0.5), ("graffiti", 0.3)], seed=1, style="reference")
    assert {st.style for st in manual.steps} == {"reference"}
    with pytest.raises(StudioError, match="use one of reference, physical, mixed"):
        engine.strip(img, "lens blur", [0.5], style="cartoon")


def test_degrade_tab_writes_its_downloads_into_the_work_folder(tmp_path):
    from factory.studio.degrade_tab import run_degrade, run_strip

    studio = Studio(StudioConfig(workdir=str(tmp_path / "w")))
    res = run_degrade(
        studio,
        {"photo": "chelsea"},
        "choose degradations",
        [("graffiti", 0.5), ("gaussian noise", 0.2)],
        seed=0,
        sample_id="studio",
        level=0.45,
        style=None,
    )
    assert res["type"] == "gaussian noise(0.20), graffiti(0.50)"  # environment before post-processing
    png, js = (Path(p) for p in res["files"])
    assert png.parent == (tmp_path / "w" / "degrade").resolve()
    assert np.array_equal(np.asarray(Image.open(png)), res["degraded"])
    side = json.loads(js.read_text())
    assert side["type"] == res["type"] and degrade.Recipe.from_dict(side).type_pairs() == [
        ("gaussian noise", 0.2),
        ("graffiti", 0.5),
    ]
    assert res["diff"]["mean_abs_diff"] > 0
    strip = run_strip(studio, {"photo": "chelsea"}, "lens blur", "0, 0.5, 1", seed=0, style=None)
    assert [c for _, c in strip["items"]] == ["lens blur @ 0.00", "lens blur @ 0.50", "lens blur @ 1.00"]
    small = display(degrade.to_rgb_uint8(photo("chelsea")), 384)  # the strip works on a preview-sized copy
    assert np.array_equal(strip["items"][0][0], small) and not np.array_equal(strip["items"][2][0], small)
    assert Path(strip["sheet"]).is_file() and Path(strip["sheet"]).parent == png.parent
    with pytest.raises(StudioError, match="choose at least one degradation"):
        run_degrade(studio, None, "choose degradations", [(None, 0.5)], seed=0, sample_id="s", level=0.45, style=None)


# ---------------------------------------------------------------- the Chain tab


def test_chain_tab_template_backend_equals_the_writer(tmp_path):
    from factory.chains.writer import ChainConfig, ChainRequest, write_chains
    from factory.studio.chain_tab import RECIPE_SOURCES, run_chain

    studio = Studio(StudioConfig(workdir=str(tmp_path / "w")))
    out = run_chain(
        studio,
        question="What drink is in the cup?",
        options="orange juice\ncoffee\nmilk",
        answer="B",
        recipe_from=RECIPE_SOURCES[0],
        degrade_result=None,
        photo_name="coffee",
        seed=2,
        sample_id="x",
        backend="template",
    )
    recipe = degrade.sample_recipe("train", 2, "x")
    assert out["recipe"] == recipe
    ref = write_chains(
        [
            ChainRequest(
                "studio:coffee:x",
                "What drink is in the cup?",
                ["orange juice", "coffee", "milk"],
                "1",
                "coffee",
                recipe,
            )
        ],
        ChainConfig(),
    )[0]
    assert out["result"].solution == ref.solution and out["result"].type == format_type(recipe.type_pairs())
    lo, hi = out["band"]
    assert lo <= out["reasoning_words"] <= hi and out["result"].target_words == ChainConfig().target(
        recipe.total_intensity
    )
    base = dict(
        question="q",
        options="",
        answer="a",
        recipe_from=RECIPE_SOURCES[0],
        degrade_result=None,
        photo_name="coffee",
        seed=0,
        sample_id="x",
        backend="template",
    )
    with pytest.raises(StudioError, match="Degrade tab has no result"):
        run_chain(studio, **{**base, "recipe_from": RECIPE_SOURCES[1]})
    with pytest.raises(StudioError, match="question: empty"):
        run_chain(studio, **{**base, "question": " "})
    with pytest.raises(StudioError, match="give the model name"):
        run_chain(studio, **{**base, "backend": "openai", "base_url": "http://127.0.0.1:9/v1"})


def test_chain_tab_openai_backend_on_a_local_server_caches_in_the_work_folder(tmp_path):
    from factory.studio.chain_tab import RECIPE_SOURCES, run_chain
    from factory.studio.degrade_tab import run_degrade
    from fake_llm_server import ServerConfig, make_server, stop_server

    studio = Studio(StudioConfig(workdir=str(tmp_path / "w")))
    dres = run_degrade(studio, {"photo": "astronaut"}, "eval recipe", [], seed=0, sample_id="a", level=0.45, style=None)
    server, url, stats = make_server(ServerConfig())
    try:
        kw = dict(
            question="What is the person wearing?",
            options="a suit\na spacesuit",
            answer="1",
            recipe_from=RECIPE_SOURCES[1],
            degrade_result=dres,
            photo_name="astronaut",
            seed=0,
            sample_id="a",
            backend="openai",
            base_url=url,
            model="fake",
        )
        out = run_chain(studio, **kw)
        assert out["result"].ok and out["result"].type == dres["type"] and out["result"].backend == "openai:fake"
        assert out["usage"]["requests"] >= 3
        again = run_chain(studio, **kw)  # the cache (inside the work folder) answers the second time
        assert again["result"].solution == out["result"].solution and again["usage"]["requests"] == 0
        assert list((tmp_path / "w" / "chain-cache").rglob("*"))
    finally:
        stop_server(server)


# ---------------------------------------------------------------- the Dataset tab


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from _train_fixture import make_dataset

    return make_dataset(tmp_path_factory.mktemp("ds") / "ds", n=12)


def test_dataset_view_filters_like_the_parquet_says(small_dataset, tmp_path):
    import polars as pl

    from factory.studio.datasets import DatasetCache

    cache = DatasetCache(Workdir(tmp_path / "w").ensure())
    view = cache.open(str(small_dataset))
    assert cache.open(str(small_dataset)) is view  # cached while the shards are unchanged
    frames = {
        c: pl.read_parquet(
            next((small_dataset / "data" / c).glob("*.parquet")), columns=["id", "degradations", "total_intensity"]
        )
        for c in ("sft", "rl", "validation")
    }
    assert view.frame.height == sum(f.height for f in frames.values())
    name = view.degradations[0]
    want = sum(sum(any(d["name"] == name for d in degs) for degs in f["degradations"]) for f in frames.values())
    assert view.filter(degradations=[name]).height == want > 0
    stage = degrade.get(name).stage
    assert view.filter(stages=[stage]).height >= want
    assert view.filter(configs=["validation"]).height == frames["validation"].height
    lo, hi = view.intensity_range()
    mid = (lo + hi) / 2
    assert view.filter(min_total=mid).height == sum(
        int((f["total_intensity"] >= mid - 1e-9).sum()) for f in frames.values()
    )
    rows = [
        r
        for c in ("sft", "rl", "validation")
        for r in pl.read_parquet(
            next((small_dataset / "data" / c).glob("*.parquet")), columns=["id", "question", "type"]
        ).to_dicts()
    ]
    needle = "FX:1"  # fx:1, fx:10, fx:11 (and their copies in validation), case-insensitive
    want_text = sum(any(needle.lower() in (r[k] or "").lower() for k in ("id", "question", "type")) for r in rows)
    assert view.filter(text=needle).height == want_text > 1
    assert view.filter(text="no such text anywhere").height == 0
    with pytest.raises(ValueError, match="unknown degradation"):
        view.filter(degradations=["no such damage"])
    table = view.table(view.filter(degradations=[name]))
    assert list(table.columns) == ["config", "id", "total_intensity", "n", "type", "question"] and len(table) == want


def test_dataset_row_has_its_image_blocks_and_question(small_dataset, tmp_path):
    import polars as pl

    from factory.studio.datasets import DatasetView

    view = DatasetView.open(small_dataset)
    first = pl.read_parquet(next((small_dataset / "data" / "sft").glob("*.parquet")))
    rec = view.row("sft", first["id"][0])
    img = np.asarray(Image.open(__import__("io").BytesIO(first["image"][0]["bytes"])).convert("RGB"))
    assert np.array_equal(rec["image"], img)
    assert rec["blocks"]["type"] == first["type"][0] and rec["blocks"]["answer"] == first["answer"][0]
    assert rec["question_text"] == "What animal is in the picture?"  # the "0. a dog 1. ..." suffix removed
    assert [d["name"] for d in rec["degradations"]] == [d["name"] for d in first["degradations"][0]]
    with pytest.raises(StudioError, match="not in"):
        view.row("sft", "no-such-id")


def test_a_report_is_written_into_the_work_folder_never_into_the_dataset(small_dataset, tmp_path):
    from factory.studio.dataset_tab import report_for
    from factory.studio.datasets import DatasetView, report_images

    before = sorted(p.relative_to(small_dataset) for p in small_dataset.rglob("*"))
    studio = Studio(StudioConfig(workdir=str(tmp_path / "w")))
    view = DatasetView.open(small_dataset)
    assert view.report_dir() is None
    rep, msg = report_for(studio, view)
    assert Path(rep).is_relative_to((tmp_path / "w" / "reports").resolve()) and msg.startswith("report written to")
    assert [c for _, c in report_images(Path(rep))] == [
        "counts by degradation",
        "counts by stage",
        "intensity hist",
        "length vs intensity",
        "gallery",
    ]
    assert sorted(p.relative_to(small_dataset) for p in small_dataset.rglob("*")) == before


def test_dataset_errors_name_the_input(tmp_path):
    from factory.studio.datasets import DatasetCache, DatasetView

    with pytest.raises(StudioError, match="no such folder"):
        DatasetView.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudioError, match="no parquet files under data/sft"):
        DatasetView.open(tmp_path / "empty")
    cache = DatasetCache(Workdir(tmp_path / "w").ensure())
    with pytest.raises(StudioError, match="not a Hub id"):
        cache.open("./not/here")
    with pytest.raises(StudioError, match="no dataset is open"):
        cache.get(None)


def test_hub_datasets_download_into_the_work_folder(small_dataset, tmp_path, monkeypatch):
    import shutil

    import huggingface_hub

    from factory.studio.datasets import DatasetCache

    calls = []

    def fake_snapshot_download(repo_id, repo_type, local_dir, allow_patterns):
        calls.append((repo_id, repo_type, local_dir))
        shutil.copytree(small_dataset, local_dir, dirs_exist_ok=True)  # what the Hub would put there
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    cache = DatasetCache(Workdir(tmp_path / "w").ensure())
    view = cache.open("someone/robust-data")
    assert calls and calls[0][:2] == ("someone/robust-data", "dataset")
    assert Path(calls[0][2]).is_relative_to((tmp_path / "w").resolve())
    assert view.frame.height > 0

    def offline(**kw):
        raise OSError("network unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(
        StudioError, match="someone/other: could not download it from the Hugging Face Hub.*network unreachable"
    ):
        cache.open("someone/other")


# ---------------------------------------------------------------- the Model tab


def test_type_comparison_per_degradation():
    from factory.studio.models import compare_types, type_summary

    truth = [("lens blur", 0.45), ("jpeg compression", 0.3)]
    cmp = compare_types("Defocus(0.5), gaussian noise(0.2), wobble(0.1)", truth)
    rows = {r["degradation"]: r for r in cmp["rows"]}
    assert rows["lens blur"]["verdict"] == "named" and rows["lens blur"]["error"] == pytest.approx(0.05)
    assert rows["jpeg compression"]["verdict"] == "missed" and rows["jpeg compression"]["error"] is None
    assert rows["gaussian noise"]["verdict"] == "extra" and rows["wobble"]["verdict"] == "unknown"
    assert (cmp["named"], cmp["missed"], cmp["extra"]) == (1, 1, 2) and cmp["mae"] == pytest.approx(0.05)
    assert type_summary(cmp) == "named 1 of 2 · missed 1 · extra 2 · mean intensity error 0.05"
    # Out-of-range intensities are clamped before the error; the closest of repeated names counts.
    assert compare_types("lens blur(1.7)", [("lens blur", 0.9)])["mae"] == pytest.approx(0.1)
    assert compare_types("lens blur(0.1), lens blur(0.5)", [("lens blur", 0.45)])["mae"] == pytest.approx(0.05)
    # Clean images: naming nothing is right; no TYPE block at all is reported as such.
    assert type_summary(compare_types("none", [])).startswith("clean image: the model named no damage")
    assert "named 1 degradation" in type_summary(compare_types("lens blur(0.2)", []))
    assert type_summary(compare_types(None, truth)).startswith("no `<TYPE>` block")


def test_answers_are_judged_with_the_rewards_matching():
    from factory.studio.models import judge_answer

    chain = render_chain([("lens blur", 0.3)], "i", "r", "c", "B")
    choices = ["a cat", "a dog", "a bird"]
    assert judge_answer(chain, "1", choices) == {"predicted": "B", "picked": 1, "correct": True, "score": 1.0}
    assert judge_answer(chain, "a dog", choices)["correct"] is True
    assert judge_answer(chain, "0", choices)["correct"] is False
    assert judge_answer(chain, "", choices)["correct"] is None
    assert judge_answer("the answer is three", "3", [])["correct"] is True  # open question, no tags
    with pytest.raises(StudioError, match="option index out of range"):
        judge_answer(chain, "5", choices)


class _ChainServer:
    """An OpenAI-compatible server that lists one model and answers every chat with ``text``."""

    def __init__(self, text: str):
        outer = self
        self.requests: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _json(self, obj):
                body = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                self._json({"object": "list", "data": [{"id": "served-model", "object": "model"}]})

            def do_POST(self):  # noqa: N802
                outer.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self._json(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "served-model",
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
                    }
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_model_tab_against_an_endpoint(tmp_path, monkeypatch):
    from factory.studio.model_tab import DAMAGE, IMAGE_SOURCES, ask, model_input

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    recipe = degrade.sample_recipe("eval", 0, "studio", intensity=0.45)
    name = recipe.steps[0].name
    chain = render_chain([(name, 0.5)], "The damage hides detail.", "It is a spacesuit.", "So: a spacesuit.", "1")
    srv = _ChainServer(chain)
    try:
        studio = Studio(StudioConfig(workdir=str(tmp_path / "w"), endpoint=srv.url))
        studio.model.start(None, srv.url)
        studio.model.wait(timeout=60)
        assert studio.model.name == "served-model" and "ready" in studio.model.describe()
        inp = model_input(
            image_from=IMAGE_SOURCES[0],
            photo_name="astronaut",
            upload=None,
            damage=DAMAGE[0],
            level=0.45,
            seed=0,
            sample_id="studio",
            degrade_result=None,
            row=None,
        )
        assert inp["truth"] == [(name, 0.45)]
        res = ask(
            studio,
            inp,
            question="What is the person wearing?",
            options="a suit\na spacesuit",
            answer="1",
            max_new_tokens=64,
        )
        assert res["parsed"].is_complete and res["answer"]["correct"] is True
        assert res["types"]["named"] == 1 and res["types"]["mae"] == pytest.approx(0.05)
        sent = srv.requests[-1]
        assert sent["model"] == "served-model" and sent["max_tokens"] == 64
        assert sent["messages"][0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    finally:
        srv.close()


def test_model_holder_reports_failures_in_the_page(tmp_path):
    from factory.studio.models import ModelHolder

    holder = ModelHolder(Workdir(tmp_path / "w").ensure())
    with pytest.raises(StudioError, match="no model"):
        holder.wait(timeout=1)
    with pytest.raises(StudioError, match="give a model folder"):
        holder.start(None, None)
    holder.start(str(tmp_path / "no-such-model"), None)
    with pytest.raises(StudioError, match="could not be loaded.*no-such-model"):
        holder.wait(timeout=120)
    assert holder.describe().startswith("⚠ **Error:**")
    holder.start(None, "http://127.0.0.1:9/v1")  # nothing listens there
    with pytest.raises(StudioError, match="cannot list its models"):
        holder.wait(timeout=60)


def test_model_inputs_from_every_source(tmp_path):
    from factory.studio.model_tab import DAMAGE, IMAGE_SOURCES, model_input

    base = dict(
        photo_name="coffee",
        upload=None,
        damage=DAMAGE[2],
        level=0.45,
        seed=0,
        sample_id="s",
        degrade_result=None,
        row=None,
    )
    clean = model_input(image_from=IMAGE_SOURCES[0], **base)
    assert clean["truth"] == [] and np.array_equal(clean["image"], degrade.to_rgb_uint8(photo("coffee")))
    train = model_input(image_from=IMAGE_SOURCES[0], **{**base, "damage": DAMAGE[1]})
    assert train["truth"] == degrade.sample_recipe("train", 0, "s").type_pairs()
    with pytest.raises(StudioError, match="no image uploaded"):
        model_input(image_from=IMAGE_SOURCES[1], **base)
    with pytest.raises(StudioError, match="Degrade tab has no result"):
        model_input(image_from=IMAGE_SOURCES[2], **base)
    with pytest.raises(StudioError, match="no dataset row"):
        model_input(image_from=IMAGE_SOURCES[3], **base)
    row = {"image": np.zeros((4, 4, 3), np.uint8), "label": "rl/x", "degradations": [("graffiti", 0.3)]}
    assert model_input(image_from=IMAGE_SOURCES[3], **{**base, "row": row})["truth"] == [("graffiti", 0.3)]


# ---------------------------------------------------------------- settings, app, CLI


def test_config_validation_and_environment():
    from factory.errors import ConfigError

    assert StudioConfig().host == "127.0.0.1" and StudioConfig().share is False  # local by default
    with pytest.raises(ConfigError, match="port 70000: must be a TCP port number"):
        StudioConfig(port=70000).validate()
    with pytest.raises(ConfigError, match="host ' ': is empty"):
        StudioConfig(host=" ").validate()
    cfg = StudioConfig.from_env(
        {
            "ROBUST_R1_STUDIO_DATASET": "me/data",
            "ROBUST_R1_STUDIO_MODEL": "tiny",
            "ROBUST_R1_STUDIO_WORKDIR": "/tmp/x",
            "GRADIO_SERVER_NAME": "0.0.0.0",
            "GRADIO_SERVER_PORT": "7861",
        }
    )
    assert (cfg.dataset, cfg.model, cfg.endpoint, cfg.workdir, cfg.host, cfg.port) == (
        "me/data",
        "tiny",
        None,
        "/tmp/x",
        "0.0.0.0",
        7861,
    )
    assert StudioConfig.from_env({}) == StudioConfig()


def test_the_app_builds_with_four_tabs_and_its_temp_folder_in_the_work_folder(tmp_path, monkeypatch, small_dataset):
    import gradio as gr

    from factory.studio import build_app

    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    monkeypatch.delenv("MPLCONFIGDIR", raising=False)
    demo = build_app(StudioConfig(workdir=str(tmp_path / "w"), dataset=str(small_dataset)))
    tabs = [b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)]
    assert tabs == ["Degrade", "Chain", "Dataset", "Model"]
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"degrade-run", "chain-run", "dataset-open", "model-ask", "degrade-style"} <= ids
    import os

    assert Path(os.environ["GRADIO_TEMP_DIR"]).is_relative_to((tmp_path / "w").resolve())
    assert Path(os.environ["MPLCONFIGDIR"]).is_relative_to((tmp_path / "w").resolve())
    assert demo.studio.model.state == "none"  # building loads no model (launch starts it in the background)


def test_building_the_app_imports_no_torch(tmp_path):
    """Startup stays fast: torch and transformers load only when the Model tab loads a model."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys; from factory.studio import StudioConfig, build_app; build_app(StudioConfig(workdir=sys.argv[1], "
        "model='tiny')); print(sorted(m for m in ('torch', 'transformers', 'trl') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "w")],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_cli_registers_and_maps_errors_to_flags(tmp_path):
    import typer
    from typer.testing import CliRunner

    from factory.cli.studio import register

    app = typer.Typer()
    register(app)

    @app.command("other")
    def other() -> None:  # a second command, as on the main CLI
        pass

    runner = CliRunner()
    res = runner.invoke(app, ["studio", "--help"])
    assert res.exit_code == 0
    for flag in ("--dataset", "--model", "--endpoint", "--host", "--port", "--share", "--workdir"):
        assert flag in res.output
    res = runner.invoke(app, ["studio", "--host", " ", "--workdir", str(tmp_path / "w")])
    assert res.exit_code == 2 and "error: --host ' ': is empty" in res.output
    res = runner.invoke(app, ["studio", "--port", "0"])
    assert res.exit_code == 2


def test_app_py_builds_the_studio_from_the_environment(tmp_path, monkeypatch, small_dataset):
    """The Space entry point: imported (not run), app.py builds ``demo`` from ROBUST_R1_STUDIO_*."""
    import runpy

    import gradio as gr

    monkeypatch.setenv("ROBUST_R1_STUDIO_WORKDIR", str(tmp_path / "space"))
    monkeypatch.setenv("ROBUST_R1_STUDIO_DATASET", str(small_dataset))
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    monkeypatch.delenv("MPLCONFIGDIR", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    ns = runpy.run_path(str(Path(__file__).resolve().parents[1] / "app.py"), run_name="space")
    assert isinstance(ns["demo"], gr.Blocks) and ns["config"].dataset == str(small_dataset)
    assert ns["demo"].studio.workdir.root == (tmp_path / "space").resolve()
    assert ns["config"].host == "127.0.0.1"


def test_python_m_factory_studio_help():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-m", "factory.studio", "--help"],
        capture_output=True,
        text=True,
        cwd=root,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
        timeout=120,
    )
    assert out.returncode == 0 and "--endpoint" in out.stdout and "--share" in out.stdout
