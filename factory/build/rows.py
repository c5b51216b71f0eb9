"""Rows of the dataset: the sft/rl assignment, the row itself, its contract check and hash."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from factory.degrade.recipes import derive_seed

from .jobs import Prepared


def config_for(seed: int, sample_id: str, sft_fraction: float) -> str:
    """``sft`` or ``rl`` for a training sample: a hash of (seed, id), stable under resume/workers."""
    u = derive_seed(seed, "config-split", sample_id) / float(2**63)
    return "sft" if u < sft_fraction else "rl"


def row_hash(row: dict[str, Any]) -> str:
    """Content hash of a row (images by their bytes; column order does not matter)."""
    h = hashlib.sha256()
    for k in sorted(row):
        v = row[k]
        if isinstance(v, dict) and "bytes" in v:
            v = v["bytes"]
        h.update(k.encode() + b"\x00")
        h.update(v if isinstance(v, (bytes, bytearray)) else json.dumps(v, sort_keys=True, default=str).encode())
        h.update(b"\x01")
    return h.hexdigest()


def safe_name(sample_id: str) -> str:
    """A file name for a sample's image (the ``path`` stored beside its bytes)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", sample_id).strip("._") or "image"


def make_row(sample, prepared: Prepared, chain, *, suffix: str, keep_clean: bool) -> dict[str, Any]:
    """The dataset row (``factory.layout.REQUIRED_COLUMNS``) of a sample, its images and its chain."""
    recipe = prepared.recipe
    name = safe_name(sample.id) + suffix
    row: dict[str, Any] = {"id": sample.id, "image": {"bytes": prepared.image, "path": name}}
    if keep_clean:
        row["clean_image"] = {"bytes": prepared.clean, "path": "clean_" + name}
    row.update(
        question=chain.question,
        choices=list(sample.choices),
        answer=sample.answer,
        answer_text=sample.answer_text,
        direct_answers=list(sample.direct_answers),
        degradations=recipe.degradation_records(),
        total_intensity=float(recipe.total_intensity),
        type=chain.type,
        influence=chain.influence,
        reasoning=chain.reasoning,
        conclusion=chain.conclusion,
        solution=chain.solution,
        prompt=chain.prompt,
        target_words=int(chain.target_words),
        backend=chain.backend,
    )
    return row


def check_row(row: dict[str, Any], recipe) -> str | None:
    """The data contract a chain must satisfy before it becomes a row (None = fine)."""
    from factory.chains.format import format_type, parse_chain

    parsed = parse_chain(row["solution"])
    missing = [f for f in ("type", "influence", "reasoning", "conclusion", "answer") if not getattr(parsed, f)]
    if missing:
        return f"solution lacks {', '.join(missing)}"
    if parsed.type != row["type"] or row["type"] != format_type(recipe.type_pairs()):
        return f"TYPE {parsed.type!r} does not name the recipe's degradations"
    if parsed.answer != row["answer"]:
        return f"solution answers {parsed.answer!r}, the label is {row['answer']!r}"
    if row["choices"]:
        idx = int(row["answer"]) if row["answer"].isdigit() else -1
        if not 0 <= idx < len(row["choices"]) or row["choices"][idx] != row["answer_text"]:
            return f"answer {row['answer']!r} is not the index of answer_text among the choices"
    if abs(row["total_intensity"] - sum(d["intensity"] for d in row["degradations"])) > 1e-6:
        return "total_intensity is not the sum of the intensities"
    return None
