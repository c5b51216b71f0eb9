"""r_len (Eq. 8): how close the reasoning's length is to the ground truth's, in words or tokens."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from factory.chains.format import parse_chain

from .base import Reward
from .inputs import completion_text, finite, rows

__all__ = ["Counter", "TokenCounter", "WordCounter", "length_reward", "make_counter", "make_length_reward"]

log = logging.getLogger("robust_r1.trainers")


class WordCounter:
    """Length in whitespace-separated words."""

    unit = "words"

    def __call__(self, text: str) -> int | None:
        return len(text.split())

    def __repr__(self) -> str:
        return "WordCounter()"


class TokenCounter:
    """Length in tokens of ``tokenizer``: an HF tokenizer (``encode``), a processor holding one
    (``.tokenizer``), a ``tokenizers.Tokenizer``, or any callable ``str -> list`` (or ``-> dict``
    with ``input_ids``, or ``-> int``). Built once; nothing is loaded per call. Special tokens are
    not counted. Returns ``None`` (and logs) if the tokenizer fails on a text."""

    unit = "tokens"

    def __init__(self, tokenizer: Any) -> None:
        if tokenizer is None:
            raise ValueError("length_reward: unit='tokens' needs tokenizer= (an HF tokenizer or a callable).")
        inner = getattr(tokenizer, "tokenizer", None)
        if not (hasattr(tokenizer, "encode") or hasattr(inner, "encode") or callable(tokenizer)):
            raise ValueError(
                f"length_reward: tokenizer of type {type(tokenizer).__name__} has no encode() and is not callable."
            )
        self.tokenizer = tokenizer
        self._failures = 0
        try:
            probe = self._count("a b")
        except Exception as exc:  # noqa: BLE001 - a broken tokenizer must fail here, not mid-training
            raise ValueError(f"length_reward: the tokenizer fails on a plain text ({exc!r}).") from None
        if not isinstance(probe, int) or probe < 0:
            raise ValueError(f"length_reward: the tokenizer gave {probe!r} for a plain text, not a length.")

    def _count(self, text: str) -> int:
        tok = self.tokenizer
        encode = getattr(tok, "encode", None)
        if encode is None:
            encode = getattr(getattr(tok, "tokenizer", None), "encode", None)
        if encode is not None:
            try:
                out = encode(text, add_special_tokens=False)
            except TypeError:
                out = encode(text)
        else:
            out = tok(text)
        if isinstance(out, bool):
            raise TypeError("tokenizer returned a bool")
        if isinstance(out, int):
            return out
        if isinstance(out, Mapping) or (hasattr(out, "keys") and hasattr(out, "__getitem__")):
            out = out["input_ids"]
        if hasattr(out, "ids"):  # tokenizers.Encoding
            out = out.ids
        if hasattr(out, "tolist"):
            out = out.tolist()
        out = list(out)
        if out and isinstance(out[0], (list, tuple)):  # a batch of one
            out = list(out[0])
        return len(out)

    def __call__(self, text: str) -> int | None:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: tokenizers refuse them
            text = text.encode("utf-8", "replace").decode("utf-8")
        try:
            return self._count(text)
        except Exception as exc:  # noqa: BLE001 - model output must never crash training
            self._failures += 1
            if self._failures <= 3:
                log.warning("r_len: the tokenizer failed on a completion (%r); its r_len is None.", exc)
            return None

    def __getstate__(self) -> dict:
        return {"tokenizer": self.tokenizer, "_failures": 0}

    def __repr__(self) -> str:
        return f"TokenCounter({type(self.tokenizer).__name__})"


Counter = Callable[[str], "int | None"]


def make_counter(unit: str = "words", tokenizer: Any = None) -> Counter:
    """A length function, built once: :class:`WordCounter` or :class:`TokenCounter`."""
    if unit == "words":
        return WordCounter()
    if unit == "tokens":
        return TokenCounter(tokenizer)
    raise ValueError(f"length_reward: unit {unit!r}; use 'words' or 'tokens'.")


class _LengthCache:
    """Bounded memo of ground-truth lengths (a solution is scored once per generation)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.data: OrderedDict[tuple[str, str], int | None] = OrderedDict()

    def get(self, key: tuple[str, str], compute: Callable[[], int | None]) -> int | None:
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        value = compute()
        self.data[key] = value
        if len(self.data) > self.size:
            self.data.popitem(last=False)
        return value


def _scope_text(text: str, scope: str) -> str | None:
    """What r_len measures: the REASONING block or the whole text; ``None`` if missing or blank."""
    body = text if scope == "chain" else parse_chain(text).reasoning
    return body if body is not None and body.strip() else None


def _target(x: Any) -> float | None:
    """A usable target length: a finite number >= 1 (a length of less than one word or token is no target)."""
    v = finite(x)
    return v if v is not None and v >= 1 else None


def length_reward(
    completions: Sequence[Any],
    *,
    unit: str = "words",
    tokenizer: Any = None,
    scope: str = "reasoning",
    clip: bool = True,
    counter: Counter | None = None,
    target_cache: _LengthCache | None = None,
    **columns: Any,
) -> list[float | None]:
    """r_len (Eq. 8): ``1 - |len(Y) - len(Y_GT)| / len(Y_GT)``.

    * ``scope="reasoning"`` (default) measures the REASONING block; ``"chain"`` the whole
      completion against the whole ``solution`` (the reference code's choice).
    * ``unit="words"`` (whitespace-separated) or ``"tokens"`` with ``tokenizer=`` (see
      :class:`TokenCounter`); ``counter=`` passes a ready length function instead (what
      :func:`make_length_reward` does, so nothing is rebuilt per call).
    * Target ``len(Y_GT)``: ``target_words`` for words on the reasoning, else measured on
      ``solution`` with the same unit and scope; ``None`` when there is no target (a target
      must be a finite number >= 1; ``target_words`` of 0, ``nan`` or text falls back to ``solution``).
    * A completion with nothing to measure (no REASONING block, or a blank one) scores -1, so
      leaving the block out is never better than writing one (Eq. 8 alone would give it 0).
    * ``clip=True`` (default): clipped to [-1, 1]. ``clip=False``: the raw value in
      ``[1 - len(Y) / len(Y_GT), 1]``, below -1 once the text is over twice the target.
    """
    if scope not in ("reasoning", "chain"):
        raise ValueError(f"length_reward: scope {scope!r}; use 'reasoning' or 'chain'.")
    count = counter if counter is not None else make_counter(unit, tokenizer)
    unit = getattr(count, "unit", unit)
    n = len(completions)
    targets = rows(columns, "target_words", n)
    sols = rows(columns, "solution", n)
    out: list[float | None] = []
    for c, tw, sol in zip(completions, targets, sols, strict=True):
        target = _target(tw) if unit == "words" and scope == "reasoning" else None
        if target is None and isinstance(sol, str) and sol.strip():
            body = _scope_text(sol, scope)
            if body is not None:
                length = count(body) if target_cache is None else target_cache.get((scope, sol), partial(count, body))
                target = _target(length)
        if target is None:
            out.append(None)
            continue
        body = _scope_text(completion_text(c), scope)
        if body is None:
            out.append(-1.0)
            continue
        length = count(body)
        if length is None:
            out.append(None)
            continue
        r = 1.0 - abs(float(length) - target) / target
        out.append(max(-1.0, min(1.0, r)) if clip else min(r, 1.0))
    return out


def make_length_reward(
    tokenizer: Any = None,
    *,
    unit: str | None = None,
    scope: str = "reasoning",
    clip: bool = True,
    name: str = "r_len",
) -> Reward:
    """r_len with its length function built once: tokens of ``tokenizer`` when one is given (the
    reference code loaded a tokenizer from a placeholder path on every call), else words.
    Ground-truth lengths are memoised (G generations share one solution)."""
    unit = unit or ("tokens" if tokenizer is not None else "words")
    if scope not in ("reasoning", "chain"):
        raise ValueError(f"length_reward: scope {scope!r}; use 'reasoning' or 'chain'.")
    counter = make_counter(unit, tokenizer)
    return Reward(name, length_reward, counter=counter, scope=scope, clip=bool(clip), target_cache=_LengthCache())


def build(
    name: str,
    *,
    tokenizer: Any = None,
    length_unit: str | None = None,
    length_scope: str = "reasoning",
    length_clip: bool = True,
    **_: Any,
) -> Reward:
    """The registry's builder: :func:`make_length_reward` with ``build_rewards``' length options."""
    return make_length_reward(tokenizer, unit=length_unit, scope=length_scope, clip=length_clip, name=name)
