"""The work of each reward on hostile completions of 10 MB (issue 14, item 12).

Every reward reads only the first ``trainers.rewards.inputs.MAX_COMPLETION_CHARS`` characters of a
completion, so a 10 MB completion should cost what a 32 kB one does. Prints one line per
(completion shape, reward): the median of ``--repeat`` calls, in milliseconds.

    .venv/bin/python bench/rewards.py --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import time

from trainers.rewards import accuracy_reward, degradation_reward, format_reward, inputs, length_reward

SIZE = 10_000_000
SHAPES = {
    "open <TYPE> tags": "<TYPE>" * (SIZE // 6),
    "'<' then spaces": "<" + " " * SIZE,
    "words": "word " * (SIZE // 5),
    "one huge ANSWER": "<ANSWER>" + "a " * (SIZE // 2) + "<ANSWER_END>",
    "huge TYPE block": "<TYPE>" + "lens blur(0.5), " * (SIZE // 16) + "<TYPE_END>",
    "honest chain": "<TYPE>lens blur(0.5)<TYPE_END><INFLUENCE>blur hides edges<INFLUENCE_END>"
    "<REASONING>" + "the cat is visible " * 10 + "<REASONING_END>"
    "<CONCLUSION>a cat<CONCLUSION_END><ANSWER>1<ANSWER_END>",
}
COLUMNS = {
    "degradations": [[{"name": "lens blur", "stage": "acquisition", "intensity": 0.69, "params": "{}"}]],
    "solution": ["<REASONING>" + "w " * 40 + "<REASONING_END>"],
    "answer": ["1"],
    "choices": [["a dog", "a cat"]],
    "target_words": [40],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    limit = getattr(inputs, "MAX_COMPLETION_CHARS", None)
    print(f"MAX_COMPLETION_CHARS = {limit}; completions of {SIZE / 1e6:.0f} MB")
    for name, text in SHAPES.items():
        cells = []
        for reward in (degradation_reward, length_reward, format_reward, accuracy_reward):
            reward([text], **COLUMNS)  # warm-up
            times = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                reward([text], **COLUMNS)
                times.append((time.perf_counter() - t) * 1000)
            cells.append(f"{reward.__name__} {statistics.median(times):.1f} ms")
        print(f"{name:18s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
