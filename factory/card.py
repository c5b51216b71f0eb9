"""The dataset card: ``README.md`` of a dataset folder, rendered from ``build.json`` and ``report/``.

:func:`write_card` renders ``prompts/dataset_card.md.j2`` (sandboxed Jinja, ``StrictUndefined``)
into ``README.md``: the YAML header the Hub and ``datasets.load_dataset(DIR, "sft")`` read
(configs/data_files, features, license, task categories, size category, pretty name), how the
data was built (from ``build.json``), statistics and plots (from ``report/``), the chain format,
how to load it, citations. :func:`read_card_header` reads the YAML header back.

The build writes the card at its end; ``robust-r1 report``, ``robust-r1 card`` and
``robust-r1 publish`` refresh it (:mod:`factory.publish` validates and uploads).

Hand-written text is never erased without a word. Text between ``<!-- robust-r1:notes -->`` and
``<!-- /robust-r1:notes -->`` (the card's "Notes" section) is kept by every re-render. The card
records a fingerprint of the rest (``<!-- robust-r1:card sha256=... -->``); a card edited outside
the notes block, or a README.md robust-r1 did not write, is not overwritten: :func:`write_card`
raises :class:`CardEdited`, saying to move the text into the notes block, or to replace the card
on purpose (``overwrite=True``, ``robust-r1 card DIR --overwrite-card``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from factory.chains.prompting import LENGTH
from factory.degrade.registry import LEGACY_STYLE
from factory.layout import (
    CARD,
    COLUMN_MEANINGS,
    CONFIGS,
    REPORT,
    REQUIRED_COLUMNS,
    atomic_write,
    manifest_counts,
    read_manifest,
    shard_files,
    shard_pattern,
)
from factory.report import PLOTS, fmt_number
from factory.secrets import redact

log = logging.getLogger("robust_r1.card")

DEFAULT_LICENSE = "cc-by-4.0"
"""CC BY 4.0: the images are derived from COCO (annotations CC BY 4.0, photos from Flickr under
their own terms) and A-OKVQA's questions are Apache-2.0; CC BY 4.0 keeps the attribution both ask
for. Choose another with ``license=`` / ``--license`` when your source differs."""
TASK_CATEGORIES = ("visual-question-answering", "image-text-to-text")
NOTES_BEGIN = "<!-- robust-r1:notes -->"
NOTES_END = "<!-- /robust-r1:notes -->"
"""The hand-written block of the card: what lies between these lines survives every re-render."""
_NOTES_RE = re.compile(re.escape(NOTES_BEGIN) + r"(?P<notes>.*?)" + re.escape(NOTES_END), re.S)
_FINGERPRINT_RE = re.compile(r"<!-- robust-r1:card sha256=(?P<sha>[0-9a-f]{64}) -->\n?")
_HEADER_RE = re.compile(r"^---\r?\n.*?\r?\n---\r?\n", re.S)


class CardEdited(ValueError):
    """README.md holds text that a re-render would erase (edited outside the notes block, or not
    written by robust-r1); the message says how to keep it or replace it on purpose."""


def _canonical(text: str) -> str:
    """The card without its notes and fingerprint, line endings and trailing spaces normalised."""
    text = _FINGERPRINT_RE.sub("", text.replace("\r\n", "\n"))
    text = _NOTES_RE.sub(NOTES_BEGIN + NOTES_END, text)
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def _fingerprint(text: str) -> str:
    return hashlib.sha256(_canonical(text).encode("utf-8")).hexdigest()


def card_notes(text: str) -> str | None:
    """The hand-written notes of a card's text (``None`` without a notes block)."""
    m = _NOTES_RE.search(text)
    return m.group("notes") if m else None


def card_state(path: str | Path) -> str:
    """``missing``, ``generated`` (as robust-r1 wrote it, notes aside) or ``edited`` (text outside
    the notes block changed, or a README.md without robust-r1's fingerprint)."""
    p = Path(path)
    if not p.is_file():
        return "missing"
    text = p.read_text(encoding="utf-8", errors="replace")
    m = _FINGERPRINT_RE.search(text)
    return "generated" if m and m.group("sha") == _fingerprint(text) else "edited"


def _finish_text(text: str, notes: str | None) -> str:
    """The rendered card with the kept notes and its fingerprint (after the YAML header)."""
    if notes is not None:
        if _NOTES_RE.search(text):
            text = _NOTES_RE.sub(lambda m: NOTES_BEGIN + notes + NOTES_END, text, count=1)
        elif notes.strip():  # a template without the block: keep the notes at the end
            text = text.rstrip("\n") + f"\n\n## Notes\n\n{NOTES_BEGIN}{notes}{NOTES_END}\n"
    line = f"<!-- robust-r1:card sha256={_fingerprint(text)} -->\n"
    m = _HEADER_RE.match(text)
    at = m.end() if m else 0
    return text[:at] + line + text[at:]


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` value for ``n`` rows."""
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ):
        if n < limit:
            return name
    return "n>1T" if n >= 10**12 else "1B<n<10B" if n < 10**10 else "10B<n<100B" if n < 10**11 else "100B<n<1T"


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


def _features(ds: Path, manifest: dict[str, Any]):
    """The ``datasets.Features`` of the rows: the parquet metadata first, else build.json."""
    import datasets
    import pyarrow.parquet as pq

    for files in shard_files(ds).values():
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
    DatasetInfosDict({cfg: DatasetInfo(features=features) for cfg in CONFIGS}).to_dataset_card_data(card)
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
    """The card text (see :func:`write_card`), the current card's notes block kept. Writes nothing."""
    from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, UndefinedError
    from jinja2.sandbox import SandboxedEnvironment

    import prompts

    ds = Path(dataset_dir)
    manifest = read_manifest(ds)
    try:
        previous = read_card_header(ds / CARD) or {}
    except ValueError:
        previous = {}
    counts = manifest_counts(manifest)
    source = manifest.get("source") or {}
    if not isinstance(source, dict):
        source = {"name": str(source)}
    stats = None
    stats_path = ds / REPORT / "stats.json"
    if stats_path.is_file():
        try:
            stats = json.loads(stats_path.read_text(encoding="utf-8"))
        except ValueError:
            log.warning("%s is not valid JSON; the card goes without statistics", stats_path)
    features = _features(ds, manifest)
    names = list(features) if features is not None else list(REQUIRED_COLUMNS)
    columns = [
        {
            "name": n,
            "type": _feature_type(features[n]) if features is not None else "",
            "meaning": COLUMN_MEANINGS.get(n, ""),
        }
        for n in names
    ]
    chain = LENGTH.updated(manifest.get("chain") if isinstance(manifest.get("chain"), dict) else None).settings()
    note, cite_aokvqa = _license_note(source)
    sp = (stats or {}).get("spearman") or {}
    context = {
        "pretty_name": pretty_name
        or previous.get("pretty_name")
        or f"Robust-R1 degraded VQA ({source.get('name', 'custom')})",
        "license": license or previous.get("license") or DEFAULT_LICENSE,
        "license_note": note,
        "cite_aokvqa": cite_aokvqa,
        "size_category": size_category(sum(counts.values())),
        "default_config": CONFIGS[0],
        "configs": [{"name": c, "train": shard_pattern(c), "validation": shard_pattern("validation")} for c in CONFIGS],
        "counts": counts,
        "errors": int(manifest.get("errors", 0) or 0),
        "repo_id": repo_id or "USER/NAME",
        "source": {k: _cell(v) for k, v in source.items()},
        "recipe": {k: _cell(v) for k, v in (manifest.get("recipe") or {}).items()},
        "style": _cell(manifest.get("style") or LEGACY_STYLE),  # a build.json before styles: physical
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
        "rho": fmt_number(sp.get("reasoning_words") if sp.get("reasoning_words") is not None else float("nan")),
        "rho_chain": fmt_number(sp.get("solution_words") if sp.get("solution_words") is not None else float("nan")),
        "plots": [
            {"path": f"{REPORT}/{p}", "alt": p[:-4].replace("_", " ")} for p in PLOTS if (ds / REPORT / p).is_file()
        ],
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
        text = env.get_template("dataset_card.md.j2").render(**context)
    except TemplateNotFound:
        raise ValueError(f"dataset_card.md.j2 not found in {dirs + [str(prompts.path())]}.") from None
    except UndefinedError as exc:
        raise ValueError(
            f"dataset_card.md.j2: {exc}; the template uses a variable the card does not provide."
        ) from None
    current = ds / CARD
    notes = card_notes(current.read_text(encoding="utf-8", errors="replace")) if current.is_file() else None
    return _finish_text(secrets_scrubbed(text), notes)


def secrets_scrubbed(text: str) -> str:
    """The card text with anything credential-looking masked (a last pass over the whole card)."""
    return redact(text)


def check_card_writable(dataset_dir: str | Path, *, overwrite: bool = False) -> None:
    """Raise :class:`CardEdited` when re-rendering ``DIR/README.md`` would erase hand-written text."""
    path = Path(dataset_dir) / CARD
    if overwrite or card_state(path) != "edited":
        return
    raise CardEdited(
        f"{path}: has text a re-render would erase (edited outside the notes block, or not written by "
        f"robust-r1); it was left as it is. Move your text between the lines {NOTES_BEGIN} and {NOTES_END} "
        "(kept by every re-render), or replace the card on purpose with `robust-r1 card DIR --overwrite-card` "
        "(your edits are lost)."
    )


def write_card(
    dataset_dir: str | Path,
    *,
    repo_id: str | None = None,
    license: str | None = None,
    pretty_name: str | None = None,
    template_dir: str | Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Render ``prompts/dataset_card.md.j2`` into ``DIR/README.md`` (atomically) and return its path.

    ``license`` and ``pretty_name`` default to what the current card says, else
    :data:`DEFAULT_LICENSE` and a name from the source, so re-rendering keeps a choice made
    earlier. ``repo_id`` only fills the loading snippet (``USER/NAME`` when unknown).
    Statistics and plots are embedded when ``report/`` exists (``robust-r1 report``).
    ``template_dir`` is searched before the bundled ``prompts/`` folder.

    The notes block of the current card is kept; a card edited elsewhere is not overwritten
    (:class:`CardEdited`) unless ``overwrite``.
    """
    ds = Path(dataset_dir)
    check_card_writable(ds, overwrite=overwrite)
    text = render_card(ds, repo_id=repo_id, license=license, pretty_name=pretty_name, template_dir=template_dir)
    return atomic_write(ds / CARD, text)
