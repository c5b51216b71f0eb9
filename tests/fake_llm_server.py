"""A local OpenAI-compatible server for tests and benchmarks (loopback only, bounded).

``POST /v1/chat/completions`` answers deterministically from the prompt: the reply depends only on
the request's text, so the chain writer's validators see the kind of text a cooperative model
writes (influence naming the degradations, a short reasoning, a conclusion stating the answer, a
rewrite of exactly the asked length).

Faults are injected at a configurable rate, decided by a hash of (seed, request body, how many
times this body was seen), so a run's faults do not depend on thread timing:

* ``429``: rate limited, with ``Retry-After``;
* ``500``: internal error;
* ``slow``: the answer comes after ``slow_seconds`` (a timeout when that exceeds the client's);
* ``drop``: the connection is closed without an answer;
* ``malformed``: a 200 whose body is not a chat completion (broken JSON);
* ``empty``: a completion with empty text;
* ``tags``: a completion whose text is polluted with chain tags;
* ``refusal``: a completion that refuses ("I'm sorry, but I can't help with that.");
* ``length``: a completion cut off at ``max_tokens`` (``finish_reason: "length"``).

Bounded: it only binds 127.0.0.1, refuses (503) after ``max_requests`` and shuts itself down after
``lifetime`` seconds. ``python tests/fake_llm_server.py --latency 0.2`` serves in the foreground
(used by ``bench/chains.py``) and prints its URL.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("429", "500", "slow", "drop", "malformed", "empty", "tags")
ALL_FAULTS = FAULTS + ("refusal", "length")

_FILLER = (
    "The large shapes that survive the damage agree with this reading of the scene.",
    "The overall layout and the main colours point the same way.",
    "Nothing that is still visible contradicts this answer.",
    "Seen as a clean picture, the scene would show the same objects.",
    "The coarse structure of the main object is clear enough to decide.",
    "The context of the picture makes this the natural reading.",
)


@dataclass
class ServerConfig:
    latency: float = 0.0
    """Seconds every answer waits (a model's latency)."""
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULTS
    slow_seconds: float = 0.3
    retry_after: float = 0.01
    """Seconds sent in Retry-After with a 429."""
    seed: int = 0
    max_requests: int = 100_000
    """The server answers 503 after this many requests: tests stay bounded."""
    lifetime: float = 600.0
    """The server shuts itself down after this many seconds."""
    require_key: str | None = None
    """Answer 401 unless the request carries ``Authorization: Bearer <require_key>``."""
    responder: Callable[[dict], str] | None = None
    """A scripted model: ``responder(request_json) -> reply text`` replaces :func:`answer_for`."""
    think: bool = False
    """Prefix every answer with a ``<think>…</think>`` block, as reasoning models served by vLLM/Ollama do."""


@dataclass
class Stats:
    requests: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    auth_headers: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    inflight: int = 0
    max_inflight: int = 0


def _prompt_text(req: dict) -> str:
    parts = []
    for msg in req.get("messages", []):
        content = msg.get("content", "")
        if isinstance(content, list):
            parts += [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        else:
            parts.append(str(content))
    return "\n".join(parts)


def answer_for(prompt: str) -> str:
    """What a cooperative model would write for one of the chain writer's prompts."""
    m = re.search(r"Correct answer: (.+)", prompt)
    answer = m.group(1).strip() if m else "the answer"
    if "Rewrite the reasoning" in prompt:
        target = int(re.search(r"about (\d+) words", prompt).group(1))
        words = f"Reading the picture as if it were clean, the visible evidence supports {answer}.".split()
        i = 0
        while len(words) < target:
            words += _FILLER[i % len(_FILLER)].split()
            i += 1
        return " ".join(words[:target]).rstrip(".,;") + "."
    if "In one sentence, conclude" in prompt:
        return f"Therefore the answer is {answer}."
    if "Write the reasoning" in prompt:
        return f"The main object is still recognisable despite the damage, and its shape matches {answer}."
    if "describe how this damage affects" in prompt:
        names = re.findall(r"^- ([a-z ]+) \(\d\.\d\d\):", prompt, flags=re.MULTILINE)
        what = ", ".join(names) if names else "damage"
        return (
            f"The {what} hide fine texture and lower the contrast, but the main shapes needed for the question "
            "remain visible."
        )
    return "ok"


def _draw(seed: int, digest: str, n: int, salt: str) -> float:
    h = hashlib.blake2b(f"{seed}|{digest}|{n}|{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


def make_server(config: ServerConfig | None = None):
    """Start the server on 127.0.0.1 (free port) in a thread; returns (server, base_url, stats)."""
    cfg = config or ServerConfig()
    unknown = set(cfg.faults) - set(ALL_FAULTS)
    if unknown:
        raise ValueError(f"unknown faults {sorted(unknown)}; use {ALL_FAULTS}")
    stats = Stats()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # silence
            pass

        def setup(self):
            super().setup()
            # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and
            # delayed ACKs add ~40 ms to every keep-alive response.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _send(self, code: int, payload: bytes, headers: dict | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def _json(self, code: int, obj: dict, headers: dict | None = None) -> None:
            self._send(code, json.dumps(obj).encode(), headers)

        def do_POST(self):  # noqa: N802
            with lock:
                stats.inflight += 1
                stats.max_inflight = max(stats.max_inflight, stats.inflight)
            try:
                return self._post()
            finally:
                with lock:
                    stats.inflight -= 1

        def _post(self):
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode("utf-8", "replace")
            digest = hashlib.sha256(raw.encode()).hexdigest()
            with lock:
                stats.requests += 1
                stats.auth_headers.append(self.headers.get("Authorization", ""))
                stats.bodies.append(raw)
                n = stats.seen.get(digest, 0)
                stats.seen[digest] = n + 1
                over = stats.requests > cfg.max_requests
                fault = None
                if cfg.fault_rate and cfg.faults and _draw(cfg.seed, digest, n, "fault") < cfg.fault_rate:
                    fault = cfg.faults[int(_draw(cfg.seed, digest, n, "kind") * len(cfg.faults))]
                outcome = "refused" if over else (fault or "ok")
                stats.by_outcome[outcome] = stats.by_outcome.get(outcome, 0) + 1
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._json(404, {"error": {"message": f"no route {self.path}"}})
            if cfg.require_key is not None and self.headers.get("Authorization") != f"Bearer {cfg.require_key}":
                return self._json(
                    401,
                    {
                        "error": {
                            "message": "Incorrect API key provided.",
                            "type": "invalid_request_error",
                            "code": "invalid_api_key",
                        }
                    },
                )
            if over:
                return self._json(503, {"error": {"message": "request budget of the test server exhausted"}})
            try:
                req = json.loads(raw)
            except ValueError:
                return self._json(400, {"error": {"message": "body is not JSON"}})
            if cfg.latency:
                time.sleep(cfg.latency)
            if fault == "429":
                return self._json(
                    429,
                    {"error": {"message": "rate limited", "type": "rate_limit"}},
                    {"Retry-After": str(cfg.retry_after)},
                )
            if fault == "500":
                return self._json(500, {"error": {"message": "internal error"}})
            if fault == "drop":
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return None
            if fault == "malformed":
                return self._send(200, b'{"id": "chatcmpl-broken", "choices": [{"message": ')
            if fault == "slow":
                time.sleep(cfg.slow_seconds)
            prompt = _prompt_text(req)
            text = cfg.responder(req) if cfg.responder is not None else answer_for(prompt)
            if fault == "empty":
                text = ""
            elif fault == "tags":
                text = f"<REASONING>{text}<REASONING_END>"
            elif fault == "refusal":
                text = "I'm sorry, but I can't help with that."
            if cfg.think:
                text = f"<think>The user wants a careful answer. <ANSWER>draft</ANSWER></think>\n{text}"
            return self._json(
                200,
                {
                    "id": f"chatcmpl-{digest[:12]}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": req.get("model", "fake"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "length" if fault == "length" else "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": len(prompt.split()),
                        "completion_tokens": len(text.split()),
                        "total_tokens": len(prompt.split()) + len(text.split()),
                    },
                },
            )

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # 64+ clients connect at once

        def handle_error(self, request, client_address):  # dropped connections are expected here
            pass

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    timer = threading.Timer(cfg.lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    server._stop_timer = timer  # type: ignore[attr-defined]
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1", stats


def stop_server(server) -> None:
    timer = getattr(server, "_stop_timer", None)
    if timer is not None:
        timer.cancel()
    server.shutdown()
    server.server_close()


def main() -> None:  # pragma: no cover - used by bench/chains.py
    """Serve in this process (``python tests/fake_llm_server.py --latency 0.2``); prints the URL."""
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--seconds", type=float, default=600.0, help="stop by itself after this long")
    args = ap.parse_args()
    server, url, _ = make_server(ServerConfig(latency=args.latency, fault_rate=args.fault_rate, lifetime=args.seconds))
    print(url, flush=True)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline and server._stop_timer.is_alive():  # type: ignore[attr-defined]
        time.sleep(0.2)
    stop_server(server)


if __name__ == "__main__":  # pragma: no cover
    main()
