"""Dataset card, validation and upload to the Hugging Face Hub (export: :mod:`factory.export`).

- :func:`write_card` renders ``prompts/dataset_card.md.j2`` (sandboxed Jinja, ``StrictUndefined``)
  into ``README.md``: the YAML header the Hub and ``datasets.load_dataset(DIR, "sft")`` read
  (configs/data_files, features, license, task categories, size category, pretty name), how the
  data was built (from ``build.json``), statistics and plots (from ``report/``), the chain
  format, how to load it, citations.
- :func:`validate` lists what would make the folder a bad Hub dataset.
- :func:`publish` validates, creates the dataset repo if needed and uploads with
  ``HfApi.upload_large_folder``.

Why ``upload_large_folder``: it is resumable (per-file progress is kept in
``DIR/.cache/huggingface/``; re-running the same command continues where an interrupted upload
stopped), hashes and uploads with several workers and commits in chunks, so a 10K-image dataset
goes up without one giant commit. What it does not do, we add: it never deletes files, so after
the upload the remote ``data/`` and ``report/`` files that no longer exist locally (e.g. shards
``-of-00003`` after a rebuild into 2 shards) are deleted in one commit; otherwise the card's
``data/sft/train-*.parquet`` glob would load stale rows twice.

Secrets: the token comes from the ``token`` argument, else ``HF_TOKEN``, else the saved login
(``hf auth login``); it is handed to ``huggingface_hub`` only and never printed, logged or
written: error messages are scrubbed before they are raised or logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from factory.export import export_reference  # noqa: F401 - re-exported (factory.publish.export_reference)

log = logging.getLogger("robust_r1.publish")

DEFAULT_LICENSE = "cc-by-4.0"
"""CC BY 4.0: the images are derived from COCO (annotations CC BY 4.0, photos from Flickr under
their own terms) and A-OKVQA's questions are Apache-2.0; CC BY 4.0 keeps the attribution both ask
for. Choose another with ``license=`` / ``--license`` when your source differs."""
TASK_CATEGORIES = ("visual-question-answering", "image-text-to-text")
REQUIRED_COLUMNS = (
    "id", "image", "question", "choices", "answer", "answer_text", "direct_answers", "degradations",
    "total_intensity", "type", "influence", "reasoning", "conclusion", "solution", "prompt",
    "target_words", "backend",
)  # fmt: skip
"""The data contract (DESIGN.md); ``clean_image`` is optional."""
COLUMN_MEANINGS = {
    "id": "stable id `<source>:<source id>`",
    "image": "the degraded image",
    "clean_image": "the pristine image",
    "question": "the question; for multiple choice the options follow as `0. x 1. y …`",
    "choices": "the options (empty for open questions)",
    "answer": "what `<ANSWER>` must contain (the option index for multiple choice)",
    "answer_text": "the answer in words",
    "direct_answers": "free-form answers of the annotators (VQA soft score), may be empty",
    "degradations": "one record per degradation: name, stage, intensity, params (JSON: physical parameters and seed)",
    "total_intensity": "sum of the intensities",
    "type": "the chain's TYPE field",
    "influence": "the chain's INFLUENCE field",
    "reasoning": "the chain's REASONING field",
    "conclusion": "the chain's CONCLUSION field",
    "solution": "the full tagged chain (training target)",
    "prompt": "question + the Robust-R1 instruction (what the model is shown)",
    "target_words": "reasoning length the chain was scaled to",
    "backend": "chain writer: `template` or `openai:<model>`",
}
CONFIGS = ("sft", "rl", "validation")
SHARD_RE = re.compile(r"^(?P<split>train|validation)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")
UPLOAD_IGNORE = (".*", "*/.*", "*.tmp", "*.partial", "*.lock", "__pycache__", "*/__pycache__/*")
"""Never uploaded: hidden files and folders at any depth (``.build/`` resume state, temporary
``.name.tmp`` files, ``.cache/``), temporary and lock files. fnmatch patterns: ``*`` spans ``/``."""
SECRET_RE = re.compile(
    r"(hf_[A-Za-z0-9]{30,}"
    r"|sk-[A-Za-z0-9_\-]{20,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{20,}"
    r"|://[^/\s:@]+:[^/\s@]+@"
    r"|(?i:api[_-]?key|token|secret|password)[\"']?\s*[=:]\s*[\"']?[A-Za-z0-9._\-]{16,})"
)
"""Strings that look like credentials (HF, OpenAI, AWS, GitHub, Slack tokens, bearer headers,
passwords in URLs, ``api_key=...``)."""
TEXT_SUFFIXES = {".md", ".json", ".jsonl", ".txt", ".yaml", ".yml", ".csv"}
LOGIN_HELP = (
    "no Hugging Face token found: run `hf auth login` (paste a token with write access from "
    "https://huggingface.co/settings/tokens) or set the HF_TOKEN environment variable."
)


# ---------------------------------------------------------------- helpers


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` value for ``n`` rows."""
    for limit, name in (
        (1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
    ):  # fmt: skip
        if n < limit:
            return name
    return "n>1T" if n >= 10**12 else "1B<n<10B" if n < 10**10 else "10B<n<100B" if n < 10**11 else "100B<n<1T"


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with the given secrets and anything credential-looking replaced by ``***``."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return SECRET_RE.sub("***", text)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _manifest(ds: Path) -> dict[str, Any]:
    path = ds / "build.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{ds}: no build.json; pass a dataset folder written by `robust-r1 build`.") from None
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); rebuild the dataset.") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("counts"), dict):
        raise ValueError(f"{path}: has no `counts`; rebuild the dataset.")
    return manifest


def _counts(manifest: dict[str, Any]) -> dict[str, int]:
    c = manifest["counts"]

    def get(v: Any) -> int:
        return int(v.get("train", 0)) if isinstance(v, dict) else int(v or 0)

    return {"sft": get(c.get("sft", 0)), "rl": get(c.get("rl", 0)), "validation": get(c.get("validation", 0))}


def read_card_header(path: str | Path) -> dict[str, Any] | None:
    """The YAML header of a card (``None`` when the file or header is missing); raises
    ``ValueError`` when the header does not parse."""
    import yaml

    p = Path(path)
    if not p.is_file():
        return None
    m = re.match(r"^---\r?\n(.*?)\r?\n---\r?\n", p.read_text(encoding="utf-8"), re.S)
    if not m:
        return None
    try:
        header = yaml.safe_load(m.group(1))
    except yaml.YAMLError as exc:
        raise ValueError(f"{p}: YAML header does not parse: {exc}") from None
    return header if isinstance(header, dict) else None


def _shards(ds: Path) -> dict[str, list[Path]]:
    return {cfg: sorted(p for p in (ds / "data" / cfg).glob("*.parquet") if not p.name.startswith(".")) for cfg in CONFIGS}


def _features(ds: Path, manifest: dict[str, Any]):
    """The ``datasets.Features`` of the rows: the parquet metadata first, else build.json."""
    import datasets
    import pyarrow.parquet as pq

    for files in _shards(ds).values():
        for f in files:
            schema = pq.read_schema(f)
            if schema.metadata and b"huggingface" in schema.metadata:
                return datasets.Features.from_arrow_schema(schema)
    if isinstance(manifest.get("features"), dict):
        return datasets.Features.from_dict(manifest["features"])
    return None


def _feature_type(feat: Any) -> str:
    import datasets

    if isinstance(feat, datasets.Image):
        return "image"
    if isinstance(feat, datasets.Value):
        return feat.dtype
    inner = getattr(feat, "feature", None)
    if inner is not None:
        if isinstance(inner, dict):
            return "list[struct{" + ", ".join(inner) + "}]"
        return f"list[{_feature_type(inner)}]"
    if isinstance(feat, dict):
        return "struct{" + ", ".join(feat) + "}"
    return type(feat).__name__


def _dataset_info_yaml(features: Any) -> str:
    """``dataset_info`` (features of both configs) as YAML, through datasets' own serialiser."""
    import yaml
    from datasets.info import DatasetInfo, DatasetInfosDict
    from huggingface_hub import DatasetCardData

    if features is None:
        return ""
    card = DatasetCardData()
    DatasetInfosDict({cfg: DatasetInfo(features=features) for cfg in ("sft", "rl")}).to_dataset_card_data(card)
    info = card.to_dict().get("dataset_info")
    return yaml.safe_dump(info, sort_keys=False, allow_unicode=True).rstrip("\n") if info else ""


def _license_note(source: dict[str, Any]) -> tuple[str, bool]:
    """(a sentence on where the content comes from, whether to cite A-OKVQA)."""
    blob = json.dumps(source).lower()
    if "aokvqa" in blob or "a-okvqa" in blob:
        return (
            "Questions and answers come from A-OKVQA (Apache-2.0); the images are degraded copies of "
            "COCO images (COCO annotations CC BY 4.0; the photos come from Flickr and remain under "
            "their owners' terms); the reasoning chains were generated for this dataset. Attribute "
            "A-OKVQA, COCO and Robust-R1 when you use it.",
            True,
        )
    if source.get("name") == "demo":
        return (
            "The demo images are photographs bundled with scikit-image (see its data licences); "
            "questions and chains were written for this toolkit.",
            False,
        )
    return ("Check that this license is compatible with the terms of the source dataset named above.", False)


# ---------------------------------------------------------------- card


def _cell(value: Any) -> str:
    """A value for a markdown table cell inside backticks: redacted, one line, no pipes/backticks."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return " ".join(redact(text).split()).replace("|", "/").replace("`", "'")


def render_card(
    dataset_dir: str | Path,
    *,
    repo_id: str | None = None,
    license: str | None = None,
    pretty_name: str | None = None,
    template_dir: str | Path | None = None,
) -> str:
    """The card text (see :func:`write_card`)."""
    import prompts
    from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, UndefinedError
    from jinja2.sandbox import SandboxedEnvironment

    from factory.report import PLOTS, _fmt

    ds = Path(dataset_dir)
    manifest = _manifest(ds)
    try:
        previous = read_card_header(ds / "README.md") or {}
    except ValueError:
        previous = {}
    counts = _counts(manifest)
    source = manifest.get("source") or {}
    if not isinstance(source, dict):
        source = {"name": str(source)}
    stats = None
    stats_path = ds / "report" / "stats.json"
    if stats_path.is_file():
        try:
            stats = json.loads(stats_path.read_text(encoding="utf-8"))
        except ValueError:
            log.warning("%s is not valid JSON; the card goes without statistics", stats_path)
    features = _features(ds, manifest)
    names = list(features) if features is not None else list(REQUIRED_COLUMNS)
    columns = [
        {"name": n, "type": _feature_type(features[n]) if features is not None else "", "meaning": COLUMN_MEANINGS.get(n, "")}
        for n in names
    ]
    chain = {"length_base": 25, "length_per_unit": 30, "length_min": 25, "length_max": 200}
    chain.update({k: v for k, v in (manifest.get("chain") or {}).items() if k in chain and isinstance(v, (int, float))})
    note, cite_aokvqa = _license_note(source)
    sp = (stats or {}).get("spearman") or {}
    context = {
        "pretty_name": pretty_name or previous.get("pretty_name") or f"Robust-R1 degraded VQA ({source.get('name', 'custom')})",
        "license": license or previous.get("license") or DEFAULT_LICENSE,
        "license_note": note,
        "cite_aokvqa": cite_aokvqa,
        "size_category": size_category(sum(counts.values())),
        "default_config": "sft",
        "counts": counts,
        "errors": int(manifest.get("errors", 0) or 0),
        "repo_id": repo_id or "USER/NAME",
        "source": {k: _cell(v) for k, v in source.items()},
        "recipe": {k: _cell(v) for k, v in (manifest.get("recipe") or {}).items()},
        "chain": chain,
        "backend": redact(str(manifest.get("backend", "unknown"))),
        "seed": manifest.get("seed", "unknown"),
        "sft_fraction": manifest.get("sft_fraction", "unknown"),
        "keep_clean": bool(manifest.get("keep_clean", False)),
        "image_format": manifest.get("image_format", "png"),
        "created": manifest.get("created", "unknown"),
        "version": manifest.get("version", ""),
        "command": redact(str(manifest.get("command") or "(not recorded)")),
        "stats": stats,
        "rho": _fmt(sp.get("reasoning_words") if sp.get("reasoning_words") is not None else float("nan")),
        "rho_chain": _fmt(sp.get("solution_words") if sp.get("solution_words") is not None else float("nan")),
        "plots": [{"path": f"report/{p}", "alt": p[:-4].replace("_", " ")} for p in PLOTS if (ds / "report" / p).is_file()],
        "columns": columns,
        "dataset_info_yaml": _dataset_info_yaml(features),
    }
    dirs = [str(template_dir)] if template_dir else []
    env = SandboxedEnvironment(
        loader=FileSystemLoader(dirs + [str(prompts.path())]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["yaml_str"] = lambda v: json.dumps(str(v), ensure_ascii=False)
    try:
        return env.get_template("dataset_card.md.j2").render(**context)
    except TemplateNotFound:
        raise ValueError(f"dataset_card.md.j2 not found in {dirs + [str(prompts.path())]}.") from None
    except UndefinedError as exc:
        raise ValueError(f"dataset_card.md.j2: {exc}; the template uses a variable the card does not provide.") from None


def write_card(
    dataset_dir: str | Path,
    *,
    repo_id: str | None = None,
    license: str | None = None,
    pretty_name: str | None = None,
    template_dir: str | Path | None = None,
) -> Path:
    """Render ``prompts/dataset_card.md.j2`` into ``DIR/README.md`` (atomically) and return its path.

    ``license`` and ``pretty_name`` default to what the current card says, else
    :data:`DEFAULT_LICENSE` and a name from the source, so re-rendering keeps a choice made
    earlier. ``repo_id`` only fills the loading snippet (``USER/NAME`` when unknown).
    Statistics and plots are embedded when ``report/`` exists (``robust-r1 report``).
    ``template_dir`` is searched before the bundled ``prompts/`` folder.
    """
    ds = Path(dataset_dir)
    text = render_card(ds, repo_id=repo_id, license=license, pretty_name=pretty_name, template_dir=template_dir)
    out = ds / "README.md"
    _atomic_write_text(out, text)
    return out


# ---------------------------------------------------------------- validation


def upload_plan(dataset_dir: str | Path) -> list[tuple[str, int]]:
    """``(path in repo, size in bytes)`` of every file :func:`publish` uploads, sorted
    (the same ignore patterns the upload uses: no ``.build/``, hidden or temporary files)."""
    from huggingface_hub.utils import filter_repo_objects

    ds = Path(dataset_dir)
    rel = sorted(p.relative_to(ds).as_posix() for p in ds.rglob("*") if p.is_file())
    keep = list(filter_repo_objects(rel, ignore_patterns=list(UPLOAD_IGNORE)))
    return [(r, (ds / r).stat().st_size) for r in keep]


def _check_shards(ds: Path, problems: list[str]) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    found: dict[str, int] = {}
    columns: dict[str, list[str]] = {}
    for cfg, files in _shards(ds).items():
        split = "validation" if cfg == "validation" else "train"
        found[cfg] = 0
        totals = set()
        indices = []
        for f in files:
            rel = f.relative_to(ds).as_posix()
            m = SHARD_RE.match(f.name)
            if not m or m["split"] != split:
                problems.append(f"{rel}: unexpected file name; shards are named {split}-NNNNN-of-NNNNN.parquet.")
            else:
                totals.add(int(m["n"]))
                indices.append(int(m["i"]))
            try:
                pf = pq.ParquetFile(f)
            except Exception as exc:  # noqa: BLE001 - any unreadable file is a problem, not a crash
                problems.append(f"{rel}: not a readable parquet file ({type(exc).__name__}: {exc}).")
                continue
            schema = pf.schema_arrow
            found[cfg] += pf.metadata.num_rows
            columns[rel] = schema.names
            missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
            if missing:
                problems.append(f"{rel}: missing column(s) {', '.join(missing)} of the data contract.")
            if "image" in schema.names:
                t = schema.field("image").type
                if not (pa.types.is_struct(t) and {t.field(i).name for i in range(t.num_fields)} >= {"bytes", "path"}):
                    problems.append(f"{rel}: column `image` is {t}, expected struct<bytes, path> (a datasets Image).")
            meta = (schema.metadata or {}).get(b"huggingface")
            if meta is None:
                problems.append(f"{rel}: no `huggingface` features in the parquet metadata; images would load as raw bytes.")
            else:
                try:
                    feats = json.loads(meta)["info"]["features"]
                    if feats.get("image", {}).get("_type") != "Image":
                        problems.append(f"{rel}: the features metadata does not declare `image` as an Image.")
                except (ValueError, KeyError, TypeError, AttributeError):
                    problems.append(f"{rel}: the `huggingface` parquet metadata does not parse.")
        if files and (len(totals) > 1 or (totals and (totals.pop() != len(files) or sorted(indices) != list(range(len(files)))))):
            problems.append(
                f"data/{cfg}: shard names do not form one complete -NNNNN-of-{len(files):05d} series "
                "(a stale shard from an earlier build?); rebuild or remove the extra files."
            )
    sets = {tuple(sorted(c)) for c in columns.values()}
    if len(sets) > 1:
        problems.append("the shards do not all have the same columns; rebuild the dataset.")
    return found


def _check_card(ds: Path, problems: list[str]) -> None:
    import fnmatch

    card = ds / "README.md"
    if not card.is_file():
        problems.append("README.md (the dataset card) is missing; run `robust-r1 report DIR` or factory.publish.write_card(DIR).")
        return
    try:
        header = read_card_header(card)
    except ValueError as exc:
        problems.append(str(exc))
        return
    if not header:
        problems.append("README.md: no YAML header (--- ... ---); re-render it with write_card.")
        return
    for key in ("license", "configs", "task_categories", "size_categories", "pretty_name"):
        if not header.get(key):
            problems.append(f"README.md: YAML header has no `{key}`.")
    files = [p.relative_to(ds).as_posix() for p in (ds / "data").rglob("*.parquet")] if (ds / "data").is_dir() else []
    configs = {c.get("config_name"): c for c in header.get("configs") or [] if isinstance(c, dict)}
    for name in ("sft", "rl"):
        if name not in configs:
            problems.append(f"README.md: no `{name}` config in the YAML header.")
            continue
        for df in configs[name].get("data_files") or []:
            paths = df.get("path") if isinstance(df, dict) else df
            for pattern in [paths] if isinstance(paths, str) else paths or []:
                if not any(fnmatch.fnmatch(f, pattern) for f in files):
                    problems.append(f"README.md: config `{name}` points at {pattern}, which matches no file.")
    text = card.read_text(encoding="utf-8")
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text):
        if "://" not in target and not (ds / target).is_file():
            problems.append(f"README.md: links to {target}, which is missing; run `robust-r1 report DIR`.")


def _check_secrets(ds: Path, plan: list[tuple[str, int]], problems: list[str]) -> None:
    live = [os.environ.get(k) for k in ("HF_TOKEN", "OPENAI_API_KEY", "HUGGING_FACE_HUB_TOKEN")]
    live = [s for s in live if s and len(s) >= 8]
    for rel, size in plan:
        if Path(rel).suffix.lower() not in TEXT_SUFFIXES or size > 50_000_000:
            continue
        text = (ds / rel).read_text(encoding="utf-8", errors="replace")
        if SECRET_RE.search(text) or any(s in text for s in live):
            problems.append(f"{rel}: contains something that looks like a token, key or password; remove it before publishing.")


def validate(dataset_dir: str | Path) -> list[str]:
    """Problems that would make ``dataset_dir`` a bad Hub dataset; an empty list means ready.

    Checks: build.json; every shard readable, named ``<split>-NNNNN-of-NNNNN.parquet`` in one
    complete series, with the contract's columns, an Image ``image`` column and HF features in
    its metadata; row counts equal build.json's; the card present, its YAML parsing, with the
    sft/rl configs pointing at existing files and its image links resolving; no secret-looking
    string in any text file that would be uploaded.
    """
    ds = Path(dataset_dir)
    if not ds.is_dir():
        return [f"{ds}: no such folder."]
    problems: list[str] = []
    try:
        manifest = _manifest(ds)
    except ValueError as exc:
        manifest = None
        problems.append(str(exc))
    found = _check_shards(ds, problems)
    if not found.get("sft") and not found.get("rl"):
        problems.append("no training rows: data/sft and data/rl are empty or missing.")
    if manifest is not None:
        for cfg, n in _counts(manifest).items():
            if found.get(cfg, 0) != n:
                problems.append(f"data/{cfg}: {found.get(cfg, 0)} rows, but build.json says {n}.")
    _check_card(ds, problems)
    _check_secrets(ds, upload_plan(ds), problems)
    return problems


# ---------------------------------------------------------------- publish


@dataclass
class PublishResult:
    repo_id: str
    files: list[tuple[str, int]]
    """(path in repo, bytes) of what was (or, in a dry run, would be) uploaded."""
    dry_run: bool
    url: str | None = None
    attempts: int = 0
    """API calls made, retries included (0 in a dry run)."""
    deleted: list[str] = field(default_factory=list)
    """Stale remote files removed after the upload."""
    token_source: str | None = None
    """Where the token came from (``argument``, ``HF_TOKEN``, ``saved login``); never the token."""
    private: bool = False

    @property
    def total_bytes(self) -> int:
        return sum(s for _, s in self.files)

    def lines(self) -> list[str]:
        """Human-readable summary (file list in a dry run)."""
        target = f"datasets/{self.repo_id}" + (" (private)" if self.private else "")
        if self.dry_run:
            return [
                *(f"{size:>14,d}  {path}" for path, size in self.files),
                f"dry run: {len(self.files)} files, {self.total_bytes / 1e6:.1f} MB would be uploaded to {target}",
                "token: " + (f"found ({self.token_source})" if self.token_source else "none found; " + LOGIN_HELP),
                "nothing was sent (no API call made).",
            ]
        out = [f"uploaded {len(self.files)} files ({self.total_bytes / 1e6:.1f} MB) to {self.url}"]
        if self.deleted:
            out.append(f"removed {len(self.deleted)} stale remote file(s): {', '.join(self.deleted)}")
        return out


def resolve_token(token: str | None = None) -> tuple[str | None, str | None]:
    """``(token, source)``: the argument, else ``HF_TOKEN``, else the saved login; ``(None, None)``."""
    if token:
        return token, "argument"
    env = os.environ.get("HF_TOKEN")
    if env:
        return env, "HF_TOKEN"
    try:
        from huggingface_hub import get_token

        saved = get_token()
    except Exception:  # noqa: BLE001 - an unreadable token file is "no token"
        saved = None
    return (saved, "saved login") if saved else (None, None)


def _status(exc: BaseException) -> int | None:
    resp = getattr(exc, "response", None)
    code = getattr(resp, "status_code", None)
    return code if isinstance(code, int) else None


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: HTTP 5xx/408/429, connection errors and timeouts (also when they caused
    ``upload_large_folder`` to abort)."""
    seen = 0
    while exc is not None and seen < 5:
        code = _status(exc)
        if code is not None:
            return code >= 500 or code in (408, 429)
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return True
        mod = type(exc).__module__
        if mod.startswith(("httpx", "requests", "urllib3", "httpcore")) and any(
            k in type(exc).__name__ for k in ("Connect", "Timeout", "Network", "Protocol", "RemoteDisconnected", "ReadError")
        ):
            return True
        exc, seen = exc.__cause__, seen + 1
    return False


def _explain(step: str, exc: BaseException, repo_id: str, token: str | None) -> str:
    code = _status(exc)
    msg = redact(f"{type(exc).__name__}: {exc}", token)
    if code in (401, 403):
        return (
            f"{step} on datasets/{repo_id} was refused (HTTP {code}): the token is invalid or has no write "
            f"access to this namespace. Log in again with `hf auth login` using a write token, or set HF_TOKEN. ({msg})"
        )
    if code == 404:
        return f"{step} on datasets/{repo_id}: not found (HTTP 404); check --repo-id (USER/NAME or ORG/NAME). ({msg})"
    return f"{step} on datasets/{repo_id} failed: {msg}"


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
    sleep: Callable[[float], None] = time.sleep,
) -> PublishResult:
    """Validate ``dataset_dir``, create ``datasets/<repo_id>`` if needed and upload the folder.

    ``dry_run`` validates and returns the upload plan without any API call (and without needing
    a token). ``api`` defaults to ``huggingface_hub.HfApi(token=...)``; pass any object with the
    same ``create_repo``/``upload_large_folder``/``list_repo_files``/``delete_files`` methods
    (tests pass a recording stand-in). Transient failures (5xx, 408, 429, connection errors,
    timeouts) are retried ``max_retries`` times with exponential backoff (``backoff`` × 2^k s,
    at most 60 s); re-running resumes an interrupted upload. Raises ``ValueError`` for an invalid
    folder, repo id or missing token, ``RuntimeError`` (token scrubbed) when the Hub keeps failing.
    """
    ds = Path(dataset_dir)
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]{0,95}/[A-Za-z0-9][\w.\-]{0,95}", repo_id or "") or ".." in repo_id:
        raise ValueError(f"--repo-id {repo_id!r}: expected USER/NAME (letters, digits, '-', '_', '.').")
    problems = validate(ds)
    if problems:
        raise ValueError(f"{ds}: not ready to publish:\n- " + "\n- ".join(problems))
    files = upload_plan(ds)
    tok, source = resolve_token(token)
    if dry_run:
        return PublishResult(repo_id, files, True, token_source=source, private=private)
    if not tok:
        raise ValueError(LOGIN_HELP)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=tok)
    log.info("publishing %s to datasets/%s (token from %s)", ds, repo_id, source)
    attempts = 0

    def call(step: str, fn: Callable[[], Any]) -> Any:
        nonlocal attempts
        for k in range(max_retries + 1):
            attempts += 1
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - classified below
                if not is_transient(exc):
                    raise RuntimeError(_explain(step, exc, repo_id, tok)) from None
                if k == max_retries:
                    raise RuntimeError(
                        f"{_explain(step, exc, repo_id, tok)} (gave up after {k + 1} attempts; "
                        "re-run the same command to resume the upload)"
                    ) from None
                wait = min(60.0, backoff * 2**k)
                log.warning("%s failed (%s); retry %d/%d in %.0f s", step, redact(f"{type(exc).__name__}: {exc}", tok)[:300], k + 1, max_retries, wait)
                sleep(wait)

    call("create_repo", lambda: api.create_repo(repo_id, token=tok, repo_type="dataset", private=private, exist_ok=True))
    call(
        "upload",
        lambda: api.upload_large_folder(
            repo_id=repo_id, folder_path=str(ds), repo_type="dataset", private=private, ignore_patterns=list(UPLOAD_IGNORE)
        ),
    )
    local = {p for p, _ in files}
    remote = call("list_repo_files", lambda: api.list_repo_files(repo_id, repo_type="dataset", token=tok)) or []
    stale = sorted(f for f in remote if f.startswith(("data/", "report/")) and f not in local)
    if stale:
        call(
            "delete stale files",
            lambda: api.delete_files(
                repo_id, delete_patterns=stale, repo_type="dataset", token=tok,
                commit_message=f"Remove {len(stale)} file(s) no longer in the local dataset",
            ),
        )  # fmt: skip
    return PublishResult(repo_id, files, False, f"https://huggingface.co/datasets/{repo_id}", attempts, stale, source, private)


# ---------------------------------------------------------------- CLI


def register(app: Any) -> None:
    """Add ``robust-r1 publish``, ``robust-r1 export`` and ``robust-r1 card`` to a typer app."""
    import typer

    def fail(message: str) -> typer.Exit:
        typer.echo(f"error: {message}", err=True)
        return typer.Exit(2)

    @app.command("publish")
    def publish_command(
        dataset: Path = typer.Argument(..., help="A dataset folder written by `robust-r1 build`."),
        repo_id: str = typer.Option(..., "--repo-id", help="USER/NAME (or ORG/NAME) of the Hub dataset repo."),
        private: bool = typer.Option(False, "--private", help="Create the repo private."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Validate and list what would be uploaded; no API call."),
        license: Optional[str] = typer.Option(None, "--license", help=f"License id for the card (default: the card's, else {DEFAULT_LICENSE})."),
        pretty_name: Optional[str] = typer.Option(None, "--pretty-name", help="Title of the card."),
        max_retries: int = typer.Option(5, "--max-retries", min=0, help="Retries of transient Hub errors."),
    ) -> None:
        """Validate the folder and upload it to the Hub (token: HF_TOKEN or `hf auth login`)."""
        try:
            if (dataset / "build.json").is_file():
                write_card(dataset, repo_id=repo_id, license=license, pretty_name=pretty_name)
            res = publish(dataset, repo_id, private=private, dry_run=dry_run, max_retries=max_retries)
        except (ValueError, RuntimeError) as exc:
            raise fail(str(exc)) from None
        for line in res.lines():
            typer.echo(line)

    @app.command("export")
    def export_command(
        dataset: Path = typer.Argument(..., help="A dataset folder written by `robust-r1 build`."),
        out: Path = typer.Argument(..., help="Output folder (created; a previous export there is replaced)."),
        fmt: str = typer.Option("reference", "--format", help="reference: the Robust-R1 reference repo's jsonl + image folders."),
        config: str = typer.Option("rl", "--config", help="Config whose train split becomes train.jsonl: rl (GRPO, default) or sft."),
        human: str = typer.Option("question", "--human", help="question (the reference appends its own instruction) or prompt (ours)."),
    ) -> None:
        """Export to the reference layout: train.jsonl/test.jsonl + train_images/test_images."""
        if fmt != "reference":
            raise fail(f"--format {fmt!r}: only 'reference' is supported.")
        try:
            counts = export_reference(dataset, out, config, human=human)
        except ValueError as exc:
            raise fail(str(exc)) from None
        typer.echo(f"wrote {counts['train']} train and {counts['test']} test samples to {out}")
        typer.echo(f"GRPO: --data_file_paths {out / 'train.jsonl'} --image_folders {out / 'train_images'} --task_type robust")

    @app.command("card")
    def card_command(
        dataset: Path = typer.Argument(..., help="A dataset folder written by `robust-r1 build`."),
        repo_id: Optional[str] = typer.Option(None, "--repo-id", help="USER/NAME for the loading snippet."),
        license: Optional[str] = typer.Option(None, "--license", help=f"License id (default: the card's, else {DEFAULT_LICENSE})."),
        pretty_name: Optional[str] = typer.Option(None, "--pretty-name"),
    ) -> None:
        """(Re)write the dataset card README.md from build.json and report/."""
        try:
            path = write_card(dataset, repo_id=repo_id, license=license, pretty_name=pretty_name)
        except ValueError as exc:
            raise fail(str(exc)) from None
        problems = validate(dataset)
        typer.echo(f"card: {path}")
        for p in problems:
            typer.echo(f"problem: {p}", err=True)
