import os
import sys
from pathlib import Path

import pytest

# Test helpers (fake LLM server, dataset fixtures) live next to the tests.
sys.path.insert(0, str(Path(__file__).parent))

# Without a GPU, TRL's Triton kernels must run interpreted. It has to be set before anything
# imports triton (any test importing TRL would), so it is set here, at collection.
if not Path("/dev/nvidia0").exists():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture()
def server():
    """``start(**ServerConfig fields) -> (url, stats)``: fake OpenAI-compatible servers
    (tests/fake_llm_server.py) on loopback, all stopped after the test. test_chain_cli.py has its own
    ``server`` (one server per test, returned as (url, stats))."""
    from fake_llm_server import ServerConfig, make_server, stop_server

    running = []

    def start(**kw):
        srv, url, stats = make_server(ServerConfig(**kw))
        running.append(srv)
        return url, stats

    yield start
    for srv in running:
        stop_server(srv)
