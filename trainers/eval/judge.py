"""LLM judges: answers a benchmark scores by judgement, through the OpenAI-compatible chat backend.

A :class:`JudgeSpec` is one benchmark's judging protocol (its prompt template in ``prompts/``, the
judge model it names, how many calls, how a reply is read and how the calls combine);
:class:`Judge` runs it for answers (:meth:`Judge.judge_many`: many answers judged concurrently);
``trainers.eval.scoring.get_scorer("judge:<name>", cfg)`` wraps it as a scorer of the evaluation
(``scorer(text, sample, level, recipe) -> dict``). :data:`JUDGES` holds:

* ``rbench-vqa`` / ``rbench-cap`` / ``rbench-mcq``: R-Bench (arXiv 2410.05474; Q-Future/R-Bench
  ``R-Bench-Script.ipynb`` @ ce4098bc). Judge ``gpt-3.5-turbo`` with the system message "You are a
  helpful assistant."; the reply's last character is the score (anything else: 0). VQA: 5 calls,
  0/1/2 each, item = sum / 10. CAP: one call per reference caption, item = sum / (2 × captions).
  MCQ (optional; R-Bench's MCQ is scored by the shared answer matching by default, as VLMEvalKit
  does): 5 calls, 0/1, item = majority ``int(sum / 5 + 0.5)``.
* ``mmvet``: MM-Vet as VLMEvalKit scores it (``vlmeval/dataset/utils/mmvet.py``): judge
  ``gpt-4-turbo``, ``max_tokens`` 3, the reply must be a float in [0, 1]; up to 5 tries at
  temperature 0, 0.5, 1, 1.5, 2, else 0. The item score is that float (reported × 100 by
  VLMEvalKit; here a mean in [0, 1] like every accuracy).

Where we differ from the scripts, on purpose: the 5 votes of a call are requests with seeds 0–4
(same prompt, the API's default temperature), so a re-run asks the same requests and the disk cache
(``cache_dir``) answers them for free; the reply is right-stripped before its last character is
read; and a judge request that fails for good (after the backend's retries) fails that answer (it
is recorded in ``errors.jsonl`` and generated and judged again by the next run) instead of
scoring 0.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.errors import ConfigError

__all__ = ["JUDGES", "Judge", "JudgeSpec", "judge_answer_text"]

RBENCH_SYSTEM = "You are a helpful assistant."
"""The system message of R-Bench's judge (R-Bench-Script.ipynb, ``get_completion``)."""


@dataclass(frozen=True)
class JudgeSpec:
    """One benchmark's judging protocol (see the module docstring)."""

    name: str
    template: str
    """``prompts/<template>.j2``, rendered with ``question``, ``options``, ``truth``, ``response``
    and ``reference`` (the variables each template uses are listed in its header)."""
    task: str
    """The task label stored in each judged row (``VQA``, ``CAP``, ``MCQ``, ``mmvet``)."""
    model: str
    """The judge model the benchmark names (overridden by ``EvalConfig.judge_model``)."""
    system: str | None = None
    calls: str = "votes"
    """``votes``: ``votes`` calls with the same prompt; ``references``: one call per reference answer."""
    votes: int = 5
    parse: str = "last_char"
    """``last_char``: the reply's last character, one of ``allowed``; ``float``: the reply as a number in [0, 1]."""
    allowed: tuple[str, ...] = ("0", "1", "2")
    max_score: float = 2.0
    combine: str = "mean"
    """``mean``: sum / (``max_score`` × calls); ``majority``: ``int(sum / calls + 0.5)``."""
    temperatures: tuple[float | None, ...] = (None,)
    """Temperatures of the tries until a reply parses (``None``: the API's default, not sent)."""
    max_tokens: int | None = None
    source: str = ""


_RBENCH_SOURCE = "Q-Future/R-Bench R-Bench-Script.ipynb @ ce4098bc"
JUDGES: dict[str, JudgeSpec] = {
    "rbench-vqa": JudgeSpec("rbench-vqa", "judge_rbench_vqa", "VQA", "gpt-3.5-turbo", RBENCH_SYSTEM,
                            source=_RBENCH_SOURCE),
    "rbench-cap": JudgeSpec("rbench-cap", "judge_rbench_cap", "CAP", "gpt-3.5-turbo", RBENCH_SYSTEM,
                            calls="references", source=_RBENCH_SOURCE),
    "rbench-mcq": JudgeSpec("rbench-mcq", "judge_rbench_mcq", "MCQ", "gpt-3.5-turbo", RBENCH_SYSTEM,
                            allowed=("0", "1"), max_score=1.0, combine="majority", source=_RBENCH_SOURCE),
    "mmvet": JudgeSpec("mmvet", "judge_mmvet", "mmvet", "gpt-4-turbo", None, votes=1, parse="float",
                       allowed=(), max_score=1.0, temperatures=(0.0, 0.5, 1.0, 1.5, 2.0), max_tokens=3,
                       source="open-compass/VLMEvalKit vlmeval/dataset/utils/mmvet.py @ 09818277"),
}
"""The judges by name (``judge:<name>`` as a benchmark's scorer)."""


def judge_answer_text(text: str) -> str:
    """What is judged of a model output: its ``<ANSWER>`` block when it has a non-empty one, else
    the whole output (as the benchmark scripts judge a plain model's answer)."""
    from factory.chains.format import parse_chain

    answer = parse_chain(text).answer
    return (answer if answer is not None and answer.strip() else text).strip()


def _options_cell(choices: Sequence[str]) -> str:
    """R-Bench's options cell layout, ``A.running; B.Play football; ...`` (its release CSV)."""
    return "; ".join(f"{chr(65 + i)}.{' '.join(str(c).split())}" for i, c in enumerate(choices))


class Judge:
    """The LLM judge of ``spec`` (a :class:`JudgeSpec`) through a chat backend.

    ``model`` / ``base_url`` / ``backend`` / ``api_key`` pick the judge (default: the spec's model at
    OpenAI, key from OPENAI_API_KEY); ``concurrency`` judge requests are in flight; ``cache_dir``
    keeps every reply on disk (a re-run is free). :meth:`judge_many` scores many answers
    concurrently (``(score in [0, 1], [score of each call])`` each); :meth:`close` releases the
    connections.

    A judge that cannot be used (no key, no model) is a :class:`factory.errors.ConfigError` naming
    ``judge_model`` when it is made, before any answer is generated."""

    def __init__(
        self,
        spec: JudgeSpec,
        *,
        model: str | None = None,
        base_url: str | None = None,
        backend: str = "openai",
        api_key: str | None = None,
        concurrency: int = 8,
        cache_dir: str | Path | None = None,
        max_retries: int = 4,
        prompts_dir: str | None = None,
    ):
        from factory.chains.backends import open_chat

        self.spec = spec
        self.model = model or spec.model
        self.prompts_dir = prompts_dir
        self.concurrency = max(1, int(concurrency))
        self._backend = backend
        self._settings: dict[str, Any] = dict(
            model=self.model, base_url=base_url, concurrency=self.concurrency, max_tokens=spec.max_tokens,
            max_retries=max_retries, backoff_base=0.5,
        )
        if api_key is not None:
            self._settings["api_key"] = api_key
        if cache_dir is not None:
            self._settings["cache_dir"] = str(cache_dir)
        try:
            open_chat(backend, temperature=None, seed=0, **self._settings)
        except ValueError as exc:
            raise ConfigError(
                "judge_model",
                f"the {spec.name} judge ({self.model}) cannot be used: {exc}",
                value=self.model,
                fix="set OPENAI_API_KEY, or serve a judge model and pass --judge-endpoint URL --judge-model NAME",
            ) from None
        self._clients: dict[tuple[int, float | None], Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sem: asyncio.Semaphore | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Judge({self.spec.name!r}, model={self.model!r})"

    # ------------------------------------------------------------ the protocol

    def prompts(self, text: str, sample: Any) -> list[str]:
        """The judge prompts of one answer (one per call; the votes of a call share the prompt)."""
        from factory.chains.prompting import render_prompt

        spec = self.spec
        response = judge_answer_text(text)
        question = str(getattr(sample, "question", "") or "")
        truth = str(getattr(sample, "answer", "") or "")
        choices = list(getattr(sample, "choices", None) or [])
        options = _options_cell(choices) if choices else ""
        if spec.task == "MCQ" and choices and truth.strip().isdigit():
            truth = chr(65 + int(truth))  # R-Bench's correct answer is the option's letter
        if spec.name == "mmvet":
            truth = (truth or str(getattr(sample, "answer_text", "") or "")).replace("<AND>", " <AND> ")
            truth = truth.replace("<OR>", " <OR> ")
        if spec.calls == "references":
            refs = [str(r) for r in (getattr(sample, "direct_answers", None) or []) if str(r).strip()]
            if not refs:
                raise ValueError(f"{spec.name}: the question has no reference answers to judge against")
            return [render_prompt(spec.template, self.prompts_dir, strip=False, question=question, options=options,
                                  truth=truth, response=response, reference=r) for r in refs]
        if not truth.strip():
            raise ValueError(f"{spec.name}: the question has no ground-truth answer to judge against")
        prompt = render_prompt(spec.template, self.prompts_dir, strip=False, question=question, options=options,
                               truth=truth, response=response, reference="")
        return [prompt] * spec.votes

    def read(self, reply: str) -> float | None:
        """One call's score from the judge's reply (``None``: unreadable, try again if allowed)."""
        if self.spec.parse == "float":
            try:
                v = float(reply.strip())
            except ValueError:
                return None
            return v if math.isfinite(v) and 0.0 <= v <= 1.0 else None
        last = reply.rstrip()[-1:]
        return float(last) if last in self.spec.allowed else None

    def combine(self, scores: Sequence[float]) -> float:
        if not scores:
            return 0.0
        if self.spec.combine == "majority":
            return float(int(sum(scores) / len(scores) + 0.5))
        return float(sum(scores) / (self.spec.max_score * len(scores)))

    # ------------------------------------------------------------ the calls

    def _client(self, seed: int, temperature: float | None) -> Any:
        from factory.chains.backends import open_chat

        key = (seed, temperature)
        if key not in self._clients:
            self._clients[key] = open_chat(self._backend, temperature=temperature, seed=seed, **self._settings)
        return self._clients[key]

    async def _call(self, prompt: str, seed: int) -> float:
        from factory.chains.backends import ask

        assert self._sem is not None
        for temperature in self.spec.temperatures:
            async with self._sem:
                reply = await ask(self._client(seed, temperature), prompt, [], system=self.spec.system)
            score = self.read(reply.text)
            if score is not None:
                return score
        return 0.0  # no readable reply: the benchmark scores 0

    async def _judge(self, text: str, sample: Any) -> tuple[float, list[float]]:
        prompts = self.prompts(text, sample)
        scores = await asyncio.gather(*(self._call(p, k) for k, p in enumerate(prompts)))
        return self.combine(scores), list(scores)

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="eval-judge", daemon=True)
                self._thread.start()

                async def make_sem() -> asyncio.Semaphore:
                    return asyncio.Semaphore(self.concurrency)

                self._sem = asyncio.run_coroutine_threadsafe(make_sem(), self._loop).result()
            return self._loop

    def judge_many(self, items: Sequence[tuple[str, Any]]) -> list[tuple[float, list[float]] | Exception]:
        """Judge many ``(model output, sample)`` pairs concurrently: ``(score, [score of each call])``
        (or the exception that failed it) per pair, in order."""
        loop = self._ensure_loop()

        async def all_items() -> list[Any]:
            return await asyncio.gather(*(self._judge(t, s) for t, s in items), return_exceptions=True)

        judged = asyncio.run_coroutine_threadsafe(all_items(), loop).result()
        return [r if not isinstance(r, BaseException) or isinstance(r, Exception) else RuntimeError(str(r))
                for r in judged]

    def judge(self, text: str, sample: Any) -> tuple[float, list[float]]:
        """Judge one answer (see :meth:`judge_many`); raises what failed it."""
        (res,) = self.judge_many([(text, sample)])
        if isinstance(res, Exception):
            raise res
        return res

    def close(self) -> None:
        """Close the judge's connections and stop its event loop (it is started again on use)."""
        with self._lock:
            loop, thread, clients = self._loop, self._thread, list(self._clients.values())
            self._loop = self._thread = self._sem = None
            self._clients = {}
        if loop is None:
            return

        async def close_all() -> None:
            await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout=60)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=60)
            loop.close()
