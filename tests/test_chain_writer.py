"""The chain writer: template backend, OpenAI-compatible backend against a local server, CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from factory import degrade
from factory.chains.format import parse_chain
from factory.chains.prompting import build_prompt, format_question, render_prompt, target_words
from factory.chains.writer import ChainConfig, ChainRequest, write_chains
from factory.cli import app
from factory.photos import photo
from fake_llm_server import ServerConfig, make_server

SECRET = "sk-test-DO-NOT-LEAK-0123456789abcdef"


def _requests(n: int, seed: int = 0) -> list[ChainRequest]:
    img = np.zeros((16, 16, 3), np.uint8)
    out = []
    for i in range(n):
        r = degrade.sample_recipe("train", seed, f"q{i}")
        out.append(ChainRequest(f"q{i}", f"What animal is shown in photo {i}?", ["a dog", "a cat", "a bird"], "1", "a cat", r, img, img))
    return out


@pytest.fixture()
def server():
    servers = []

    def start(**kw):
        srv, url, stats = make_server(ServerConfig(**kw))
        servers.append(srv)
        return url, stats

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _llm_config(url: str, tmp_path, **kw) -> ChainConfig:
    base = dict(backend="openai", model="fake-model", base_url=url, cache_dir=str(tmp_path / "cache"), concurrency=16,
                backoff_base=0.005, backoff_max=0.02, timeout=3.0, api_key=SECRET)
    base.update(kw)
    return ChainConfig(**base)


# ---------------------------------------------------------------- prompts and length


def test_target_words_grows_with_intensity_and_is_clamped():
    assert target_words(0) == 25 and target_words(1.0) == 55 and target_words(2.03) == 86 and target_words(9) == 200
    assert target_words(1.0, base=10, per_unit=10, lo=5, hi=50) == 20
    with pytest.raises(ValueError):
        target_words(float("nan"))


def test_question_and_prompt():
    assert format_question("What is it?", ["a", "b"]) == "What is it? 0. a 1. b"
    p = build_prompt("What is it?", ["a", "b"])
    assert p.startswith("What is it? 0. a 1. b") and "<TYPE>" in p and "<ANSWER>" in p and "number of the correct option" in p
    assert "number of the correct option" not in build_prompt("What is it?", [])


def test_prompts_are_strict_and_overridable(tmp_path):
    with pytest.raises(ValueError, match="'question' is undefined"):
        render_prompt("conclusion", reasoning="r", answer_text="a")
    (tmp_path / "instruction.j2").write_text("CUSTOM {{ question }}")
    assert build_prompt("Q?", [], prompts_dir=tmp_path) == "CUSTOM Q?"
    assert "Correct answer: x" in render_prompt("conclusion", tmp_path, question="q", reasoning="r", answer_text="x")
    with pytest.raises(ValueError, match="no such folder"):
        build_prompt("Q?", [], prompts_dir=tmp_path / "missing")


# ---------------------------------------------------------------- template backend


def test_template_chains_are_valid_deterministic_and_scaled():
    reqs = _requests(60)
    a = write_chains(reqs, ChainConfig()).results
    b = write_chains(reqs, ChainConfig()).results
    assert [r.solution for r in a] == [r.solution for r in b]
    for req, res in zip(reqs, a):
        assert res.ok, res.reason
        p = parse_chain(res.solution)
        assert p.is_complete and p.answer == "1" and res.backend == "template"
        assert [(t.name, t.intensity) for t in p.type_pairs] == req.recipe.type_pairs()
        assert abs(len(p.reasoning.split()) - res.target_words) <= 0.25 * res.target_words
        assert res.target_words == target_words(req.recipe.total_intensity)
        assert "a cat" in p.conclusion
        for step in req.recipe.steps:
            assert step.name in p.influence
    assert len({r.influence for r in a}) > 50  # wording varies between samples


def test_template_length_follows_the_damage():
    reqs = _requests(200)
    res = write_chains(reqs, ChainConfig()).results
    ti = np.array([r.recipe.total_intensity for r in reqs])
    lens = np.array([len(parse_chain(x.solution).reasoning.split()) for x in res])
    assert np.corrcoef(ti, lens)[0, 1] > 0.9


# ---------------------------------------------------------------- openai backend


def test_openai_backend_with_faults_then_zero_requests_on_rerun(server, tmp_path, caplog):
    url, stats = server(fault_rate=0.2, seed=3, slow_seconds=0.05, retry_after=0.01)
    reqs = _requests(200)
    cfg = _llm_config(url, tmp_path)
    rep = write_chains(reqs, cfg)
    assert len(rep.results) == 200
    assert all(r.ok or r.reason for r in rep.results)
    assert sum(r.ok for r in rep.results) >= 190
    for r in rep.results:
        if r.ok:
            p = parse_chain(r.solution)
            assert p.is_complete and r.backend == "openai:fake-model"
            assert abs(len(p.reasoning.split()) - r.target_words) <= 0.25 * r.target_words
    assert {"429", "500", "drop", "tags", "empty"} <= set(stats.by_outcome)
    assert rep.usage["retries"] > 0 and rep.usage["prompt_tokens"] > 0
    before = stats.requests
    again = write_chains(reqs, cfg)
    assert stats.requests == before, "a re-run must be served from the cache"
    assert [r.solution for r in again.results] == [r.solution for r in rep.results]
    # the key is sent to the server, and nowhere else
    assert stats.auth_headers and all(h == f"Bearer {SECRET}" for h in stats.auth_headers)
    for p in (tmp_path / "cache").rglob("*"):
        if p.is_file():
            assert SECRET not in p.read_text()
    assert SECRET not in caplog.text
    assert SECRET not in json.dumps([r.fields() for r in rep.results]) + json.dumps(rep.usage)


def test_persistent_failures_are_recorded_not_raised(server, tmp_path):
    url, _ = server(fault_rate=1.0, faults=("500",))
    rep = write_chains(_requests(3), _llm_config(url, tmp_path, max_retries=2))
    assert [r.ok for r in rep.results] == [False] * 3
    assert all("gave up after 3 attempts" in r.reason for r in rep.results)


def test_polluted_text_is_regenerated_then_failed(server, tmp_path):
    url, stats = server(fault_rate=1.0, faults=("tags",))
    rep = write_chains(_requests(2), _llm_config(url, tmp_path, max_regenerations=1))
    assert all(not r.ok and "chain tags" in r.reason for r in rep.results)
    assert stats.requests == 2 * 2  # first try + one regeneration for the influence step


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        write_chains(_requests(1), ChainConfig(backend="openai", model="gpt-4o"))
    with pytest.raises(ValueError, match="backend"):
        write_chains(_requests(1), ChainConfig(backend="claude"))


# ---------------------------------------------------------------- CLI


@pytest.fixture()
def cat_png(tmp_path):
    p = tmp_path / "cat.png"
    degrade.save_image(degrade.to_rgb_uint8(photo("chelsea"))[::4, ::4], p)
    return p


def test_chain_cli_json(cat_png):
    res = CliRunner().invoke(app, ["chain", str(cat_png), "--question", "What animal?", "--choices", "a dog,a cat", "--answer", "1", "--seed", "2", "--json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.output)
    assert {"degradations", "type", "influence", "reasoning", "conclusion", "answer", "solution"} <= set(obj)
    assert obj["answer"] == "1" and parse_chain(obj["solution"]).is_complete
    assert [d["name"] for d in obj["degradations"]] == [t.name for t in parse_chain(obj["solution"]).type_pairs]


def test_chain_cli_openai_uses_env_key_and_cache(cat_png, server, tmp_path, monkeypatch):
    url, stats = server()
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    args = ["chain", str(cat_png), "--question", "What animal?", "--answer", "cat", "--backend", "openai",
            "--base-url", url, "--model", "fake", "--cache", str(tmp_path / "c")]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "<ANSWER>cat<ANSWER_END>" in first.output and SECRET not in first.output
    n = stats.requests
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and stats.requests == n


def test_chain_cli_bad_answer(cat_png):
    res = CliRunner().invoke(app, ["chain", str(cat_png), "--question", "Q", "--choices", "a,b", "--answer", "7"])
    assert res.exit_code == 2 and "out of range" in res.output
