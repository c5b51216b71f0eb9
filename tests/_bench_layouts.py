"""Local copies of the evaluation benchmarks in their REAL repository layouts (small, offline).

Each builder writes a folder laid out like the published repository (file names, README YAML
configs and split declarations, column names and types, images stored as the repository stores
them) and returns ``(path, truth)``: ``truth`` maps each question's id to its correct answer
(:class:`Truth`), so a scripted model can answer correctly. Where each layout comes from is said
in the builder's docstring; sources are in /work/notes/bench_facts.md and /work/shared/BENCHMARKS.md
(dataset cards, Hub file listings, VLMEvalKit's loaders). "Unverified" marks what no source showed.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "Truth",
    "b64_jpeg",
    "make_aokvqa",
    "make_mmbench",
    "make_mmdbench",
    "make_mmmb",
    "make_mmstar",
    "make_rbench",
    "make_realworldqa",
    "picture",
    "write_tsv",
]


@dataclass(frozen=True)
class Truth:
    """The correct answer of one question: the option index (``None`` for an open question), the
    options, and the answer text (an open question's reference answer)."""

    index: int | None
    choices: tuple[str, ...]
    text: str
    captions: tuple[str, ...] = field(default=())


def picture(i: int, h: int = 40, w: int = 56) -> np.ndarray:
    """A distinct small RGB picture per ``i`` (gradients + seeded noise, so degradations show)."""
    rng = np.random.default_rng(1000 + i)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h) + 60 * (i % 3)], -1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def _encode(arr: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def b64_jpeg(arr: np.ndarray) -> str:
    """Base64 text of a JPEG at quality 95: how VLMEvalKit TSVs (and MMD-Bench's cv2 re-encode) store images."""
    return base64.b64encode(_encode(arr, "JPEG")).decode()


def _hf_image(arr: np.ndarray) -> dict:
    """An HF ``Image`` feature cell as parquet stores it: ``{"bytes": PNG bytes, "path": None}``."""
    return {"bytes": _encode(arr, "PNG"), "path": None}


def _write_parquet(path: Path, rows: list[dict], features) -> None:
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=features).to_parquet(str(path))


def write_tsv(path: Path, rows: Sequence[dict], columns: Sequence[str]) -> Path:
    """A TSV as VLMEvalKit writes it (pandas ``to_csv(sep="\\t", index=False)``): missing cells
    empty, fields with tabs, newlines or quotes quoted."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns)).to_csv(
        path, sep="\t", index=False
    )
    return path


def _readme(configs: str, features: str, splits: str = "") -> str:
    return f"---\n{configs}{features}{splits}---\n# local copy (tests)\n"


LETTERS = "ABCDEFGH"

# ---------------------------------------------------------------- MMStar

MMSTAR_ROWS = [
    # (question stem, options, answer letter, category, l2_category)
    ("What is the dominant colour of the sky?", ["red", "blue", "green", "grey"], "B",
     "coarse perception", "image scene and topic"),
    ("How many apples are on the table?", ["2", "3", "4", "5"], "B",
     "fine-grained perception", "object counting"),  # the counting case: "3" is option text, not position
    ("Which statement is right?", ["(A) the cup is left of the plate", "(B) the cup is on the plate",
                                   "(C) the cup is under the table", "(D) there is no cup"], "A",
     "instance reasoning", "cross-instance relation reasoning"),  # option texts that start with "(A)"
    ("Which lane is the car in?", ["Lane A.", "Lane B.", "Lane C.", "Lane D."], "B",
     "fine-grained perception", "localization"),  # "a" article case: "B. Lane B."
    ("What is 12 + 7?", ["17", "18", "19", "21"], "C", "math", "numeric commonsense and calculation"),
    ("What kind of scene is it?", ["a cat", "a dog", "a bird", "a fish"], "A",
     "coarse perception", "image style & quality"),
]


def _mmstar_question(stem: str, options: Sequence[str]) -> str:
    # MMStar writes its options inline: "...\nOptions: A: x, B: y, C: z, D: w" (card, viewer, lmms-eval)
    return stem + "\nOptions: " + ", ".join(f"{LETTERS[i]}: {o}" for i, o in enumerate(options))


def make_mmstar(root: Path, *, config_name: str = "val") -> tuple[Path, dict[str, Truth]]:
    """``Lin-Chen/MMStar``: ``mmstar.parquet`` and ``MMStar.tsv`` at the root; the README declares
    one configuration (``mmstar`` in the first commit a9beb09, ``val`` now) whose only split is
    ``val``, path ``mmstar.parquet``. Features from the card: index int64, question string (options
    inline), image Image, answer string (letter), category, l2_category, meta_info struct{source,
    split, image_path}. ``MMStar.tsv`` is VLMEvalKit's file (not read through the configs)."""
    from datasets import Features, Value
    from datasets import Image as HFImage

    d = root / "MMStar"
    d.mkdir(parents=True, exist_ok=True)
    (d / "README.md").write_text(_readme(
        f"task_categories:\n- multiple-choice\n- question-answering\n- visual-question-answering\nlanguage:\n- en\n"
        f"configs:\n- config_name: {config_name}\n  data_files:\n  - split: val\n    path: \"mmstar.parquet\"\n",
        f"dataset_info:\n- config_name: {config_name}\n  features:\n  - name: index\n    dtype: int64\n"
        "  - name: question\n    dtype: string\n  - name: image\n    dtype: image\n"
        "  - name: answer\n    dtype: string\n"
        "  - name: category\n    dtype: string\n  - name: l2_category\n    dtype: string\n  - name: meta_info\n"
        "    struct:\n    - name: source\n      dtype: string\n    - name: split\n      dtype: string\n"
        "    - name: image_path\n      dtype: string\n",
        f"  splits:\n  - name: val\n    num_examples: {len(MMSTAR_ROWS)}\n",
    ))
    feats = Features({
        "index": Value("int64"), "question": Value("string"), "image": HFImage(), "answer": Value("string"),
        "category": Value("string"), "l2_category": Value("string"),
        "meta_info": {"source": Value("string"), "split": Value("string"), "image_path": Value("string")},
    })
    rows, truth, tsv = [], {}, []
    for i, (stem, opts, ans, cat, l2) in enumerate(MMSTAR_ROWS):
        q = _mmstar_question(stem, opts)
        rows.append({"index": i, "question": q, "image": _hf_image(picture(i)), "answer": ans, "category": cat,
                     "l2_category": l2, "meta_info": {"source": "MMBench", "split": "val", "image_path": f"{i}.jpg"}})
        truth[f"mmstar:{i}"] = Truth(LETTERS.index(ans), tuple(opts), opts[LETTERS.index(ans)])
        tsv.append({"index": i, "question": q, "image": b64_jpeg(picture(i)), "answer": ans, "category": cat,
                    "l2_category": l2, **{LETTERS[j]: o for j, o in enumerate(opts)}})
    _write_parquet(d / "mmstar.parquet", rows, feats)
    # VLMEvalKit's MMStar.tsv: A-D columns (required by its MCQ scoring); whether `question` still holds
    # the inline options is unverified (bench_facts open question 5): here it does, the harder case.
    write_tsv(d / "MMStar.tsv", tsv, ["index", "question", "A", "B", "C", "D", "answer", "category", "l2_category",
                                      "image"])
    return d, truth


# ---------------------------------------------------------------- RealWorldQA

_RWQA_LETTER = "Please answer directly with only the letter of the correct option and nothing else."
_RWQA_WORD = "Please answer directly with a single word or number."
RWQA_ROWS = [
    ("In which direction is the road curving?", ["Left", "Straight", "Right"], "C"),
    ("Is the traffic light ahead red?", ["Yes", "No"], "A"),
    ("How many cars are visible?", None, "3"),
    ("Which vehicle is closest to the camera?", ["The truck", "The bus", "The bicycle"], "B"),
    ("What is written on the sign?", None, "STOP"),
]


def make_realworldqa(root: Path, *, split: str = "test") -> tuple[Path, dict[str, Truth]]:
    """``xai-org/RealworldQA``: ``data/{split}-0000x-of-00002.parquet`` declared by the README as
    configuration ``default``, split ``test`` (``test_0412`` before commit 17e7f75 renamed the
    files). Features image, question, answer; options as ``A. x`` lines followed by "Please answer
    directly with only the letter ..."; open questions end with "... a single word or number."."""
    from datasets import Features, Value
    from datasets import Image as HFImage

    d = root / f"RealworldQA-{split}"
    (d / "data").mkdir(parents=True, exist_ok=True)
    (d / "README.md").write_text(_readme(
        f"configs:\n- config_name: default\n  data_files:\n  - split: {split}\n    path: data/{split}-*\n",
        "dataset_info:\n  features:\n  - name: image\n    dtype: image\n  - name: question\n    dtype: string\n"
        "  - name: answer\n    dtype: string\n",
        f"  splits:\n  - name: {split}\n    num_examples: {len(RWQA_ROWS)}\n",
    ))
    feats = Features({"image": HFImage(), "question": Value("string"), "answer": Value("string")})
    rows, truth = [], {}
    for i, (stem, opts, ans) in enumerate(RWQA_ROWS):
        if opts:
            q = stem + "\n" + "\n".join(f"{LETTERS[j]}. {o}" for j, o in enumerate(opts)) + "\n" + _RWQA_LETTER
            truth[f"realworldqa:#{i}"] = Truth(LETTERS.index(ans), tuple(opts), opts[LETTERS.index(ans)])
        else:
            q = f"{stem}\n{_RWQA_WORD}"
            truth[f"realworldqa:#{i}"] = Truth(None, (), ans)
        rows.append({"image": _hf_image(picture(20 + i)), "question": q, "answer": ans})
    half = (len(rows) + 1) // 2
    _write_parquet(d / "data" / f"{split}-00000-of-00002.parquet", rows[:half], feats)
    _write_parquet(d / "data" / f"{split}-00001-of-00002.parquet", rows[half:], feats)
    return d, truth


# ---------------------------------------------------------------- MMBench (lmms-lab/MMBench_EN)

MMBENCH_ROWS = [
    # (index, question, hint, options, answer)
    (0, "What is the main object in the image?", None, ["a chair", "a table", "a lamp", "a sofa"], "C"),
    (1, "Which season is it most likely?", "nan", ["spring", "summer", "winter"], "C"),  # D unused: null
    (2, "What does the sign say?", "The sign is red and octagonal.", ["STOP", "GO", "YIELD", "EXIT"], "A"),
    (3, "How many people are there?", None, ["1", "2", "3", "4"], "D"),
]


def make_mmbench(root: Path) -> tuple[Path, dict[str, Truth]]:
    """``lmms-lab/MMBench_EN``: README configuration ``default`` with splits ``dev``
    (``data/dev-*``) and ``test`` (``data/test-*``). Features (card @c4fb5157): index int64,
    question, hint, A, B, C, D, answer, category, image (Image), source, l2-category, comment,
    split. Unused options are null; ``hint`` is null or the text "nan" (the latter unverified)."""
    from datasets import Features, Value
    from datasets import Image as HFImage

    d = root / "MMBench_EN"
    (d / "data").mkdir(parents=True, exist_ok=True)
    names = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source", "l2-category",
             "comment", "split"]
    kinds = {"index": "int64", "image": "image"}
    feat_yaml = "".join(f"  - name: {n}\n    dtype: {kinds.get(n, 'string')}\n" for n in names)
    (d / "README.md").write_text(_readme(
        "configs:\n- config_name: default\n  data_files:\n  - split: dev\n    path: data/dev-*\n"
        "  - split: test\n    path: data/test-*\n",
        "dataset_info:\n  features:\n" + feat_yaml,
        "  splits:\n  - name: dev\n    num_examples: 4\n  - name: test\n    num_examples: 1\n",
    ))
    feats = Features({n: (Value("int64") if n == "index" else HFImage() if n == "image" else Value("string"))
                      for n in names})
    rows, truth = [], {}
    for idx, q, hint, opts, ans in MMBENCH_ROWS:
        row = {"index": idx, "question": q, "hint": hint, "answer": ans, "category": "object_localization",
               "image": _hf_image(picture(40 + idx)), "source": "COCO", "l2-category": "finegrained_perception",
               "comment": None, "split": "dev", **{LETTERS[j]: (opts[j] if j < len(opts) else None) for j in range(4)}}
        rows.append(row)
        truth[f"mmbench:{idx}"] = Truth(LETTERS.index(ans), tuple(opts), opts[LETTERS.index(ans)])
    _write_parquet(d / "data" / "dev-00000-of-00001.parquet", rows, feats)
    test = [{**rows[0], "index": 1000, "answer": None, "split": "test"}]
    _write_parquet(d / "data" / "test-00000-of-00001.parquet", test, feats)
    return d, truth


# ---------------------------------------------------------------- MMMB (AIDC-AI/Parrot-dataset)

MMMB_ROWS = [
    (0, "What is the boy holding?", ["a kite", "a ball", "a bat", "a book"], "B", "object"),
    (1, "Is the door open or closed?", ["open", "closed"], "A", "attribute"),  # C, D empty cells
    (2, "What colour is the car?", ["white", "black", "red"], "C", "attribute"),  # D empty
]


def make_mmmb(root: Path) -> tuple[Path, dict[str, Truth]]:
    """``AIDC-AI/Parrot-dataset``: ``mmmb/mmmb_{ar,cn,en,pt,ru,tr}.tsv``, no README configs (the
    preset names the file). VLMEvalKit TSV (``MMMB_en``, ImageMCQDataset): index, question, A-D
    (empty cells when fewer options), answer letter, category, image as base64 JPEG. The exact
    column list is unverified; these are the columns VLMEvalKit's MCQ loader requires."""
    d = root / "Parrot-dataset"
    rows, truth = [], {}
    for idx, q, opts, ans, cat in MMMB_ROWS:
        rows.append({"index": idx, "question": q, "answer": ans, "category": cat, "image": b64_jpeg(picture(60 + idx)),
                     **{LETTERS[j]: o for j, o in enumerate(opts)}})
        truth[f"mmmb:{idx}"] = Truth(LETTERS.index(ans), tuple(opts), opts[LETTERS.index(ans)])
    cols = ["index", "question", "A", "B", "C", "D", "answer", "category", "image"]
    write_tsv(d / "mmmb" / "mmmb_en.tsv", rows, cols)
    write_tsv(d / "mmmb" / "mmmb_cn.tsv", rows[:1], cols)
    (d / "README.md").write_text("# Parrot dataset (local copy; the real card has no YAML configs)\n")
    return d, truth


# ---------------------------------------------------------------- A-OKVQA (HuggingFaceM4/A-OKVQA)

AOKVQA_ROWS = [
    ("What is the man riding?", ["horse", "bicycle", "skateboard", "motorcycle"], 1,
     ["bicycle", "bike", "bicycle", "bicycle", "bike", "bicycle", "bicycle", "bike", "bicycle", "cycle"]),
    ("What will the dog most likely do next?", ["sleep", "fetch", "eat", "swim"], 1,
     ["fetch", "fetch", "play", "fetch", "run", "fetch", "fetch", "catch", "fetch", "fetch"]),
    ("Which meal is being served?", ["breakfast", "lunch", "dinner", "dessert"], 0,
     ["breakfast"] * 10),
]


def make_aokvqa(root: Path, *, direct_answers_as_text: bool = True) -> tuple[Path, dict[str, Truth]]:
    """``HuggingFaceM4/A-OKVQA``: ``data/{train,validation,test}-00000-of-00001-<hash>.parquet``
    and a README with ``dataset_info`` (no ``configs``: the splits come from the file names).
    Columns image, question_id, question, choices (list), correct_choice_idx, direct_answers,
    difficult_direct_answer, rationales (r1_vlm loader; evalscope). ``direct_answers`` is a string
    holding a Python list per BENCHMARKS.md (unverified; ``direct_answers_as_text=False`` writes a
    list). The test split has no labels (null)."""
    from datasets import Features, Value
    from datasets import Image as HFImage
    from datasets import Sequence as HFSequence

    d = root / "A-OKVQA"
    (d / "data").mkdir(parents=True, exist_ok=True)
    da_type = Value("string") if direct_answers_as_text else HFSequence(Value("string"))
    feats = Features({
        "image": HFImage(), "question_id": Value("string"), "question": Value("string"),
        "choices": HFSequence(Value("string")), "correct_choice_idx": Value("int8"), "direct_answers": da_type,
        "difficult_direct_answer": Value("bool"), "rationales": HFSequence(Value("string")),
    })
    da_yaml = "    dtype: string\n" if direct_answers_as_text else "    sequence: string\n"
    (d / "README.md").write_text(_readme(
        "",
        "dataset_info:\n  features:\n  - name: image\n    dtype: image\n  - name: question_id\n    dtype: string\n"
        "  - name: question\n    dtype: string\n  - name: choices\n    sequence: string\n"
        "  - name: correct_choice_idx\n    dtype: int8\n  - name: direct_answers\n" + da_yaml +
        "  - name: difficult_direct_answer\n    dtype: bool\n  - name: rationales\n    sequence: string\n",
        "".join(f"  - name: {x}\n    num_examples: {len(AOKVQA_ROWS)}\n" for x in ("train", "validation", "test"))
        .join(["  splits:\n", ""]),
    ))
    truth = {}

    def rows_for(split: str, start: int) -> list[dict]:
        out = []
        for k, (q, choices, idx, da) in enumerate(AOKVQA_ROWS):
            qid = f"{split[0]}{start + k:05d}"
            labelled = split != "test"
            out.append({
                "image": _hf_image(picture(start + k)), "question_id": qid, "question": q, "choices": choices,
                "correct_choice_idx": idx if labelled else None,
                "direct_answers": (str(da) if direct_answers_as_text else da) if labelled else None,
                "difficult_direct_answer": False, "rationales": ["The picture shows it."] if labelled else None,
            })
            if split == "validation":
                truth[f"aokvqa:{qid}"] = Truth(idx, tuple(choices), choices[idx])
        return out

    _write_parquet(d / "data" / "train-00000-of-00001-4d1b7d8f5a0c2e13.parquet", rows_for("train", 80), feats)
    _write_parquet(d / "data" / "validation-00000-of-00001-9c3e52d1b7a4f608.parquet", rows_for("validation", 90),
                   feats)
    _write_parquet(d / "data" / "test-00000-of-00001-d306bf3ad53b6618.parquet", rows_for("test", 100), feats)
    return d, truth


# ---------------------------------------------------------------- R-Bench (lcysyzxdxc/R-Bench)

RBENCH_MCQ = [
    (0, "What is the man doing?", ["running", "Play football", "Play tennis", "Play basketball"], "A", 1, 5),
    (1, "How many birds are there?", ["1", "2", "3", "4"], "C", 2, 12),
    (2, "What is the weather like?", ["sunny", "rainy", "snowy", "foggy"], "D", 3, 28),
]
RBENCH_OPEN = [
    (3, "VQA", "What colour is the umbrella", "red", 2, 19),
    (4, "CAP", "Please describe this image in general. Directly provide the description, do not include prefix "
               "like 'This image depicts'",
     str(["A man walks a dog.", "A person with a dog on a leash.", "Someone walking a dog in a park.",
          "A dog being walked.", "A man and his dog outside."]), 1, 3),
]


def _rbench_image(i: int, strength: int | None) -> np.ndarray:
    from factory.degrade import apply

    clean = picture(120 + i)
    return clean if not strength else apply(clean, "gaussian noise", {1: 0.23, 2: 0.45, 3: 0.9}[strength], seed=i)


def make_rbench(root: Path, *, full: bool = False) -> tuple[Path, dict[str, Truth]]:
    """``lcysyzxdxc/R-Bench``: ``R-bench-dis.tsv`` (distorted images) and ``R-bench-ref.tsv``
    (their reference images, same ``index``), VLMEvalKit TSVs (``R-Bench-Dis``/``R-Bench-Ref``,
    ImageMCQDataset: index, question, A-D, answer letter, category, image base64). The TSVs' extra
    columns are unverified; ``full=True`` adds the authors' release columns (``Ref_Release.csv``
    header: choice, type MCQ/VQA/CAP, distortion 1-33, strength 1-3) and VQA/CAP rows, the layout
    the Robust-R1 paper's Table 1 needs."""
    d = root / "R-Bench"
    dis, ref, truth = [], [], {}
    for idx, q, opts, ans, strength, distortion in RBENCH_MCQ:
        row = {"index": idx, "question": q, "answer": ans, "category": "MCQ",
               **{LETTERS[j]: o for j, o in enumerate(opts)}}
        if full:
            row |= {"type": "MCQ", "distortion": distortion, "strength": strength,
                    "choice": "; ".join(f"{LETTERS[j]}.{o}" for j, o in enumerate(opts))}
        dis.append({**row, "image": b64_jpeg(_rbench_image(idx, strength))})
        ref.append({**row, "image": b64_jpeg(_rbench_image(idx, None))})
        truth[f"rbench:{idx}"] = Truth(LETTERS.index(ans), tuple(opts), opts[LETTERS.index(ans)])
    if full:
        for idx, kind, q, ans, strength, distortion in RBENCH_OPEN:
            row = {"index": idx, "question": q, "answer": ans, "category": kind, "type": kind, "choice": "N",
                   "distortion": distortion, "strength": strength}
            dis.append({**row, "image": b64_jpeg(_rbench_image(idx, strength))})
            ref.append({**row, "image": b64_jpeg(_rbench_image(idx, None))})
            caps = tuple(eval_list(ans)) if kind == "CAP" else ()
            truth[f"rbench:{idx}"] = Truth(None, (), caps[0] if caps else ans, caps)
    cols = ["index", "question", "A", "B", "C", "D", "answer", "category", "image"]
    if full:
        cols += ["choice", "type", "distortion", "strength"]
    write_tsv(d / "R-bench-dis.tsv", dis, cols)
    write_tsv(d / "R-bench-ref.tsv", ref, cols)
    return d, truth


def eval_list(text: str) -> list[str]:
    import ast

    return [str(x) for x in ast.literal_eval(text)]


# ---------------------------------------------------------------- MMD-Bench (CUDAOUTOFMEMORY/MMD-Bench)

MMD_LEVELS = {"LOW": 0.23, "MID": 0.45, "HIGH": 0.9}


def _mmd_row_image(i: int, level: float, method: str, seed: int) -> str:
    from factory.degrade import apply, canonical_name

    return b64_jpeg(apply(picture(200 + i), canonical_name(method), level, seed=seed))


def make_mmdbench(
    root: Path,
    *,
    methods: Sequence[str] = ("lens_blur", "gaussian_noise", "jpeg_compression"),
    with_clean: bool = True,
    bases: Sequence[str] = ("MMStar", "MMBench_DEV_EN_V11", "MMVet"),
    clean_in: Path | None = None,
) -> tuple[Path, dict[str, Truth]]:
    """``CUDAOUTOFMEMORY/MMD-Bench`` as CLEAR's generators write it (the Hub listing itself is
    unverified): per base benchmark ``{Base}_LOW_LEVEL_{LOW,MID,HIGH}.tsv`` (intensities 0.23 /
    0.45 / 0.9, one degradation drawn per row, not recorded) and ``{Base}_{method}.tsv`` at 0.9
    (``generate_degradation_benchmark.py`` / ``generate_per_degradation_benchmark.py``). Columns are
    the base VLMEvalKit TSV's, unchanged; only ``image`` is replaced (JPEG q95, base64); short
    index-reference cells stay references. The base files (``MMStar.tsv``, ...) give the clean
    images (``with_clean``; written to ``clean_in`` when given, as in a VLMEvalKit LMUData folder).

    Bases: MMStar (options inline and in A-D), MMBench_DEV_EN_V11 (hint, circular rolls: index
    ``k`` and ``1_000_000 + k`` with the roll's image a reference to ``k``), MMVet (open answers
    with ``<AND>``/``<OR>``, judged)."""
    d = root / "MMD-Bench"
    d.mkdir(parents=True, exist_ok=True)
    truth: dict[str, Truth] = {}
    plan = {0.23: "lens_blur", 0.45: "gaussian_noise", 0.9: "motion_blur"}
    tables: dict[str, tuple[list[dict], list[str]]] = {}
    if "MMStar" in bases:
        rows = []
        for i, (stem, opts, ans, cat, l2) in enumerate(MMSTAR_ROWS):
            rows.append({"index": i, "question": _mmstar_question(stem, opts), "answer": ans, "category": cat,
                         "l2_category": l2, "image": i, **{LETTERS[j]: o for j, o in enumerate(opts)}})
            truth[f"mmdbench-mmstar:{i}"] = Truth(LETTERS.index(ans), tuple(opts), opts[LETTERS.index(ans)])
        tables["MMStar"] = (rows, ["index", "question", "A", "B", "C", "D", "answer", "category", "l2_category",
                                   "image"])
    if "MMBench_DEV_EN_V11" in bases:
        rows = []
        for k, (idx, q, hint, opts, ans) in enumerate(MMBENCH_ROWS[:3]):
            n = len(opts)
            for roll in range(2):  # circular copies: options rotated, index + 1e6, image = reference to the main row
                shift = roll
                ropts = opts[shift:] + opts[:shift]
                rans = LETTERS[(LETTERS.index(ans) - shift) % n]
                rindex = idx + roll * 1_000_000
                rows.append({"index": rindex, "question": q, "hint": None if hint in (None, "nan") else hint,
                             "answer": rans, "category": "object_localization", "l2-category": "finegrained_perception",
                             "split": "dev", "image": 300 + k if roll == 0 else f"{idx}",
                             **{LETTERS[j]: o for j, o in enumerate(ropts)}})
                k_ans = LETTERS.index(rans)
                truth[f"mmdbench-mmbench:{rindex}"] = Truth(k_ans, tuple(ropts), ropts[k_ans])
        tables["MMBench_DEV_EN_V11"] = (rows, ["index", "question", "hint", "A", "B", "C", "D", "answer", "category",
                                               "l2-category", "split", "image"])
    if "MMVet" in bases:
        rows = [{"index": 0, "question": "What is the total price of the two items?", "answer": "12<OR>$12",
                 "category": "ocr,math", "image": 400},
                {"index": 1, "question": "What animals are in the picture?", "answer": "cat<AND>dog",
                 "category": "rec", "image": 401}]
        for r in rows:
            truth[f"mmdbench-mmvet:{r['index']}"] = Truth(None, (), r["answer"])
        tables["MMVet"] = (rows, ["index", "image", "question", "answer", "category"])

    def materialize(rows: list[dict], level: float | None, method: str | None) -> list[dict]:
        out = []
        for r in rows:
            cell = r["image"]
            if isinstance(cell, str):  # a reference cell stays a reference (the generator keeps it)
                out.append(dict(r))
                continue
            if level is None:
                img = b64_jpeg(picture(200 + cell))
            else:
                img = _mmd_row_image(cell, level, method or plan[level], seed=cell)
            out.append({**r, "image": img})
        return out

    for base, (rows, cols) in tables.items():
        if with_clean:
            write_tsv((clean_in or d) / f"{base}.tsv", materialize(rows, None, None), cols)
        for name, lv in MMD_LEVELS.items():
            write_tsv(d / f"{base}_LOW_LEVEL_{name}.tsv", materialize(rows, lv, None), cols)
        for m in methods:
            write_tsv(d / f"{base}_{m}.tsv", materialize(rows, 0.9, m), cols)
    return d, truth
