"""`robust-r1 build` under a careless or hostile world (issue 14, items 2, 7, 8, 9, 10): an LLM
outage is retried by the next run, secrets are never stored, LLM fields are bounded, one writer per
output folder, and a full disk is one line and a re-run recovers."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from factory.build import BuildConfig, build, row_hash
from factory.chains import backends
from factory.chains.backends import register_backend
from factory.chains.writer import ChainConfig, write_chains
from fake_llm_server import _prompt_text, answer_for

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-right-key-0123456789abcdef"
runner = CliRunner()


def _hashes(out: Path) -> dict[str, list[str]]:
    return {
        f.relative_to(out).as_posix(): [row_hash(r) for r in pq.read_table(f).to_pylist()]
        for f in sorted((out / "data").glob("*/*.parquet"))
    }


def _errors(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "errors.jsonl").read_text().splitlines()]


def _llm_build(out: Path, url: str, *extra: str) -> list[str]:
    return ["build", "--out", str(out), "--limit", "train=5,validation=2", "--shard-size", "3", "--backend", "openai",
            "--model", "fake-model", "--base-url", url, "--quiet", "--no-report", *extra]


def _everything(folder: Path) -> str:
    """Every byte under ``folder`` (cache, state, shards, manifest, errors), as text."""
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(folder.rglob("*")) if p.is_file())


# ---------------------------------------------------------------- item 2: an outage is retried


def test_a_wrong_key_leaves_every_sample_for_the_next_run(server, tmp_path, monkeypatch):
    url, _ = server(require_key=KEY)
    out, ref = tmp_path / "ds", tmp_path / "ref"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-wrong-key-0123456789")
    res = runner.invoke(__import__("factory.cli", fromlist=["app"]).app, _llm_build(out, url))
    assert res.exit_code == 3, res.output
    assert "incomplete: 7 sample(s) failed because the LLM service did" in res.output and "401" in res.output
    errors = _errors(out)
    assert len(errors) == 7 and all(e["retry"] is True and e["stage"] == "chain" for e in errors)
    assert json.loads((out / "build.json").read_text())["retry"] == 7
    assert not list((out / ".build" / "train").glob("*.done"))  # nothing is marked done

    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # the key fixed: the same command does the work
    from factory.cli import app

    res = runner.invoke(app, _llm_build(out, url))
    assert res.exit_code == 0, res.output
    assert not (out / "errors.jsonl").read_text() and json.loads((out / "build.json").read_text())["retry"] == 0
    assert runner.invoke(app, _llm_build(ref, url)).exit_code == 0  # an uninterrupted build
    assert _hashes(out) == _hashes(ref) and sum(len(v) for v in _hashes(out).values()) == 7


@pytest.mark.parametrize("kind", ["refused", "500"])
def test_connection_refused_and_server_errors_are_retriable(server, tmp_path, kind):
    from test_chain_openai import _cfg, _requests

    if kind == "refused":
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        s.close()
    else:
        url, _ = server(fault_rate=1.0, faults=("500",))
    rep = write_chains(_requests(2), _cfg(url, tmp_path, max_retries=1))
    assert all(not r.ok and r.retry for r in rep) and len(rep.deferred) == 2


def test_a_validation_failure_is_final_and_not_redone(server, tmp_path):
    from test_chain_openai import _cfg, _requests

    url, stats = server(fault_rate=1.0, faults=("refusal",))
    rep = write_chains(_requests(2), _cfg(url, tmp_path, max_regenerations=0))
    assert all(not r.ok and not r.retry and "refusal" in r.reason for r in rep)

    out = tmp_path / "ds"
    cfg = BuildConfig(out=str(out), limit=3, splits=("train",), report=False,
                      chain=_cfg(url, tmp_path, max_regenerations=0))
    first = build(cfg, progress=False)
    assert first.retry == 0 and first.errors == 3 and first.rows == 0
    assert (out / ".build" / "train" / "chunk-000000.done").exists()
    requests = stats.requests
    again = build(cfg, progress=False)
    assert again.processed == 0 and stats.requests == requests  # the recorded reasons stand


def test_a_crashing_chain_batch_is_retried(tmp_path, monkeypatch):
    import factory.build.chunk as fb

    def broken(requests, cfg):
        raise RuntimeError("chain writer bug")

    out = tmp_path / "ds"
    cfg = BuildConfig(out=str(out), limit=2, splits=("train",), report=False)
    monkeypatch.setattr(fb, "_write_chains", broken)
    s = build(cfg, progress=False)
    assert s.retry == 2 and s.rows == 0
    monkeypatch.undo()
    s = build(cfg, progress=False)
    assert s.retry == 0 and s.rows == 2 and s.processed == 2


def test_a_missing_key_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from factory.cli import app

    out = tmp_path / "ds"
    res = runner.invoke(app, ["build", "--out", str(out), "--backend", "openai", "--model", "m", "--quiet"])
    assert res.exit_code == 2 and "OPENAI_API_KEY" in res.output
    assert not out.exists()


# ---------------------------------------------------------------- item 7: secrets


def test_a_server_echoing_the_key_fails_the_sample_and_stores_nothing(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def echo(req):
        text = answer_for(_prompt_text(req))
        return f"{text} (debug: key {KEY})" if "describe how this damage" in _prompt_text(req) else text

    url, _ = server(responder=echo)
    out = tmp_path / "ds"
    from factory.cli import app

    res = runner.invoke(app, _llm_build(out, url))
    assert res.exit_code == 1, res.output  # nothing produced, for a final reason
    assert KEY not in res.output
    errors = _errors(out)
    assert len(errors) == 7 and all(not e.get("retry") and "live secret" in e["reason"] for e in errors)
    assert KEY not in _everything(out)  # not in the cache, the rows, the errors, the manifest, the state


def test_credentials_in_the_base_url_never_reach_the_outputs(tmp_path):
    from factory.cli import app

    out = tmp_path / "ds"
    url = "http://alice:hunter2-secret@127.0.0.1:9/v1?api_key=zz-query-secret-99"
    res = runner.invoke(app, ["build", "--out", str(out), "--limit", "2", "--split", "train", "--base-url", url,
                              "--quiet"])
    assert res.exit_code == 0, res.output
    text = _everything(out)
    assert "hunter2-secret" not in text and "zz-query-secret-99" not in text and "alice" not in text
    manifest = json.loads((out / "build.json").read_text())
    assert "--base-url 'http://127.0.0.1:9/v1?api_key=***'" in manifest["command"]
    assert manifest["chain"]["base_url"] == "http://127.0.0.1:9/v1?api_key=***"


def test_a_row_holding_a_credential_is_not_written(tmp_path, monkeypatch):
    import factory.build.chunk as fb

    fake = "hf_" + "Ab1" * 12  # built at run time: no token-shaped literal in the repository
    real = fb._write_chains

    def leaky(requests, cfg):
        out = real(requests, cfg)
        out[0].reasoning = out[0].reasoning + " " + fake
        out[0].solution = out[0].solution.replace("<REASONING_END>", f" {fake}<REASONING_END>")
        return out

    monkeypatch.setattr(fb, "_write_chains", leaky)
    out = tmp_path / "ds"
    s = build(BuildConfig(out=str(out), limit=2, splits=("train",), report=False), progress=False)
    assert s.rows == 1 and "contains a credential" in _errors(out)[0]["reason"]
    assert fake not in _everything(out)


# ---------------------------------------------------------------- item 10: length bounds


def test_a_200000_word_influence_is_rejected_with_a_reason(server, tmp_path):
    from test_chain_openai import _cfg, _requests

    def verbose(req):
        text = answer_for(_prompt_text(req))
        return "very " * 200_000 + text if "describe how this damage" in _prompt_text(req) else text

    url, stats = server(responder=verbose)
    rep = write_chains(_requests(1), _cfg(url, tmp_path, max_regenerations=1))
    (r,) = rep
    assert not r.ok and not r.retry
    assert r.reason.startswith("influence: 1,000,") and "over the limit of 6,000 (500 words)" in r.reason
    assert "2 attempts" in r.reason
    assert any("Your previous answer was rejected (influence:" in b for b in stats.bodies)


def test_any_backends_fields_are_bounded(tmp_path):
    class Verbose:
        usage = None

        def __init__(self, cfg):
            self.cfg = cfg

        async def write(self, req, target):
            return "ok " * 10, " ".join(["word"] * target), "So " + "x" * 5000 + f" {req.answer_text}."

        async def aclose(self):
            pass

    register_backend("verbose-test", Verbose, kind="writer", replace=True)
    try:
        from test_chain_writer import _req

        (r,) = write_chains([_req(0)], ChainConfig(backend="verbose-test"))
    finally:
        backends.unregister_backend("verbose-test")
    assert not r.ok and r.reason.startswith("conclusion: 5,0") and "characters, over the limit" in r.reason


def test_field_limits_follow_the_length_scaling():
    from factory.chains.validate import field_limits

    assert field_limits(200, 0.25) == {"influence": 500, "reasoning": 250, "conclusion": 125}
    assert field_limits(400, 0.25) == {"influence": 1000, "reasoning": 500, "conclusion": 250}
    assert field_limits(60, 0.25) == field_limits(200, 0.25)  # a short target never cuts the defaults


# ---------------------------------------------------------------- item 8: one writer per folder


def test_a_second_build_into_a_busy_folder_is_refused(tmp_path):
    from factory.cli import app
    from factory.lock import OutputLock

    out = tmp_path / "ds"
    with OutputLock(out, "build", command="robust-r1 build --out ds"):
        res = runner.invoke(app, ["build", "--out", str(out), "--limit", "2", "--quiet"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1].startswith("error: ")
    assert "is being written by robust-r1 build --out ds" in res.output
    assert sorted(p.name for p in out.iterdir()) == [".robust-r1.lock"]


CONCURRENT_BUILD = """
import os, sys, time
from factory.build import BuildConfig, build
from factory.sources import open_source

class Slow:
    # the demo source, slowed down so that the three builds overlap
    def __init__(self, split):
        self.inner = open_source("demo", split)
    def __len__(self):
        return len(self.inner)
    def describe(self):
        return self.inner.describe()
    def __iter__(self):
        for s in self.inner:
            time.sleep(0.05)
            yield s

out, go = sys.argv[1], sys.argv[2]
while not os.path.exists(go):  # every process is ready: start together
    time.sleep(0.005)
build(BuildConfig(source=lambda split: Slow(split), out=out, limit={"train": 8, "validation": 2}, shard_size=2,
                  report=False),
      progress=False)
"""


def test_three_concurrent_builds_leave_one_valid_dataset(tmp_path):
    out, ref, go = tmp_path / "ds", tmp_path / "ref", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT_BUILD, str(out), str(go)], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    go.touch()
    results = sorted((p.wait(timeout=300), p.stderr.read()) for p in procs)
    assert [code for code, _ in results] == [0, 1, 1], results
    for _, err in results[1:]:
        assert "FolderBusy" in err and "is being written by" in err  # named, not FileNotFoundError
    build(BuildConfig(source="demo", out=str(ref), limit={"train": 8, "validation": 2}, shard_size=2, report=False),
          progress=False)
    assert _hashes(out) == _hashes(ref)


# ---------------------------------------------------------------- item 9: disk full


def test_a_full_disk_is_one_line_and_the_rerun_recovers(tmp_path, monkeypatch):
    import pyarrow.parquet as pqmod

    from factory.cli import app

    out, ref = tmp_path / "ds", tmp_path / "ref"
    real = pqmod.ParquetWriter.write_table
    calls = {"n": 0}

    def full(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
        return real(self, *a, **kw)

    monkeypatch.setattr(pqmod.ParquetWriter, "write_table", full)
    args = ["build", "--out", str(out), "--limit", "train=8,validation=2", "--shard-size", "2", "--quiet",
            "--no-report"]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("error: ") and "no space left on device" in line and "run the same command again" in line
    assert str(out / ".build") in line and line.count("\n") == 0
    assert not list(out.rglob("*.tmp"))  # the chunk's temporary files are gone at once
    monkeypatch.undo()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    build(BuildConfig(out=str(ref), limit={"train": 8, "validation": 2}, shard_size=2, report=False), progress=False)
    assert _hashes(out) == _hashes(ref)
