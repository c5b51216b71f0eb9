"""A local OpenAI-compatible server for tests and benchmarks (loopback only, bounded).

``POST /v1/chat/completions`` answers deterministically from the prompt: the reply depends only on
the request's text, so the chain writer's validators see the kind of text a real model writes.
Faults are injected by a seeded RNG at a configurable rate: 429 with Retry-After, 500, slow
responses, dropped connections, and malformed (empty) or tag-polluted text.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("429", "500", "slow", "drop", "empty", "tags")


@dataclass
class ServerConfig:
    latency: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULTS
    slow_seconds: float = 0.3
    retry_after: float = 0.01
    seed: int = 0
    max_requests: int = 100_000
    """The server refuses (503) after this many requests: tests stay bounded."""


@dataclass
class Stats:
    requests: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    auth_headers: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)


def _answer_for(prompt: str) -> str:
    """What a cooperative model would write for one of the chain writer's prompts."""
    m = re.search(r"Correct answer: (.+)", prompt)
    answer = m.group(1).strip() if m else "the answer"
    if "Rewrite the reasoning" in prompt:
        target = int(re.search(r"about (\d+) words", prompt).group(1))
        base = f"The visible evidence supports {answer}. "
        filler = "The remaining shapes and colours agree with this reading of the scene. "
        text = base
        while len(text.split()) + len(filler.split()) <= target:
            text += filler
        return text.strip()
    if "In one sentence, conclude" in prompt:
        return f"Therefore the answer is {answer}."
    if "Write the reasoning" in prompt:
        return f"The main object is still recognisable despite the damage, and its shape matches {answer}."
    if "describe how this damage affects" in prompt:
        return "The damage hides fine texture and lowers contrast, but the main shapes remain visible."
    return "ok"


def make_server(config: ServerConfig | None = None):
    """Start the server on 127.0.0.1 (free port) in a thread; returns (server, base_url, stats)."""
    cfg = config or ServerConfig()
    stats = Stats()
    rng = random.Random(cfg.seed)
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

        def _send(self, code: int, payload: dict, headers: dict | None = None) -> None:
            body = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode("utf-8", "replace")
            with lock:
                stats.requests += 1
                stats.auth_headers.append(self.headers.get("Authorization", ""))
                stats.bodies.append(raw)
                over = stats.requests > cfg.max_requests
                fault = rng.choice(cfg.faults) if (cfg.fault_rate and rng.random() < cfg.fault_rate) else None
                stats.by_outcome[fault or ("refused" if over else "ok")] = stats.by_outcome.get(fault or ("refused" if over else "ok"), 0) + 1
            if not self.path.endswith("/chat/completions"):
                return self._send(404, {"error": {"message": "not found"}})
            if over:
                return self._send(503, {"error": {"message": "request budget exhausted"}})
            if cfg.latency:
                time.sleep(cfg.latency)
            if fault == "429":
                return self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"Retry-After": str(cfg.retry_after)})
            if fault == "500":
                return self._send(500, {"error": {"message": "internal error"}})
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
                return None
            if fault == "slow":
                time.sleep(cfg.slow_seconds)
            req = json.loads(raw)
            prompt = "\n".join(
                part.get("text", "") if isinstance(part, dict) else str(part)
                for msg in req.get("messages", [])
                for part in (msg["content"] if isinstance(msg.get("content"), list) else [{"text": msg.get("content", "")}])
            )
            text = _answer_for(prompt)
            if fault == "empty":
                text = ""
            elif fault == "tags":
                text = f"<REASONING>{text}<REASONING_END>"
            digest = hashlib.sha256(raw.encode()).hexdigest()[:12]
            return self._send(
                200,
                {
                    "id": f"chatcmpl-{digest}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": req.get("model", "fake"),
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()), "total_tokens": 0},
                },
            )

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1", stats


def main() -> None:  # pragma: no cover - used by bench/chains.py
    """Serve in this process (``python tests/fake_llm_server.py --latency 0.2``); prints the URL."""
    import argparse
    import sys

    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--fault-rate", type=float, default=0.0)
    ap.add_argument("--seconds", type=float, default=600.0, help="stop by itself after this long")
    args = ap.parse_args()
    server, url, _ = make_server(ServerConfig(latency=args.latency, fault_rate=args.fault_rate))
    print(url, flush=True)
    time.sleep(args.seconds)
    server.shutdown()
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
