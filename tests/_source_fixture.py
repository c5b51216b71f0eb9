"""Small local sources for the source and build tests (made on the fly, no network).

* :func:`make_aokvqa` - parquet files in the A-OKVQA schema (the same code loads the real one by
  name on a networked machine).
* :func:`bad_images` - the broken and unusual images the build must survive.
* :func:`make_jsonl_folder` - a ``qa.jsonl`` with relative image paths, for column mapping.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image


def encode(arr: np.ndarray, fmt: str = "PNG", mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(arr)
    if mode:
        im = im.convert(mode)
    im.save(buf, format=fmt)
    return buf.getvalue()


def image(i: int, h: int = 24, w: int = 32) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (h + i % 5, w, 3), dtype=np.uint8)


def bad_images() -> dict[str, tuple[bytes, bool]]:
    """name → (encoded bytes, readable?). The unreadable ones must be recorded as load errors."""
    rng = np.random.default_rng(1)
    jpeg = encode(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "JPEG")
    return {
        "zero_bytes": (b"", False),
        "truncated_jpeg": (jpeg[: len(jpeg) // 2], False),
        "text_named_jpg": (b"this is a text file named .jpg\n", False),
        "one_by_one": (encode(np.full((1, 1, 3), 200, np.uint8)), True),
        "png16": (encode((rng.random((20, 30)) * 65535).astype(np.uint16)), True),
        "cmyk_jpeg": (encode(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), "JPEG", mode="CMYK"), True),
        "rgba": (encode(rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)), True),
    }


def aokvqa_rows(n: int, start: int = 0, prefix: str = "q") -> list[dict]:
    rows = []
    for i in range(start, start + n):
        rows.append(
            {
                "image": {"bytes": encode(image(i)), "path": None},
                "question_id": f"{prefix}{i:03d}",
                "question": f"What colour dominates picture {i}?",
                "choices": ["red", "green", "blue", "grey"],
                "correct_choice_idx": i % 4,
                "direct_answers": ["red", "red", "blue"],
                "rationales": ["because it is"],
            }
        )
    return rows


def write_aokvqa(path: Path, rows: list[dict]) -> Path:
    from datasets import Dataset, Features, Value
    from datasets import Image as HFImage

    feats = Features(
        {
            "image": HFImage(),
            "question_id": Value("string"),
            "question": Value("string"),
            "choices": [Value("string")],
            "correct_choice_idx": Value("int32"),
            "direct_answers": [Value("string")],
            "rationales": [Value("string")],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=feats).to_parquet(str(path))
    return path


def make_aokvqa(root: Path, n: int = 12, *, bad: bool = False, validation: int = 0) -> Path:
    """A-OKVQA-schema data under ``root``: ``train.parquet`` alone (returns the file), or with
    ``validation`` rows a folder with ``train.parquet`` and ``validation.parquet`` (returns it).
    With ``bad=True`` the first rows carry :func:`bad_images`, in their order."""
    rows = aokvqa_rows(n)
    if bad:
        for j, (blob, _) in enumerate(bad_images().values()):
            rows[j]["image"] = {"bytes": blob, "path": None}
    if not validation:
        return write_aokvqa(root / "aokvqa.parquet", rows)
    folder = root / "aokvqa"
    write_aokvqa(folder / "train.parquet", rows)
    write_aokvqa(folder / "validation.parquet", aokvqa_rows(validation, start=1000, prefix="v"))
    return folder


def make_jsonl_folder(root: Path, n: int = 6, *, bad: bool = False) -> Path:
    """``root/qa.jsonl`` (columns qid, img, q, opts, label as option text, answers as a JSON
    string) with images in ``root/imgs/``; with ``bad=True`` the bad images come first, written
    as files (the text one is a text file named .jpg), plus a row whose image file is missing."""
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    rows = []
    files: list[tuple[str, bytes]] = []
    if bad:
        for name, (blob, _) in bad_images().items():
            files.append((f"imgs/{name}.{'png' if name in ('one_by_one', 'png16', 'rgba') else 'jpg'}", blob))
    for i in range(n):
        files.append((f"imgs/{i:03d}.png", encode(image(i))))
    for j, (rel, blob) in enumerate(files):
        (root / rel).write_bytes(blob)
        rows.append(
            {
                "qid": j,
                "img": rel,
                "q": f"Question {j}?",
                "opts": ["yes", "no"],
                "label": ["yes", "no"][j % 2],
                "answers": json.dumps(["yes"]),
            }
        )
    if bad:
        rows.append(
            {
                "qid": len(rows),
                "img": "imgs/missing.png",
                "q": "Where is it?",
                "opts": ["here", "there"],
                "label": "here",
                "answers": "[]",
            }
        )
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root / "qa.jsonl"


COLUMNS = "image=img,question=q,choices=opts,answer=label,id=qid,direct_answers=answers"
