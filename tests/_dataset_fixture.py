"""A tiny dataset folder in the factory's output layout, written with pyarrow (no builder needed).

Reusable by any test::

    from _dataset_fixture import make_dataset
    ds = make_dataset(tmp_path / "ds", n_sft=3, n_rl=6, n_val=2)

Layout (the OUTPUT FOLDER CONTRACT shared with ``factory.build``)::

    ds/build.json                                    manifest (counts, recipe, command, features, ...)
    ds/data/sft/train-00000-of-00001.parquet         HF features in the parquet schema metadata
    ds/data/rl/train-0000k-of-0000N.parquet          (``rl_shards`` shards)
    ds/data/validation/validation-00000-of-00001.parquet
    ds/errors.jsonl                                  one failed sample
    ds/.build/state.json                             resume state (must never be published)

Rows follow DESIGN.md's data contract: real PNG bytes from small arrays, degradations from the
real ``train`` recipe, a tagged chain whose reasoning length is a function of the total
intensity (``lengths="grow"``: longer with more damage; ``"shrink"``: the opposite; ``"flat"``).
No card and no report are written: that is what the code under test does.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from factory import degrade
from factory.chains.format import render_chain
from factory.chains.prompting import format_question

COMMAND = "robust-r1 build --out ds --source demo --limit 12 --seed 7"
QUESTIONS = [
    ("What animal is in the picture?", ["a dog", "a cat", "a horse", "a bird"], 1),
    ("What is in the cup?", ["tea", "milk", "coffee", "water"], 2),
    ("What is the person wearing?", ["a suit", "a spacesuit", "a dress", "a coat"], 1),
    ("Which colour dominates?", ["red", "green", "blue"], 0),
]


def features(keep_clean: bool = False):
    """The row features: the builder's own (one definition of the data contract)."""
    from factory.build import features as build_features

    return build_features(keep_clean)


def png_bytes(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _words(total: float, lengths: str) -> int:
    if lengths == "grow":
        return int(round(10 + 12 * total))
    if lengths == "shrink":
        return int(round(max(4.0, 60 - 12 * total)))
    return 20


def make_row(i: int, split: str, seed: int = 0, lengths: str = "grow", keep_clean: bool = False) -> dict:
    """One contract row for sample ``fx:<split>:<i>`` (deterministic in its arguments)."""
    sid = f"fx:{split}:{i}"
    q, choices, ans = QUESTIONS[i % len(QUESTIONS)]
    rng = np.random.default_rng([seed, i, len(split)])
    clean = rng.integers(0, 256, (24 + i % 5, 32, 3), dtype=np.uint8)
    recipe = degrade.sample_recipe("train", seed, sid)
    total = round(float(recipe.total_intensity), 4)
    n = _words(total, lengths)
    reasoning = " ".join(["The", "picture", "shows"] + ["detail"] * (n - 4) + [choices[ans].split()[-1] + "."])
    influence = "The damage hides fine detail and shifts the colours."
    conclusion = f"So the answer is {choices[ans]}."
    question = format_question(q, choices)
    row = {
        "id": sid,
        "image": {"bytes": png_bytes(degrade.render(clean, recipe)), "path": sid.replace(":", "_") + ".png"},
        "question": question,
        "choices": list(choices),
        "answer": str(ans),
        "answer_text": choices[ans],
        "direct_answers": [choices[ans]] * 3,
        "degradations": recipe.degradation_records(),
        "total_intensity": total,
        "type": ", ".join(f"{name}({s:.2f})" for name, s in recipe.type_pairs()),
        "influence": influence,
        "reasoning": reasoning,
        "conclusion": conclusion,
        "solution": render_chain(recipe.type_pairs(), influence, reasoning, conclusion, str(ans)),
        "prompt": question + "\n\nThe image may be damaged. Answer in the <TYPE> ... <ANSWER> format.",
        "target_words": n,
        "backend": "template",
    }
    if keep_clean:
        row["clean_image"] = {"bytes": png_bytes(clean), "path": row["image"]["path"]}
    return row


def _write(rows: list[dict], folder: Path, name: str, shards: int, feats) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    shards = max(1, min(shards, len(rows))) if rows else 1
    parts = [rows[k::shards] for k in range(shards)]
    for k, part in enumerate(parts):
        table = pa.Table.from_pylist(part, schema=feats.arrow_schema)
        pq.write_table(table, folder / f"{name}-{k:05d}-of-{shards:05d}.parquet")


def make_dataset(
    root: str | Path,
    n_sft: int = 3,
    n_rl: int = 6,
    n_val: int = 2,
    *,
    seed: int = 0,
    lengths: str = "grow",
    keep_clean: bool = False,
    rl_shards: int = 1,
    command: str = COMMAND,
) -> Path:
    """Write the fixture folder at ``root`` and return it."""
    root = Path(root)
    feats = features(keep_clean)
    sft = [make_row(i, "sft", seed, lengths, keep_clean) for i in range(n_sft)]
    rl = [make_row(i, "rl", seed, lengths, keep_clean) for i in range(n_rl)]
    val = [make_row(i, "validation", seed, lengths, keep_clean) for i in range(n_val)]
    _write(sft, root / "data" / "sft", "train", 1, feats)
    _write(rl, root / "data" / "rl", "train", rl_shards, feats)
    _write(val, root / "data" / "validation", "validation", 1, feats)
    manifest = {
        "version": "0.1.0",
        "created": "2026-01-01T00:00:00+00:00",
        "command": command,
        "source": {"name": "demo", "description": "scikit-image photos + bundled multiple-choice QA", "split": "train"},
        "seed": seed,
        "backend": "template",
        "recipe": {"stage_probability": 0.8, "per_stage": [1, 2], "intensity_range": [0.01, 1.0]},
        "chain": {"backend": "template", "length_base": 25, "length_per_unit": 30, "length_min": 25, "length_max": 200},
        "sft_fraction": 0.25,
        "keep_clean": keep_clean,
        "image_format": "png",
        "counts": {"sft": {"train": n_sft}, "rl": {"train": n_rl}, "validation": n_val},
        "errors": 1,
        "features": feats.to_dict(),
    }
    (root / "build.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (root / "errors.jsonl").write_text(
        json.dumps({"id": "fx:bad:0", "split": "train", "stage": "load", "reason": "empty file"}) + "\n"
    )
    (root / ".build").mkdir(exist_ok=True)
    (root / ".build" / "state.json").write_text('{"chunks": 1}\n')
    return root


def rows_of(root: str | Path, config: str) -> list[dict]:
    """All rows of ``data/<config>`` (images as raw dicts), for independent checks in tests."""
    import pyarrow.parquet as pq

    out = []
    for f in sorted((Path(root) / "data" / config).glob("*.parquet")):
        out += pq.read_table(f).to_pylist()
    return out
