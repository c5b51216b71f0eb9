"""The openai backend with the real ``openai`` client against the local fake server (loopback only)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from factory import degrade
from factory.chains import llm
from factory.chains.format import parse_chain
from factory.chains.llm import ChatClient, DiskCache
from factory.chains.validate import length_bounds
from factory.chains.writer import ChainConfig, ChainRequest, write_chains
from fake_llm_server import ALL_FAULTS

SECRET = "sk-test-DO-NOT-LEAK-0123456789abcdef"


def _requests(n: int, seed: int = 0, prefix: str = "q", size: int = 16) -> list[ChainRequest]:
    out = []
    for i in range(n):
        r = degrade.sample_recipe("train", seed, f"{prefix}{i}")
        rng = np.random.default_rng(i)
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        out.append(
            ChainRequest(
                f"{prefix}{i}",
                f"What animal is shown in photo {i}?",
                ["a dog", "a cat", "a bird"],
                "1",
                "a cat",
                r,
                img,
                degrade.render(img, r),
            )
        )
    return out


def _cfg(url: str, tmp_path, **kw) -> ChainConfig:
    base = dict(
        backend="openai",
        model="fake-model",
        base_url=url,
        cache_dir=str(tmp_path / "cache"),
        concurrency=16,
        backoff_base=0.002,
        backoff_max=0.01,
        timeout=5.0,
        api_key=SECRET,
    )
    base.update(kw)
    return ChainConfig(**base)


def _assert_valid(res, req):
    assert res.ok, res.reason
    p = parse_chain(res.solution)
    assert p.is_complete and p.answer == req.answer
    assert [(t.name, t.intensity) for t in p.type_pairs] == req.recipe.type_pairs()
    lo, hi = length_bounds(res.target_words, 0.25)
    assert lo <= len(p.reasoning.split()) <= hi
    assert req.answer_text in p.conclusion


# ---------------------------------------------------------------- the acceptance scenario


def test_faults_then_zero_requests_on_rerun_and_no_key_anywhere(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    url, stats = server(fault_rate=0.2, faults=ALL_FAULTS, seed=3, slow_seconds=0.6, retry_after=0.01)
    reqs = _requests(200)
    cfg = _cfg(url, tmp_path, concurrency=32, timeout=0.4)
    progress = []
    rep = write_chains(reqs, cfg, progress=progress.append)
    assert len(rep) == 200 and len(progress) == 200
    for req, res in zip(reqs, rep):
        assert res.sample_id == req.sample_id
        if res.ok:
            _assert_valid(res, req)
            assert res.backend == "openai:fake-model"
        else:
            assert res.reason and not res.solution
    assert len(rep.ok) >= 180
    # Every kind of fault happened and was survived.
    assert set(ALL_FAULTS) <= set(stats.by_outcome)
    errors = rep.usage["errors"]
    assert {"RateLimitError", "InternalServerError", "APITimeoutError", "MalformedResponse"} <= set(errors)
    assert any(k in errors for k in ("APIConnectionError", "APITimeoutError"))  # dropped connections
    assert rep.usage["retries"] > 0 and rep.usage["prompt_tokens"] > 0 and rep.usage["completion_tokens"] > 0
    assert stats.max_inflight <= 32

    before = stats.requests
    again = write_chains(reqs, cfg)
    assert stats.requests == before, "a re-run must be served from the cache"
    assert [r.solution for r in again] == [r.solution for r in rep]
    assert [r.reason for r in again] == [r.reason for r in rep]
    assert again.usage["requests"] == 0 and again.usage["cached"] > 0

    # The key goes to the server and nowhere else: not in cache files, logs, results or usage.
    assert stats.auth_headers and all(h == f"Bearer {SECRET}" for h in stats.auth_headers)
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert len(files) > 600
    for p in files:
        assert SECRET not in p.read_text()
    assert SECRET not in caplog.text
    dumped = json.dumps([r.__dict__ for r in rep]) + json.dumps(rep.usage) + repr(cfg)
    assert SECRET not in dumped


# ---------------------------------------------------------------- retries and failures


def test_persistent_server_errors_are_recorded_not_raised(server, tmp_path):
    url, stats = server(fault_rate=1.0, faults=("500",))
    rep = write_chains(_requests(3), _cfg(url, tmp_path, max_retries=2))
    assert [r.ok for r in rep] == [False] * 3
    assert all("gave up after 3 attempts: InternalServerError" in r.reason for r in rep)
    assert stats.requests == 3 * 3
    assert rep.usage["errors"] == {"InternalServerError": 9}


def test_timeouts_are_retried_then_recorded(server, tmp_path):
    url, _ = server(fault_rate=1.0, faults=("slow",), slow_seconds=0.5)
    rep = write_chains(_requests(2), _cfg(url, tmp_path, max_retries=1, timeout=0.15))
    assert all(not r.ok and "APITimeoutError" in r.reason for r in rep)


@pytest.mark.parametrize(
    "fault,error", [("drop", "APIConnectionError"), ("malformed", "MalformedResponse"), ("429", "RateLimitError")]
)
def test_each_transport_fault_is_retried(server, tmp_path, fault, error):
    url, stats = server(fault_rate=0.5, faults=(fault,), seed=1)
    reqs = _requests(6)
    rep = write_chains(reqs, _cfg(url, tmp_path, max_retries=8))
    for req, res in zip(reqs, rep):
        _assert_valid(res, req)
    assert stats.by_outcome.get(fault, 0) > 0
    errs = rep.usage["errors"]
    assert errs.get(error, 0) + (errs.get("APITimeoutError", 0) if fault == "drop" else 0) == stats.by_outcome[fault]


def test_retry_after_is_honoured_and_pauses_the_whole_client(server, tmp_path, monkeypatch):
    url, _ = server(fault_rate=1.0, faults=("429",), retry_after=0.05)
    delays = []
    real = ChatClient._delay

    def spy(self, attempt, retry_after):
        d = real(self, attempt, retry_after)
        delays.append((retry_after, d))
        return d

    monkeypatch.setattr(ChatClient, "_delay", spy)
    rep = write_chains(_requests(2), _cfg(url, tmp_path, max_retries=2, backoff_base=0.001))
    assert all(not r.ok and "RateLimitError" in r.reason for r in rep)
    assert delays and all(ra == pytest.approx(0.05) and d >= 0.05 for ra, d in delays)


def test_backoff_and_retry_after_parsing():
    c = ChatClient(
        model="m", base_url="http://127.0.0.1:9/v1", api_key="k", backoff_base=1.0, backoff_max=8.0, retry_after_max=30
    )
    for attempt in range(8):
        d = c._delay(attempt, None)
        expo = min(8.0, 2.0**attempt)
        assert expo / 2 <= d <= expo  # exponential, capped, with jitter
    assert c._delay(0, 12.0) == 12.0 and c._delay(0, 500.0) == 30.0

    class Resp:
        def __init__(self, headers):
            self.headers = headers

    class Exc(Exception):
        def __init__(self, headers):
            self.response = Resp(headers)

    assert ChatClient._retry_after(Exc({"retry-after": "3"})) == 3.0
    assert ChatClient._retry_after(Exc({"retry-after-ms": "250", "retry-after": "3"})) == 0.25
    assert ChatClient._retry_after(Exc({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0  # in the past
    assert ChatClient._retry_after(Exc({"retry-after": "soon"})) is None
    assert ChatClient._retry_after(Exc({})) is None
    assert ChatClient._retry_after(ValueError()) is None


def test_a_wrong_key_stops_the_client_after_one_request(server, tmp_path):
    url, stats = server(require_key="sk-right-key")
    rep = write_chains(_requests(5), _cfg(url, tmp_path, concurrency=1, api_key="sk-wrong-key-123456"))
    assert all(not r.ok for r in rep)
    assert all("401" in r.reason and "OPENAI_API_KEY" in r.reason for r in rep)
    assert stats.requests == 1
    assert all("sk-wrong-key-123456" not in r.reason for r in rep)


def test_a_wrong_url_is_a_clear_failure(server, tmp_path):
    url, _ = server()
    rep = write_chains(_requests(2), _cfg(url.replace("/v1", "/nope"), tmp_path, concurrency=1))
    assert all(not r.ok and "404" in r.reason and "--base-url" in r.reason for r in rep)


@pytest.mark.parametrize(
    "fault,reason",
    [
        ("tags", "chain tags"),
        ("empty", "empty"),
        ("refusal", "refusal boilerplate"),
        ("length", "cut off at max_tokens"),
    ],
)
def test_invalid_text_is_regenerated_then_failed(server, tmp_path, fault, reason):
    url, stats = server(fault_rate=1.0, faults=(fault,))
    rep = write_chains(_requests(2), _cfg(url, tmp_path, max_regenerations=1))
    assert all(not r.ok and reason in r.reason and "step influence, 2 attempts" in r.reason for r in rep)
    assert stats.requests == 2 * 2  # first try + one regeneration, for the influence step
    rejected = [b for b in stats.bodies if "Your previous answer was rejected" in b]
    assert len(rejected) == 2


def test_think_blocks_of_reasoning_models_are_stripped(server, tmp_path):
    url, _ = server(think=True)
    reqs = _requests(4)
    rep = write_chains(reqs, _cfg(url, tmp_path))
    for req, res in zip(reqs, rep):
        _assert_valid(res, req)
        assert "think" not in res.solution and "draft" not in res.solution


def test_connection_refused_is_recorded(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    rep = write_chains(_requests(2), _cfg(f"http://127.0.0.1:{port}/v1", tmp_path, max_retries=1))
    assert all(not r.ok and "gave up after 2 attempts" in r.reason for r in rep)


# ---------------------------------------------------------------- what is sent, cache, usage


def test_requests_carry_images_as_data_urls_unless_no_vision(server, tmp_path):
    url, stats = server()
    reqs = _requests(2)
    write_chains(reqs, _cfg(url, tmp_path))
    bodies = [json.loads(b) for b in stats.bodies]
    by_step = {}
    for b in bodies:
        text = b["messages"][1]["content"][-1]["text"]
        images = [p for p in b["messages"][1]["content"] if p["type"] == "image_url"]
        step = (
            "influence"
            if "describe how this damage" in text
            else "reasoning"
            if "Write the reasoning" in text
            else "other"
        )
        by_step.setdefault(step, []).append(len(images))
        assert all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in images)
        assert b["model"] == "fake-model" and b["messages"][0]["role"] == "system"
    assert set(by_step["influence"]) == {2} and set(by_step["reasoning"]) == {1} and set(by_step["other"]) == {0}

    url2, stats2 = server()
    rep = write_chains(reqs, _cfg(url2, tmp_path, vision=False, cache_dir=str(tmp_path / "c2")))
    assert all(r.ok for r in rep)
    assert stats2.bodies and all("image_url" not in b and "No image" in b for b in stats2.bodies[:1])
    assert all("image_url" not in b for b in stats2.bodies)


def test_cache_is_keyed_by_the_full_request(server, tmp_path):
    url, stats = server()
    reqs = _requests(3)
    cfg = _cfg(url, tmp_path)
    write_chains(reqs, cfg)
    n = stats.requests
    write_chains(reqs, cfg)
    assert stats.requests == n
    write_chains(reqs, _cfg(url, tmp_path, temperature=0.7))  # other parameters: new requests
    assert stats.requests == 2 * n
    write_chains(reqs, _cfg(url, tmp_path, model="other-model"))
    assert stats.requests == 3 * n
    changed = _requests(3)
    changed[0].degraded_image = changed[0].degraded_image.copy()
    changed[0].degraded_image[0, 0] ^= 1  # one pixel differs: the influence and reasoning calls change
    write_chains(changed, cfg)
    assert stats.requests == 3 * n + 2
    # The key of a request does not depend on the API key or the server address.
    url2, stats2 = server()
    write_chains(reqs, _cfg(url2, tmp_path, api_key="sk-another-key-000"))
    assert stats2.requests == 0


def test_cache_survives_corrupt_entries_and_is_atomic(tmp_path):
    cache = DiskCache(tmp_path)
    key = DiskCache.key({"model": "m", "messages": []})
    assert cache.get(key) is None
    cache.put(key, {"text": "hello"})
    assert cache.get(key) == {"text": "hello"}
    assert not [p for p in tmp_path.rglob("*.tmp")]
    (tmp_path / key[:2] / f"{key}.json").write_text("{broken")
    assert DiskCache(tmp_path).get(key) is None
    (tmp_path / key[:2] / f"{key}.json").write_text(json.dumps({"no": "text"}))
    assert DiskCache(tmp_path).get(key) is None
    later = DiskCache(tmp_path)
    k2 = DiskCache.key(b"x")
    later.put_later(k2, {"text": "queued"})
    assert later.get(k2) == {"text": "queued"}  # visible before it is written
    later.flush()
    assert DiskCache(tmp_path).get(k2) == {"text": "queued"} and len(DiskCache(tmp_path)) == 2


def test_identical_requests_in_flight_share_one_call(server, tmp_path):
    url, stats = server(latency=0.05)
    reqs = _requests(2)
    twins = [reqs[0], reqs[0], reqs[0], reqs[1]]
    rep = write_chains(twins, _cfg(url, tmp_path, cache_dir=None))
    assert [r.solution for r in rep[:3]] == [rep[0].solution] * 3 and all(r.ok for r in rep)
    assert rep.usage["cached"] > 0
    calls_per_sample = stats.requests / 2
    assert 3 <= calls_per_sample <= 4


def test_concurrency_is_bounded(server, tmp_path):
    url, stats = server(latency=0.05)
    rep = write_chains(_requests(12), _cfg(url, tmp_path, concurrency=3))
    assert all(r.ok for r in rep)
    assert 1 <= stats.max_inflight <= 3


def test_usage_and_cost_are_summed(server, tmp_path):
    url, stats = server()
    rep = write_chains(_requests(3), _cfg(url, tmp_path, cost_per_1k_in=0.5, cost_per_1k_out=2.0))
    sent = [json.loads(b) for b in stats.bodies]
    assert rep.usage["requests"] == len(sent) == stats.requests
    pt, ct = rep.usage["prompt_tokens"], rep.usage["completion_tokens"]
    assert pt > 0 and ct > 0
    assert rep.cost_usd == pytest.approx(pt / 1000 * 0.5 + ct / 1000 * 2.0)
    rep2 = write_chains(_requests(3), _cfg(url, tmp_path, model="gpt-4o-mini", cache_dir=str(tmp_path / "c2")))
    pin, pout = llm.PRICES_PER_1K["gpt-4o-mini"]
    assert rep2.cost_usd == pytest.approx(
        rep2.usage["prompt_tokens"] / 1000 * pin + rep2.usage["completion_tokens"] / 1000 * pout
    )
    rep3 = write_chains(_requests(3), _cfg(url, tmp_path, model="local-model", cache_dir=str(tmp_path / "c3")))
    assert rep3.cost_usd is None


def test_parameters_set_to_none_are_not_sent(server, tmp_path):
    url, stats = server()
    cfg = _cfg(url, tmp_path, temperature=None, max_tokens=None, seed=None, extra_body={"max_completion_tokens": 300})
    rep = write_chains(_requests(1), cfg)
    assert rep[0].ok
    for b in map(json.loads, stats.bodies):
        assert "temperature" not in b and "max_tokens" not in b and "seed" not in b
        assert b["max_completion_tokens"] == 300
    assert {"temperature", "max_tokens", "seed"} <= set(json.loads(_first_body_default(server, tmp_path)))


def _first_body_default(server, tmp_path) -> str:
    url, stats = server()
    write_chains(_requests(1), _cfg(url, tmp_path, cache_dir=None))
    return stats.bodies[0]


def test_a_broken_user_template_fails_before_any_request(server, tmp_path):
    url, stats = server()
    pdir = tmp_path / "prompts"
    pdir.mkdir()
    (pdir / "reasoning.j2").write_text("{{ question }} {{ no_such_variable }}")
    with pytest.raises(ValueError, match="reasoning.j2: 'no_such_variable' is undefined"):
        write_chains(_requests(2), _cfg(url, tmp_path, prompts_dir=str(pdir)))
    assert stats.requests == 0


def test_custom_prompts_reach_the_server(server, tmp_path):
    url, stats = server()
    pdir = tmp_path / "prompts"
    pdir.mkdir()
    (pdir / "system.j2").write_text("CUSTOM SYSTEM PROMPT")
    rep = write_chains(_requests(1), _cfg(url, tmp_path, prompts_dir=str(pdir)))
    assert rep[0].ok
    assert all(json.loads(b)["messages"][0]["content"] == "CUSTOM SYSTEM PROMPT" for b in stats.bodies)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
def test_both_http_transports_survive_faults(server, tmp_path, transport):
    url, _ = server(fault_rate=0.3, faults=("429", "500", "drop", "malformed"), seed=5)
    reqs = _requests(10)
    rep = write_chains(reqs, _cfg(url, tmp_path, transport=transport, max_retries=8))
    for req, res in zip(reqs, rep):
        _assert_valid(res, req)


def test_missing_key_and_model_are_clear_errors(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        write_chains(_requests(1), ChainConfig(backend="openai", model="gpt-4o"))
    with pytest.raises(ValueError, match="--model is required"):
        write_chains(_requests(1), ChainConfig(backend="openai", base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(ValueError, match="transport"):
        write_chains(
            _requests(1), ChainConfig(backend="openai", model="m", base_url="http://127.0.0.1:9/v1", transport="curl")
        )


def test_the_key_is_read_from_the_environment(server, tmp_path, monkeypatch):
    url, stats = server(require_key=SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    rep = write_chains(_requests(1), _cfg(url, tmp_path, api_key=None))
    assert rep[0].ok and stats.auth_headers[0] == f"Bearer {SECRET}"
    client = ChatClient(model="m", base_url=url)
    assert SECRET not in repr(client) and SECRET not in str(client.__dict__.get("usage"))
