"""Dataset card, validation, upload to the Hugging Face Hub, and export to the reference layout."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("robust_r1.publish")

REQUIRED_COLUMNS = (
    "id", "image", "question", "choices", "answer", "answer_text", "degradations", "total_intensity",
    "type", "influence", "reasoning", "conclusion", "solution", "prompt", "target_words", "backend",
)  # fmt: skip
SECRET_RE = re.compile(r"(sk-[A-Za-z0-9_\-]{20,}|hf_[A-Za-z0-9]{30,})")
UPLOAD_IGNORE = [".build/**", ".build", "**/.*.tmp", "**/.*", ".*"]


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def write_card(dataset_dir: str | Path, *, repo_id: str = "USER/NAME", license: str = "cc-by-4.0", pretty_name: str | None = None) -> Path:
    """Render ``prompts/dataset_card.md.j2`` into ``README.md`` from ``build.json`` and ``report/``.

    The default license is CC BY 4.0: A-OKVQA's annotations are Apache-2.0 and its COCO images
    CC BY 4.0; pick what fits your source with ``license=``.
    """
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    import prompts

    ds = Path(dataset_dir)
    try:
        manifest = json.loads((ds / "build.json").read_text())
    except FileNotFoundError:
        raise ValueError(f"{ds}: no build.json; build the dataset first (robust-r1 build).") from None
    summary_path = ds / "report" / "summary.md"
    summary = summary_path.read_text() if summary_path.exists() else "(run `robust-r1 report` to add statistics)"
    c = manifest["counts"]
    counts = {"sft": c["sft"]["train"], "rl": c["rl"]["train"], "validation": c["validation"]}
    recipe = manifest["recipe"]
    chain = manifest.get("chain", {})
    probs = sorted(set(recipe["stage_probability"].values()))
    src = manifest["source"]
    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    template = env.from_string((prompts.path() / "dataset_card.md.j2").read_text())
    text = template.render(
        pretty_name=pretty_name or f"Robust-R1 degraded VQA ({src.get('name', 'custom')})",
        license=license,
        size_category=_size_category(sum(counts.values())),
        counts=counts,
        errors=manifest.get("errors", 0),
        repo_id=repo_id,
        source=", ".join(f"{k}: {v}" for k, v in src.items()),
        stage_probability=probs[0] if len(probs) == 1 else recipe["stage_probability"],
        per_stage="–".join(str(x) for x in recipe["per_stage"]),
        intensity_range=", ".join(str(x) for x in recipe["intensity_range"]),
        backend=manifest["backend"],
        length_base=chain.get("length_base", 25),
        length_per_unit=chain.get("length_per_unit", 30),
        length_min=chain.get("length_min", 25),
        length_max=chain.get("length_max", 200),
        seed=manifest["seed"],
        sft_fraction=manifest["sft_fraction"],
        image_format=manifest.get("image_format", "png"),
        keep_clean=manifest.get("keep_clean", False),
        command=manifest["command"],
        version=manifest.get("version", ""),
        summary=summary,
    )
    out = ds / "README.md"
    tmp = out.with_name(".README.md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out


def validate(dataset_dir: str | Path) -> list[str]:
    """Problems that would make the folder a bad Hub dataset (empty list: fine to publish)."""
    import pyarrow.parquet as pq
    import yaml

    ds = Path(dataset_dir)
    problems: list[str] = []
    card = ds / "README.md"
    if not card.is_file():
        problems.append("README.md (dataset card) is missing; run `robust-r1 build` or factory.publish.write_card.")
    else:
        text = card.read_text(encoding="utf-8")
        m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
        try:
            header = yaml.safe_load(m.group(1)) if m else None
        except yaml.YAMLError as exc:
            header, _ = None, problems.append(f"README.md: YAML header does not parse ({exc}).")
        if not header or "configs" not in header:
            problems.append("README.md: YAML header with `configs` is missing.")
    try:
        manifest = json.loads((ds / "build.json").read_text())
    except (FileNotFoundError, ValueError):
        manifest = None
        problems.append("build.json is missing or unreadable.")
    found = {}
    for cfg in ("sft", "rl", "validation"):
        files = sorted((ds / "data" / cfg).glob("*.parquet"))
        n = 0
        for f in files:
            meta = pq.ParquetFile(f)
            names = set(meta.schema_arrow.names)
            missing = [c for c in REQUIRED_COLUMNS if c not in names]
            if missing:
                problems.append(f"{f.relative_to(ds)}: missing columns {missing}.")
            n += meta.metadata.num_rows
        found[cfg] = n
    if manifest:
        c = manifest["counts"]
        expected = {"sft": c["sft"]["train"], "rl": c["rl"]["train"], "validation": c["validation"]}
        for k, v in expected.items():
            if found.get(k) != v:
                problems.append(f"data/{k}: {found.get(k)} rows but build.json says {v}.")
    if not found.get("sft") and not found.get("rl"):
        problems.append("no training rows in data/sft or data/rl.")
    for p in [card, ds / "build.json", ds / "errors.jsonl"]:
        if p.is_file() and SECRET_RE.search(p.read_text(encoding="utf-8", errors="replace")):
            problems.append(f"{p.name}: contains something that looks like an API key or token; remove it.")
    return problems


def upload_plan(dataset_dir: str | Path) -> list[tuple[str, int]]:
    """Files that would be uploaded (relative path, size), ``.build/`` and temporary files excluded."""
    ds = Path(dataset_dir)
    out = []
    for p in sorted(ds.rglob("*")):
        rel = p.relative_to(ds)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append((rel.as_posix(), p.stat().st_size))
    return out


@dataclass
class PublishResult:
    repo_id: str
    files: list[tuple[str, int]]
    dry_run: bool
    url: str | None = None
    attempts: int = 0
    problems: list[str] = field(default_factory=list)


def _token(token: str | None) -> str:
    if token:
        return token
    env = os.environ.get("HF_TOKEN")
    if env:
        return env
    try:
        from huggingface_hub import get_token

        saved = get_token()
    except Exception:  # noqa: BLE001
        saved = None
    if not saved:
        raise ValueError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (a write token is needed).")
    return saved


def _transient(exc: Exception) -> bool:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return status >= 500 or status in (408, 429)
    return isinstance(exc, (ConnectionError, TimeoutError, OSError))


def publish(
    dataset_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    dry_run: bool = False,
    token: str | None = None,
    api: Any = None,
    max_retries: int = 5,
    backoff: float = 2.0,
) -> PublishResult:
    """Validate, create the dataset repo if needed, and upload the folder (resumable).

    ``upload_large_folder`` is used when available: it uploads in resumable chunks and can be
    re-run after an interruption; otherwise ``upload_folder``. ``.build/`` and temporary files
    are never uploaded. Transient failures (5xx, 429, timeouts, connection errors) are retried
    with exponential backoff; the token is never printed or written.
    """
    ds = Path(dataset_dir)
    if not re.fullmatch(r"[\w.\-]+/[\w.\-]+", repo_id or ""):
        raise ValueError(f"--repo-id {repo_id!r}: expected USER/NAME.")
    problems = validate(ds)
    if problems:
        raise ValueError(f"{ds}: not ready to publish:\n- " + "\n- ".join(problems))
    files = upload_plan(ds)
    if dry_run:
        return PublishResult(repo_id, files, True)
    tok = _token(token)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    attempts = 0
    last: Exception | None = None
    for attempt in range(max_retries + 1):
        attempts += 1
        try:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True, token=tok)
            if hasattr(api, "upload_large_folder"):
                api.upload_large_folder(repo_id=repo_id, folder_path=str(ds), repo_type="dataset", ignore_patterns=UPLOAD_IGNORE, private=private)
            else:
                api.upload_folder(repo_id=repo_id, folder_path=str(ds), repo_type="dataset", ignore_patterns=UPLOAD_IGNORE, token=tok)
            return PublishResult(repo_id, files, False, f"https://huggingface.co/datasets/{repo_id}", attempts)
        except Exception as exc:  # noqa: BLE001
            last = exc
            if not _transient(exc) or attempt == max_retries:
                break
            wait = backoff * (2**attempt)
            log.warning("upload failed (%s); retrying in %.0f s", type(exc).__name__, wait)
            time.sleep(wait)
    msg = SECRET_RE.sub("***", f"{type(last).__name__}: {last}")
    raise RuntimeError(f"upload of {ds} to {repo_id} failed after {attempts} attempt(s): {msg}")


def export_reference(dataset_dir: str | Path, out_dir: str | Path, *, config: str = "rl") -> dict[str, int]:
    """Write the reference repo's layout: ``train.jsonl`` / ``test.jsonl`` + ``train_images/`` /
    ``test_images/``. Each line is ``{"id", "image", "conversations": [{"from": "human", "value":
    "<image>" + prompt}, {"from": "gpt", "value": solution}]}`` with ``image`` relative to its
    images folder, as its GRPO loader (``grpo_jsonl.py``) reads them. Train = the config's train
    split, test = validation. Written to a temporary folder and renamed into place."""
    import pyarrow.parquet as pq

    ds = Path(dataset_dir)
    out = Path(out_dir)
    if config not in ("sft", "rl"):
        raise ValueError(f"--config {config!r}: use sft or rl.")
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    counts = {}
    for name, folder in (("train", ds / "data" / config), ("test", ds / "data" / "validation")):
        files = sorted(folder.glob("*.parquet"))
        if name == "train" and not files:
            raise ValueError(f"{folder}: no parquet files; is {ds} a robust-r1 dataset?")
        img_dir = tmp / f"{name}_images"
        img_dir.mkdir()
        n = 0
        with open(tmp / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for f in files:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=64, columns=["id", "image", "prompt", "solution"]):
                    for row in batch.to_pylist():
                        ext = Path(row["image"].get("path") or "x.png").suffix or ".png"
                        fname = re.sub(r"[^\w.\-]", "_", row["id"]) + ext
                        (img_dir / fname).write_bytes(row["image"]["bytes"])
                        item = {
                            "id": row["id"],
                            "image": fname,
                            "conversations": [
                                {"from": "human", "value": "<image>" + row["prompt"]},
                                {"from": "gpt", "value": row["solution"]},
                            ],
                        }
                        fh.write(json.dumps(item, ensure_ascii=False) + "\n")
                        n += 1
        counts[name] = n
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)
    return counts
