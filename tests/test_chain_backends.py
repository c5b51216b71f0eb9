"""The backend registry of the chain writer: a third backend, registered here, is what it uses.

The fake chat model answers like the test server of ``fake_llm_server`` (its ``answer_for``: the
text a cooperative model writes for each of the writer's prompts), in process: no HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import io

import numpy as np
import pytest
from PIL import Image

from factory import degrade
from factory.chains import backends
from factory.chains.backends import Reply, Usage, ask, chat_messages, open_chat, register_backend, run_sync
from factory.chains.format import parse_chain
from factory.chains.writer import ChainConfig, ChainRequest, write_chains
from factory.errors import ConfigError
from fake_llm_server import _prompt_text, answer_for


class EchoChat:
    """A chat backend in the shape a new backend file has: keywords in, ``complete`` out."""

    instances: list[EchoChat] = []

    def __init__(self, **settings):
        self.settings = settings
        self.usage = Usage()
        self.messages: list[list[dict]] = []
        self.closed = False
        EchoChat.instances.append(self)

    async def complete(self, messages):
        self.messages.append(messages)
        self.usage.requests += 1
        self.usage.prompt_tokens += 10
        self.usage.completion_tokens += 5
        return Reply(answer_for(_prompt_text({"messages": messages})), "stop")

    async def aclose(self):
        self.closed = True


class CannedWriter:
    """A writer backend: the three fields without any model."""

    usage = None

    def __init__(self, cfg):
        self.cfg = cfg

    async def write(self, req, target):
        words = " ".join(["The", "shape", "is", "still", "clear"] + ["so"] * (target - 6) + [f"{req.answer_text}."])
        return "The damage hides fine texture and shifts the colours.", words, f"So the answer is {req.answer_text}."

    async def aclose(self):
        pass


@pytest.fixture()
def echo():
    EchoChat.instances.clear()
    register_backend("echo", EchoChat, description="in-process test model")
    register_backend("canned", CannedWriter, kind="writer")
    yield EchoChat
    backends.unregister_backend("echo")
    backends.unregister_backend("canned")


def _requests(n: int, *, images: bool = True) -> list[ChainRequest]:
    out = []
    for i in range(n):
        recipe = degrade.sample_recipe("train", 0, f"b{i}")
        clean = (np.arange(32 * 40 * 3) % 251).astype(np.uint8).reshape(32, 40, 3)
        req = ChainRequest(f"b{i}", f"What animal is in photo {i}?", ["a dog", "a cat"], "1", "a cat", recipe)
        if images:
            req.clean_image, req.degraded_image = clean, degrade.render(clean, recipe)
        out.append(req)
    return out


def test_a_registered_chat_backend_writes_the_chains(echo):
    reqs = _requests(3)
    report = write_chains(reqs, ChainConfig(backend="echo", model="m1", temperature=0.0, seed=5))
    assert [r.ok for r in report] == [True] * 3, [r.reason for r in report]
    assert {r.backend for r in report} == {"echo:m1"}
    for res in report:
        p = parse_chain(res.solution)
        assert p.is_complete and p.answer == "1" and p.type == res.type
    (chat,) = echo.instances  # one client for the batch, built from the chat settings, closed after
    assert chat.closed and chat.settings["model"] == "m1" and chat.settings["temperature"] == 0.0
    assert set(chat.settings) == set(backends.CHAT_SETTINGS) and chat.settings["seed"] == 5
    first = chat.messages[0]  # the influence step: system prompt, then both images before the text
    assert first[0]["role"] == "system"
    assert [p["type"] for p in first[1]["content"]] == ["image_url", "image_url", "text"]
    assert first[1]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert report.usage["requests"] == len(chat.messages) >= 3 * 3
    assert report.usage["prompt_tokens"] == 10 * len(chat.messages) and report.cost_usd is None


def test_no_vision_sends_no_images_and_unknown_backends_are_refused(echo):
    write_chains(_requests(1), ChainConfig(backend="echo", model="m", vision=False))
    assert all("image_url" not in str(m) for m in echo.instances[0].messages)
    backends.unregister_backend("echo")
    with pytest.raises(ConfigError, match="backend 'echo'") as err:
        write_chains(_requests(1), ChainConfig(backend="echo", model="m"))
    assert err.value.field == "backend" and "'template'" in str(err.value) and "'canned'" in str(err.value)


def test_a_writer_backend_needs_no_model(echo):
    report = write_chains(_requests(2, images=False), ChainConfig(backend="canned"))
    assert all(r.ok for r in report) and {r.backend for r in report} == {"canned"}
    assert report.usage == {} and not ChainConfig(backend="canned").uses_model
    assert ChainConfig(backend="echo").uses_model and ChainConfig().backend_label == "template"


def test_targets_by_name_load_lazily_and_registration_is_checked(echo):
    spec = register_backend("echo-lazy", "fake_llm_server:answer_for", replace=True)
    try:
        assert spec.load() is answer_for and "echo-lazy" in backends.backend_names()
    finally:
        backends.unregister_backend("echo-lazy")
    for kwargs, field in (
        ({"name": "echo", "target": EchoChat}, "name"),  # taken
        ({"name": "x y", "target": EchoChat}, "name"),
        ({"name": "x", "target": "no_colon"}, "target"),
        ({"name": "x", "target": EchoChat, "kind": "agent"}, "kind"),
    ):
        with pytest.raises(ConfigError) as err:
            register_backend(**kwargs)
        assert err.value.field == field
    assert backends.backend_names()[:2] == ("template", "openai")


def test_evaluation_sends_image_and_text_through_open_chat(echo):
    """The path evaluation uses: open_chat + ask (images as arrays) + run_sync."""
    chat = open_chat("echo", model="judge", temperature=0.0)
    img = np.zeros((300, 200, 3), np.uint8)

    async def run():
        try:
            return await asyncio.gather(ask(chat, "Q1", [img], max_side=64), ask(chat, "Q2", []))
        finally:
            await chat.aclose()

    replies = run_sync(run())
    assert [r.text for r in replies] == ["ok", "ok"] and chat.closed
    two, one = sorted(chat.messages, key=lambda m: len(m[0]["content"]))  # completion order varies
    url = one[0]["content"][0]["image_url"]["url"]
    assert one == chat_messages("Q1", [url]) and one[0]["role"] == "user"
    assert two == [{"role": "user", "content": [{"type": "text", "text": "Q2"}]}]
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        assert im.format == "PNG" and max(im.size) == 64  # downscaled to max_side
    with pytest.raises(ConfigError, match="writes chains itself"):
        open_chat("template")


def test_openai_is_the_registered_chat_client(monkeypatch):
    from factory.chains.llm import ChatClient

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    client = open_chat("openai", model="gpt-4o", temperature=0.0, max_tokens=64)
    assert isinstance(client, ChatClient) and isinstance(client, backends.ChatBackend)
    assert client.request_body(chat_messages("hi"))["temperature"] == 0.0
    assert run_sync(asyncio.sleep(0, result=7)) == 7
