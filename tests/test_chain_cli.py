"""``robust-r1 chain``: one image, the train recipe, the full chain."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from factory import degrade
from factory.chains.format import parse_chain
from factory.cli import app
from factory.cli.chain import _spread_choices
from factory.photos import photo
from fake_llm_server import ServerConfig, make_server, stop_server

SECRET = "sk-cli-test-NEVER-PRINT-ME-42"


@pytest.fixture()
def cat_png(tmp_path):
    p = tmp_path / "cat.png"
    degrade.save_image(degrade.to_rgb_uint8(photo("chelsea"))[::8, ::8], p)
    return p


@pytest.fixture()
def server():
    srv, url, stats = make_server(ServerConfig())
    yield url, stats
    stop_server(srv)


def _run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_chain_json(cat_png):
    res = _run(
        "chain",
        cat_png,
        "--question",
        "What animal?",
        "--choices",
        "a dog,a cat",
        "--answer",
        "1",
        "--seed",
        "2",
        "--json",
    )
    assert res.exit_code == 0, res.output
    obj = json.loads(res.output)
    assert {
        "degradations",
        "type",
        "influence",
        "reasoning",
        "conclusion",
        "answer",
        "solution",
        "target_words",
        "backend",
    } <= set(obj)
    p = parse_chain(obj["solution"])
    assert obj["answer"] == "1" and p.is_complete and p.answer == "1" and obj["backend"] == "template"
    recipe = degrade.sample_recipe("train", 2, "chain:cat.png")
    assert [(d["name"], d["intensity"]) for d in obj["degradations"]] == recipe.type_pairs()
    assert [(t.name, t.intensity) for t in p.type_pairs] == recipe.type_pairs()
    assert all(isinstance(d["params"], dict) and d["stage"] for d in obj["degradations"])
    assert obj["total_intensity"] == recipe.total_intensity
    assert (obj["influence"], obj["reasoning"], obj["conclusion"]) == (p.influence, p.reasoning, p.conclusion)


@pytest.mark.parametrize(
    "choice_args",
    [
        ["--choices", "a dog", "a cat", "a bird", "a horse"],
        ["--choices", "a dog", "--choices", "a cat", "--choices", "a bird", "--choices", "a horse"],
        ["--choices", "a dog,a cat,a bird,a horse"],
    ],
)
def test_choices_forms_and_answer_forms(cat_png, choice_args):
    for answer in ("1", "B", "a cat"):
        res = _run("chain", cat_png, "--question", "What animal?", *choice_args, "--answer", answer, "--json")
        assert res.exit_code == 0, res.output
        obj = json.loads(res.output)
        assert obj["answer"] == "1" and '"a cat"' in obj["conclusion"]
        assert "0. a dog 1. a cat 2. a bird 3. a horse" in obj["prompt"]


def test_spread_choices_stops_at_the_next_option():
    assert _spread_choices(["img", "--choices", "A", "B", "--answer", "1"]) == [
        "img",
        "--choices",
        "A",
        "--choices",
        "B",
        "--answer",
        "1",
    ]
    assert _spread_choices(["--choices", "-1", "2", "--json"]) == ["--choices", "-1", "--choices", "2", "--json"]
    assert _spread_choices(["--choices=A,B", "x"]) == ["--choices=A,B", "x"]
    assert _spread_choices(["--choices"]) == ["--choices"]


def test_image_after_the_choices_is_still_the_image(cat_png):
    res = _run("chain", "--question", "What animal?", "--answer", "0", "--choices", "a cat", "a dog", cat_png)
    assert res.exit_code == 0, res.output
    assert "<ANSWER>0<ANSWER_END>" in res.output


def test_human_output_shows_recipe_and_chain(cat_png):
    res = _run("chain", cat_png, "--question", "What animal is this?", "--answer", "cat", "--seed", "5")
    assert res.exit_code == 0, res.output
    recipe = degrade.sample_recipe("train", 5, "chain:cat.png")
    assert f"total intensity {recipe.total_intensity:.2f}" in res.output
    for step in recipe.steps:
        assert step.name in res.output and f"{step.intensity:.2f}" in res.output
    chain = res.output[res.output.index("<TYPE>") :]
    p = parse_chain(chain)
    assert p.is_complete and p.answer == "cat"


def _openai_chain(image, url):
    """`robust-r1 chain` on one image through the openai backend at ``url`` (the fake server)."""
    return ["chain", image, "--question", "What animal?", "--answer", "cat"] + [
        "--backend", "openai", "--base-url", url, "--model", "fake",
    ]  # fmt: skip


def test_openai_backend_uses_env_key_and_cache(cat_png, server, tmp_path, monkeypatch):
    url, stats = server
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    args = [*_openai_chain(cat_png, url), "--cache", tmp_path / "c"]
    first = _run(*args)
    assert first.exit_code == 0, first.output
    assert "<ANSWER>cat<ANSWER_END>" in first.output and SECRET not in first.output
    assert "openai:fake" in first.output and "requests" in first.output
    assert stats.requests >= 3 and all(h == f"Bearer {SECRET}" for h in stats.auth_headers)
    n = stats.requests
    second = _run(*args, "--json")
    assert second.exit_code == 0 and stats.requests == n
    obj = json.loads(second.output)
    assert obj["backend"] == "openai:fake" and obj["usage"]["requests"] == 0 and SECRET not in second.output
    for p in (tmp_path / "c").rglob("*.json"):
        assert SECRET not in p.read_text()


def test_no_vision_sends_no_images(cat_png, server, tmp_path):
    url, stats = server
    res = _run(*_openai_chain(cat_png, url), "--no-vision")
    assert res.exit_code == 0, res.output
    assert stats.bodies and all("image_url" not in b for b in stats.bodies)


@pytest.mark.parametrize(
    "extra,code,message",
    [
        (["--choices", "a", "b", "--answer", "7"], 2, "out of range"),
        (["--choices", "a", "b", "--answer", "zebra"], 2, "option index"),
        (["--answer", "x", "--backend", "gpt"], 2, "backend"),
        (["--answer", "x", "--backend", "openai"], 2, "--model is required"),
    ],
)
def test_errors_are_clear(cat_png, extra, code, message):
    res = _run("chain", cat_png, "--question", "Q", *extra)
    assert res.exit_code == code and message in res.output


def test_unreadable_image(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    res = _run("chain", bad, "--question", "Q", "--answer", "x")
    assert res.exit_code == 2 and "bad.png" in res.output


def test_help_is_light():
    code = (
        "import sys; from factory.cli import app; "
        "assert 'openai' not in sys.modules and 'jinja2' not in sys.modules, 'heavy import'"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
    res = _run("chain", "--help")
    assert res.exit_code == 0 and "--choices" in res.output and "--no-vision" in res.output
