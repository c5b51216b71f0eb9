"""The resumable dataset build: layout, round trip through datasets, determinism, resume after
SIGKILL, bad inputs, bounded read-ahead, CLI."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from _source_fixture import COLUMNS, bad_images, make_aokvqa, make_jsonl_folder
from factory import degrade
from factory.build import (
    BuildConfig,
    build,
    config_for,
    demo,
    encode_image,
    encode_png,
    features,
    row_hash,
)
from factory.sources import open_source

CONTRACT = {
    "id", "image", "question", "choices", "answer", "answer_text", "direct_answers", "degradations", "total_intensity",
    "type", "influence", "reasoning", "conclusion", "solution", "prompt", "target_words", "backend",
}  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]


def hashes(out: Path) -> dict[str, list[str]]:
    """Shard name → row content hashes, for every shard of a built dataset."""
    return {
        f.relative_to(out).as_posix(): [row_hash(r) for r in pq.read_table(f).to_pylist()]
        for f in sorted((out / "data").glob("*/*.parquet"))
    }


def all_rows(out: Path, columns=None) -> list[dict]:
    return [
        r for f in sorted((out / "data").glob("*/*.parquet")) for r in pq.read_table(f, columns=columns).to_pylist()
    ]


# ---------------------------------------------------------------- the demo build, end to end


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "rr1-demo-build"
    summary = demo(out, seed=0, workers=1, progress=False)
    return out, summary


def test_demo_builds_the_hub_layout_with_manifest_card_and_report(demo_out):
    out, summary = demo_out
    n_train = len(open_source("demo", "train"))
    n_val = len(open_source("demo", "validation"))
    assert summary.counts["sft"] + summary.counts["rl"] == n_train and summary.counts["validation"] == n_val
    assert summary.counts["sft"] > 0 and summary.counts["rl"] > 0 and summary.errors == 0
    names = sorted(p.relative_to(out).as_posix() for p in (out / "data").rglob("*") if p.is_file())
    assert names == [
        "data/rl/train-00000-of-00001.parquet",
        "data/sft/train-00000-of-00001.parquet",
        "data/validation/validation-00000-of-00001.parquet",
    ]
    assert (out / "errors.jsonl").read_text() == ""
    m = json.loads((out / "build.json").read_text())
    for key in (
        "version",
        "created",
        "command",
        "source",
        "seed",
        "backend",
        "recipe",
        "sft_fraction",
        "keep_clean",
        "counts",
        "errors",
        "features",
    ):
        assert key in m, key
    assert m["counts"] == {
        "sft": {"train": summary.counts["sft"]},
        "rl": {"train": summary.counts["rl"]},
        "validation": n_val,
    }
    assert (
        m["command"] == f"robust-r1 demo --out {out}" and m["backend"] == "template" and m["source"]["name"] == "demo"
    )
    assert m["source"]["splits"] == ["train", "validation"]
    assert m["recipe"] == json.loads(json.dumps(degrade.TrainRecipeConfig().__dict__))
    assert m["features"] == features().to_dict()
    card = (out / "README.md").read_text()
    assert (
        card.startswith("---") and "data/sft/train-*.parquet" in card and "data/validation/validation-*.parquet" in card
    )
    assert any((out / "report").glob("*.png"))
    text = "\n".join(summary.lines())
    assert (
        str(out / "README.md") in text and str(out / "report") in text and f"robust-r1 publish {out} --repo-id" in text
    )


def test_round_trip_through_load_dataset_decodes_images(demo_out, tmp_path):
    from datasets import load_dataset
    from PIL.Image import Image as PILImage

    out, summary = demo_out
    for config in ("sft", "rl"):
        # own cache: datasets keys a local folder's cache by its name and card, not its files
        ds = load_dataset(str(out), config, cache_dir=str(tmp_path / "hf"))
        assert set(ds) == {"train", "validation"}
        assert (
            ds["train"].num_rows == summary.counts[config] and ds["validation"].num_rows == summary.counts["validation"]
        )
        assert set(ds["train"].column_names) == CONTRACT
        row = ds["train"][0]
        assert isinstance(row["image"], PILImage) and row["image"].mode == "RGB" and row["image"].size[0] > 1
        assert row["degradations"] and set(row["degradations"][0]) == {"name", "stage", "intensity", "params"}
    meta = pq.ParquetFile(next((out / "data" / "sft").glob("*.parquet"))).schema_arrow.metadata
    assert json.loads(meta[b"huggingface"])["info"]["features"] == features().to_dict()


def test_rows_hold_exactly_the_recipe_the_pixels_and_the_chain(demo_out):
    from factory.chains.format import format_type, parse_chain
    from factory.chains.writer import format_question

    out, _ = demo_out
    samples = {s.id: s for split in ("train", "validation") for s in open_source("demo", split)}
    rows = all_rows(out)
    assert sorted(r["id"] for r in rows) == sorted(samples)
    for r in rows[:: max(1, len(rows) // 8)]:
        s = samples[r["id"]]
        recipe = degrade.sample_recipe("train", 0, s.id)
        assert r["degradations"] == recipe.degradation_records()
        assert r["total_intensity"] == pytest.approx(sum(d["intensity"] for d in r["degradations"]))
        pixels = np.asarray(Image.open(io.BytesIO(r["image"]["bytes"])))
        assert np.array_equal(pixels, degrade.render(s.load_image(), recipe))  # lossless, exact
        assert r["question"] == format_question(s.question, s.choices) and r["question"].endswith(f"3. {s.choices[3]}")
        assert (r["answer"], r["answer_text"], r["choices"], r["direct_answers"]) == (
            s.answer,
            s.answer_text,
            s.choices,
            [],
        )
        chain = parse_chain(r["solution"])
        assert chain.type == r["type"] == format_type(recipe.type_pairs()) and chain.answer == s.answer
        assert chain.reasoning == r["reasoning"] and r["target_words"] > 0 and r["backend"] == "template"
        assert r["question"] in r["prompt"]


def test_sft_rl_assignment_is_a_function_of_seed_and_id(demo_out):
    out, _ = demo_out
    for config in ("sft", "rl"):
        ids = [
            r["id"]
            for f in (out / "data" / config).glob("*.parquet")
            for r in pq.read_table(f, columns=["id"]).to_pylist()
        ]
        assert ids and all(config_for(0, i, 0.25) == config for i in ids)
    ids = [f"x:{i}" for i in range(4000)]
    share = sum(config_for(0, i, 0.25) == "sft" for i in ids) / len(ids)
    assert 0.22 < share < 0.28
    assert [config_for(0, i, 0.25) for i in ids[:50]] != [config_for(1, i, 0.25) for i in ids[:50]]
    assert {config_for(0, i, 0.0) for i in ids[:50]} == {"rl"} and {config_for(0, i, 1.0) for i in ids[:50]} == {"sft"}


# ---------------------------------------------------------------- determinism, resume


def test_worker_count_does_not_change_row_hashes(tmp_path):
    src = make_aokvqa(tmp_path, 14, validation=5)
    kw = dict(source=str(src), shard_size=4, row_group_size=3, report=False)
    a = build(BuildConfig(out=str(tmp_path / "w1"), workers=1, **kw), progress=False)
    b = build(BuildConfig(out=str(tmp_path / "w2"), workers=2, **kw), progress=False)
    assert a.counts == b.counts and a.counts["validation"] == 5
    ha, hb = hashes(tmp_path / "w1"), hashes(tmp_path / "w2")
    assert ha == hb and len(ha) >= 6 and "data/rl/train-00000-of-00004.parquet" in ha
    # a re-run of a finished build processes nothing and changes nothing
    c = build(BuildConfig(out=str(tmp_path / "w1"), workers=2, **kw), progress=False)
    assert c.processed == 0 and hashes(tmp_path / "w1") == ha


SLOW_BUILD = textwrap.dedent(
    """
    import sys, time
    from factory.build import BuildConfig, build
    from factory.sources import open_source

    class Slow:
        '''The fixture source, slowed down so that a kill lands mid-build.'''
        def __init__(self, path, split):
            self.inner = open_source(path, split)
        def __len__(self):
            return len(self.inner)
        def describe(self):
            return self.inner.describe()
        def __iter__(self):
            for s in self.inner:
                time.sleep(0.03)
                yield s

    src, out, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    build(BuildConfig(source=lambda split: Slow(src, split), out=out, shard_size=4, row_group_size=2, report=False,
                      workers=workers), progress=False)
    """
)


def _run_and_kill(src: Path, out: Path, workers: int, after_chunks: int) -> int:
    """Start the build in a subprocess, SIGKILL it once ``after_chunks`` chunks are done."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_BUILD, str(src), str(out), str(workers)], env=env, cwd=ROOT)
    state = out / ".build" / "train"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list(state.glob("chunk-*.done"))) < after_chunks:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return len(list(state.glob("chunk-*.done")))


def test_resume_after_sigkill_equals_an_uninterrupted_build(tmp_path):
    src = make_aokvqa(tmp_path, 40, validation=3)
    clean = tmp_path / "clean"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", SLOW_BUILD.replace("time.sleep(0.03)", "pass"), str(src), str(clean), "1"],
        env=env,
        check=True,
        cwd=ROOT,
    )
    out = tmp_path / "killed"
    first = _run_and_kill(src, out, workers=2, after_chunks=3)
    assert 3 <= first < 10, "the first kill must land mid-build"
    assert not (out / "data").exists() and not (out / "build.json").exists()
    second = _run_and_kill(src, out, workers=1, after_chunks=first + 2)  # resumed, killed again
    assert first < second < 10, "the second run must resume, then be killed mid-build"
    subprocess.run(
        [sys.executable, "-c", SLOW_BUILD.replace("time.sleep(0.03)", "pass"), str(src), str(out), "2"],
        env=env,
        check=True,
        cwd=ROOT,
    )
    assert hashes(out) == hashes(clean)
    ids = [r["id"] for r in all_rows(out, ["id"])]
    assert len(ids) == len(set(ids)) == 43
    assert not list((out / ".build").rglob("*.tmp"))
    assert (
        json.loads((out / "build.json").read_text())["counts"]
        == json.loads((clean / "build.json").read_text())["counts"]
    )


def test_a_redone_chunk_keeps_nothing_of_its_crashed_attempt(tmp_path):
    """An LLM backend may answer differently on the redo: whatever the crashed attempt left for
    an unfinished chunk (a renamed part file, temporaries) must not survive into the dataset."""
    src = make_aokvqa(tmp_path, 12)
    out = tmp_path / "o"
    cfg = dict(source=str(src), out=str(out), shard_size=2, sft_fraction=0.25, report=False)
    build(BuildConfig(**cfg), progress=False)
    before = hashes(out)
    state = out / ".build" / "train"
    k = next(i for i in range(6) if not (state / f"sft-{i:06d}.parquet").exists())  # a chunk without sft rows
    donor = next(state.glob("sft-*.parquet"))
    (state / f"sft-{k:06d}.parquet").write_bytes(donor.read_bytes())  # the crashed attempt's part
    (state / f".rl-{k:06d}.parquet.tmp").write_bytes(b"half written")
    (state / f"chunk-{k:06d}.done").unlink()
    (state / "complete").unlink()
    s = build(BuildConfig(**cfg), progress=False)
    assert s.processed == 2 and hashes(out) == before
    assert not list(state.glob(".*.tmp"))


def test_changed_settings_refuse_to_resume_but_workers_may_change(tmp_path):
    out = tmp_path / "o"
    build(BuildConfig(source="demo", out=str(out), limit=2, splits=("train",), report=False), progress=False)
    with pytest.raises(ValueError, match=r"different settings \(seed\)"):
        build(
            BuildConfig(source="demo", out=str(out), limit=2, splits=("train",), seed=5, report=False), progress=False
        )
    with pytest.raises(ValueError, match=r"different settings \(limit, sft_fraction\)"):
        build(
            BuildConfig(source="demo", out=str(out), limit=3, sft_fraction=0.5, splits=("train",), report=False),
            progress=False,
        )
    s = build(
        BuildConfig(source="demo", out=str(out), limit=2, splits=("train",), workers=2, report=False), progress=False
    )
    assert s.processed == 0 and s.counts["sft"] + s.counts["rl"] == 2


def test_building_a_second_split_later_keeps_the_first(tmp_path):
    src = make_aokvqa(tmp_path, 6, validation=2)
    out = tmp_path / "o"
    build(BuildConfig(source=str(src), out=str(out), splits=("train",), report=False), progress=False)
    s = build(BuildConfig(source=str(src), out=str(out), splits=("validation",), report=False), progress=False)
    assert s.counts == {"sft": s.counts["sft"], "rl": 6 - s.counts["sft"], "validation": 2}
    assert json.loads((out / "build.json").read_text())["source"]["splits"] == ["train", "validation"]


# ---------------------------------------------------------------- failures never stop a build


@pytest.mark.parametrize("kind", ["aokvqa-bytes", "jsonl-files"])
def test_bad_images_are_recorded_never_fatal(tmp_path, kind):
    if kind == "aokvqa-bytes":
        src, columns, n_good = make_aokvqa(tmp_path, 10, bad=True), None, 3
        prefix = "aokvqa:q"
        bad_ids = {f"aokvqa:q{i:03d}" for i, (_, ok) in enumerate(bad_images().values()) if not ok}
    else:
        src, columns, n_good = make_jsonl_folder(tmp_path, 3, bad=True), COLUMNS, 3
        prefix = "qa:"
        n = len(bad_images())
        bad_ids = {f"qa:{i}" for i, (_, ok) in enumerate(bad_images().values()) if not ok} | {
            f"qa:{n + 3}"
        }  # + missing file
    out = tmp_path / "out"
    summary = build(
        BuildConfig(source=str(src), columns=columns, out=str(out), shard_size=4, workers=2, report=False),
        progress=False,
    )
    errors = [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]
    assert {e["id"] for e in errors} == bad_ids
    for e in errors:
        assert e["split"] == "train" and e["stage"] == "load" and e["reason"] and e["id"].startswith(prefix)
    readable = sum(ok for _, ok in bad_images().values())  # 1x1, 16-bit, CMYK and RGBA are converted
    assert summary.counts["sft"] + summary.counts["rl"] == readable + n_good
    assert summary.errors == len(bad_ids) and json.loads((out / "build.json").read_text())["errors"] == len(bad_ids)
    assert f"errors: {len(bad_ids)} (load {len(bad_ids)};" in "\n".join(summary.lines())


def test_chain_failures_and_unlabelled_samples_are_recorded(tmp_path, monkeypatch):
    import factory.build.chunk as fb
    from _source_fixture import aokvqa_rows, write_aokvqa

    rows = aokvqa_rows(6)
    rows[4]["correct_choice_idx"] = None
    src = write_aokvqa(tmp_path / "a.parquet", rows)
    real = fb._write_chains

    def flaky(requests, cfg):
        out = real(requests, cfg)
        for r in out:
            if r.sample_id == "aokvqa:q001":
                r.ok, r.reason = False, "influence: too short (3 words)"
            if r.sample_id == "aokvqa:q002":
                r.solution = r.solution.replace("<ANSWER>2<ANSWER_END>", "<ANSWER>3<ANSWER_END>")
        if any(r.sample_id == "aokvqa:q005" for r in requests):
            raise RuntimeError("server exploded")
        return out

    monkeypatch.setattr(fb, "_write_chains", flaky)
    out = tmp_path / "o"
    s = build(BuildConfig(source=str(src), out=str(out), shard_size=3, row_group_size=2, report=False), progress=False)
    errors = {e["id"]: e for e in map(json.loads, (out / "errors.jsonl").read_text().splitlines())}
    assert errors["aokvqa:q001"]["stage"] == "chain" and "too short" in errors["aokvqa:q001"]["reason"]
    assert errors["aokvqa:q002"]["stage"] == "write" and "label" in errors["aokvqa:q002"]["reason"]
    assert errors["aokvqa:q004"]["stage"] == "load" and "no answer label" in errors["aokvqa:q004"]["reason"]
    assert errors["aokvqa:q005"]["stage"] == "chain" and "server exploded" in errors["aokvqa:q005"]["reason"]
    # q005 shared its chain batch with q003 (rows of 2 per batch): both failed with the batch
    assert set(errors) == {"aokvqa:q001", "aokvqa:q002", "aokvqa:q003", "aokvqa:q004", "aokvqa:q005"}
    assert s.counts["sft"] + s.counts["rl"] == 1 and s.error_stages == {"load": 1, "chain": 3, "write": 1}


# ---------------------------------------------------------------- streaming, formats


def test_the_source_is_never_read_far_ahead_of_the_written_chunks(tmp_path):
    src_path = make_aokvqa(tmp_path, 30)
    out = tmp_path / "o"
    lead = []

    class Watched:
        def __init__(self, split):
            self.inner = open_source(str(src_path), split)

        def __len__(self):
            return len(self.inner)

        def describe(self):
            return self.inner.describe()

        def __iter__(self):
            for i, s in enumerate(self.inner):
                written = 4 * len(list((out / ".build" / "train").glob("chunk-*.done")))
                lead.append(i - written)
                yield s

    build(
        BuildConfig(source=Watched, out=str(out), shard_size=4, workers=2, splits=("train",), report=False),
        progress=False,
    )
    window = 8 * 2
    assert len(lead) == 30 and max(lead) <= 4 + window  # one chunk + the in-flight window, never the split


def test_keep_clean_and_other_image_formats(tmp_path):
    from datasets import load_dataset

    src = make_aokvqa(tmp_path, 4)
    for fmt, magic in (("jpeg", b"\xff\xd8"), ("webp", b"RIFF")):
        out = tmp_path / fmt
        build(
            BuildConfig(
                source=str(src), out=str(out), keep_clean=True, image_format=fmt, sft_fraction=1.0, report=False
            ),
            progress=False,
        )
        rows = all_rows(out)
        assert len(rows) == 4 and all(r["image"]["bytes"].startswith(magic) for r in rows)
        assert all(r["clean_image"]["bytes"].startswith(magic) for r in rows)
        ds = load_dataset(
            str(out), data_files={"train": "data/sft/*.parquet"}, split="train", cache_dir=str(tmp_path / "hf")
        )
        assert "clean_image" in ds.column_names and ds[0]["clean_image"].size == ds[0]["image"].size
    clean_png = all_rows(tmp_path / "webp")[0]["clean_image"]["bytes"]
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(clean_png)).convert("RGB")),
        open_source(str(src)).__iter__().__next__().load_image(),
    )


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 7, 3), (9, 1, 3), (31, 17, 3), (64, 48, 3)])
def test_fast_png_encoder_is_lossless(shape):
    arr = np.random.default_rng(shape[0]).integers(0, 256, shape, dtype=np.uint8)
    data = encode_png(arr)
    assert data == encode_image(arr, "png")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "RGB" and np.array_equal(np.asarray(im), arr)


def test_invalid_settings_are_refused_before_anything_is_written(tmp_path):
    for kw, msg in (
        ({"image_format": "gif"}, "image_format 'gif'"),
        ({"sft_fraction": 1.5}, "sft_fraction"),
        ({"splits": ("test",)}, "splits 'test'"),
        ({"workers": 0}, "workers"),
        ({"source": str(tmp_path / "nope")}, "nope: no such file or folder"),
    ):
        with pytest.raises(ValueError, match=msg):
            build(BuildConfig(out=str(tmp_path / "x"), **kw), progress=False)
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- command line


def test_build_command_line(tmp_path):
    import typer
    from typer.testing import CliRunner

    from factory.cli.build import register

    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:  # a second command, so that `build` is a subcommand as in robust-r1
        pass

    runner = CliRunner()
    out = tmp_path / "ds"
    args = [
        "build",
        "--out",
        str(out),
        "--source",
        "demo",
        "--limit",
        "train=4,validation=1",
        "--seed",
        "3",
        "--no-report",
        "-q",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert f"dataset: {out} (" in res.output and "publish with: robust-r1 publish" in res.output
    m = json.loads((out / "build.json").read_text())
    assert (
        m["command"]
        == f"robust-r1 build --out {out} --source demo --limit train=4,validation=1 --seed 3 --no-report --quiet"
    )
    assert m["seed"] == 3 and m["counts"]["validation"] == 1
    assert m["counts"]["sft"]["train"] + m["counts"]["rl"]["train"] == 4
    res = runner.invoke(app, args)  # the same command again: nothing to do, same result
    assert res.exit_code == 0 and "0 samples processed" in res.output
    res = runner.invoke(app, ["build", "--out", str(tmp_path / "x"), "--image-format", "gif"])
    assert res.exit_code == 2 and "--image-format 'gif'" in res.output
    res = runner.invoke(app, ["build", "--out", str(tmp_path / "y"), "--source", str(tmp_path / "missing.parquet")])
    assert res.exit_code == 2 and "missing.parquet" in res.output
