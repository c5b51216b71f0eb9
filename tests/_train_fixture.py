"""A tiny dataset folder in the factory's Hub layout, for trainer tests (no builder needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factory import degrade
from factory.chains.format import render_chain
from factory.photos import photo

CARD = """---
configs:
- config_name: sft
  data_files:
  - split: train
    path: data/sft/train-*.parquet
  - split: validation
    path: data/validation/validation-*.parquet
- config_name: rl
  data_files:
  - split: train
    path: data/rl/train-*.parquet
  - split: validation
    path: data/validation/validation-*.parquet
---
# fixture
"""

QUESTIONS = [
    ("What animal is in the picture?", ["a dog", "a cat", "a horse", "a bird"], 1, "chelsea"),
    ("What is in the cup?", ["tea", "milk", "coffee", "water"], 2, "coffee"),
    ("What is the person wearing?", ["a suit", "a spacesuit", "a dress", "a coat"], 1, "astronaut"),
    ("What vehicle is shown?", ["a car", "a bus", "a rocket", "a boat"], 2, "rocket"),
]


def make_rows(n: int, seed: int = 0) -> list[dict]:
    from PIL import Image

    rows = []
    for i in range(n):
        q, choices, ans, name = QUESTIONS[i % len(QUESTIONS)]
        img = degrade.to_rgb_uint8(photo(name))
        img = np.ascontiguousarray(img[:: max(1, img.shape[0] // 48), :: max(1, img.shape[1] // 64)])
        recipe = degrade.sample_recipe("train", seed, f"fx:{i}")
        out = degrade.render(img, recipe)
        question = q + " " + " ".join(f"{k}. {c}" for k, c in enumerate(choices))
        reasoning = f"The picture shows {choices[ans]}, which is still recognisable despite the damage."
        influence, conclusion = "The damage hides fine detail.", f"So the answer is {choices[ans]}."
        solution = render_chain(recipe.type_pairs(), influence, reasoning, conclusion, str(ans))
        rows.append(
            {
                "id": f"fx:{i}",
                "image": Image.fromarray(out),
                "question": question,
                "choices": choices,
                "answer": str(ans),
                "answer_text": choices[ans],
                "direct_answers": [],
                "degradations": recipe.degradation_records(),
                "total_intensity": recipe.total_intensity,
                "type": solution.split("<TYPE>")[1].split("<TYPE_END>")[0],
                "influence": influence,
                "reasoning": reasoning,
                "conclusion": conclusion,
                "solution": solution,
                "prompt": question + " Answer in the <TYPE> <INFLUENCE> <REASONING> <CONCLUSION> <ANSWER> format.",
                "target_words": len(reasoning.split()),
                "backend": "template",
            }
        )
    return rows


def make_dataset(root: str | Path, n: int = 8, seed: int = 0) -> Path:
    from datasets import Dataset

    from factory.build import features

    feats = features()
    root = Path(root)
    rows = make_rows(n, seed)
    for cfg, part in (("sft", rows[: n // 2]), ("rl", rows[n // 2 :]), ("validation", rows[:2])):
        d = root / "data" / cfg
        d.mkdir(parents=True, exist_ok=True)
        name = "validation" if cfg == "validation" else "train"
        Dataset.from_list(part, features=feats).to_parquet(str(d / f"{name}-00000-of-00001.parquet"))
    (root / "README.md").write_text(CARD)
    return root
