"""Validation and upload of a dataset folder to the Hugging Face Hub.

- :func:`validate` lists what would make the folder a bad Hub dataset.
- :func:`publish` validates, creates the dataset repo if needed and uploads with
  ``HfApi.upload_large_folder``.

The card is :mod:`factory.card` (``write_card``, ``render_card``, ``read_card_header`` are
re-exported here), the export to the reference layout :mod:`factory.export`.

Why ``upload_large_folder``: it is resumable (per-file progress is kept in
``DIR/.cache/huggingface/``; re-running the same command continues where an interrupted upload
stopped), hashes and uploads with several workers and commits in chunks, so a 10K-image dataset
goes up without one giant commit. What it does not do, we add: it never deletes files, so after
the upload the remote ``data/`` and ``report/`` files that no longer exist locally (e.g. shards
``-of-00003`` after a rebuild into 2 shards) are deleted in one commit; otherwise the card's
``data/sft/train-*.parquet`` glob would load stale rows twice.

Secrets: the token comes from the ``token`` argument, else ``HF_TOKEN``, else the saved login
(``hf auth login``); it is handed to ``huggingface_hub`` only and never printed, logged or
written: error messages are scrubbed before they are raised or logged. :func:`validate` refuses a
folder where anything that would be uploaded holds a live secret or a credential-shaped string:
every text file, and every string of every parquet shard (``factory.secrets.find_secrets``).

A dry run writes nothing (the card it would upload is rendered in memory and validated as such),
and a real upload holds the folder's lock (``factory.lock``): no build or report writes into it
meanwhile.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.card import (  # noqa: F401 - re-exported (factory.publish.write_card, ...)
    DEFAULT_LICENSE,
    TASK_CATEGORIES,
    CardEdited,
    card_state,
    check_card_writable,
    read_card_header,
    render_card,
    size_category,
    write_card,
)
from factory.errors import ServiceError
from factory.export import export_reference  # noqa: F401 - re-exported (factory.publish.export_reference)
from factory.layout import (  # noqa: F401 - REQUIRED_COLUMNS re-exported
    CARD,
    CONFIGS,
    DATA,
    MANIFEST,
    REPORT,
    REQUIRED_COLUMNS,
    SHARD_RE,
    dir_split,
    manifest_counts,
    read_manifest,
    shard_files,
)
from factory.secrets import SECRET_RE, redact  # noqa: F401 - re-exported (factory.publish.redact)

log = logging.getLogger("robust_r1.publish")

UPLOAD_IGNORE = (".*", "*/.*", "*.tmp", "*.partial", "*.lock", "__pycache__", "*/__pycache__/*")
"""Never uploaded: hidden files and folders at any depth (``.build/`` resume state, temporary
``.name.tmp`` files, ``.cache/``), temporary and lock files. fnmatch patterns: ``*`` spans ``/``."""
TRANSIENT_NAMES = ("Connect", "Timeout", "Network", "Protocol", "RemoteDisconnected", "ReadError")
"""Exception class names (of httpx, requests, urllib3, httpcore) that mark a transient network failure."""
TEXT_SUFFIXES = {".md", ".json", ".jsonl", ".txt", ".yaml", ".yml", ".csv"}
LOGIN_HELP = (
    "no Hugging Face token found: run `hf auth login` (paste a token with write access from "
    "https://huggingface.co/settings/tokens) or set the HF_TOKEN environment variable."
)


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
    for cfg, files in shard_files(ds, keep_empty=True).items():
        split = dir_split(cfg)
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
                problems.append(
                    f"{rel}: no `huggingface` features in the parquet metadata; images would load as raw bytes."
                )
            else:
                try:
                    feats = json.loads(meta)["info"]["features"]
                    if feats.get("image", {}).get("_type") != "Image":
                        problems.append(f"{rel}: the features metadata does not declare `image` as an Image.")
                except (ValueError, KeyError, TypeError, AttributeError):
                    problems.append(f"{rel}: the `huggingface` parquet metadata does not parse.")
        complete = sorted(indices) == list(range(len(files)))
        series = not totals or (len(totals) == 1 and totals.pop() == len(files) and complete)
        if files and not series:
            problems.append(
                f"data/{cfg}: shard names do not form one complete -NNNNN-of-{len(files):05d} series "
                "(a stale shard from an earlier build?); rebuild or remove the extra files."
            )
    sets = {tuple(sorted(c)) for c in columns.values()}
    if len(sets) > 1:
        problems.append("the shards do not all have the same columns; rebuild the dataset.")
    return found


def _check_card(ds: Path, problems: list[str], card_text: str | None = None) -> None:
    import fnmatch

    import yaml

    card = ds / CARD
    if card_text is None and not card.is_file():
        problems.append(
            "README.md (the dataset card) is missing; run `robust-r1 report DIR` or factory.card.write_card(DIR)."
        )
        return
    text = card_text if card_text is not None else card.read_text(encoding="utf-8")
    m = re.match(r"^---\r?\n(.*?)\r?\n---\r?\n", text, re.S)
    try:
        header = yaml.safe_load(m.group(1)) if m else None
    except yaml.YAMLError as exc:
        problems.append(f"{card}: YAML header does not parse: {exc}")
        return
    header = header if isinstance(header, dict) else None
    if not header:
        problems.append("README.md: no YAML header (--- ... ---); re-render it with write_card.")
        return
    for key in ("license", "configs", "task_categories", "size_categories", "pretty_name"):
        if not header.get(key):
            problems.append(f"README.md: YAML header has no `{key}`.")
    files = [p.relative_to(ds).as_posix() for p in (ds / DATA).rglob("*.parquet")] if (ds / DATA).is_dir() else []
    configs = {c.get("config_name"): c for c in header.get("configs") or [] if isinstance(c, dict)}
    for name in CONFIGS:
        if name not in configs:
            problems.append(f"README.md: no `{name}` config in the YAML header.")
            continue
        for df in configs[name].get("data_files") or []:
            paths = df.get("path") if isinstance(df, dict) else df
            for pattern in [paths] if isinstance(paths, str) else paths or []:
                if not any(fnmatch.fnmatch(f, pattern) for f in files):
                    problems.append(f"README.md: config `{name}` points at {pattern}, which matches no file.")
    for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", text):
        if "://" not in target and not (ds / target).is_file():
            problems.append(f"README.md: links to {target}, which is missing; run `robust-r1 report DIR`.")


def _strings(array) -> list[str]:
    """Every string inside an arrow array (through lists and structs); binary data is skipped."""
    import pyarrow as pa

    t = array.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return [v for v in array.to_pylist() if v]
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _strings(array.flatten())
    if pa.types.is_struct(t):
        return [v for i in range(t.num_fields) for v in _strings(array.field(i))]
    if pa.types.is_dictionary(t):
        return _strings(array.dictionary)
    return []


def parquet_secrets(path: str | Path, extra: list[str | None] | None = None) -> dict[str, list[str]]:
    """``{column: kinds}`` of the columns of a parquet file holding a live secret or a
    credential-shaped string (``factory.secrets.find_secrets``; the secret itself is never returned).
    Every string is read, nested ones included (``choices``, ``degradations.params``, an image's
    ``path``); image bytes are not text and are skipped."""
    import pyarrow.parquet as pq

    from factory.secrets import find_secrets

    found: dict[str, set[str]] = {}
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=256):
        for name, column in zip(batch.schema.names, batch.columns):
            values = _strings(column)
            if values and (kinds := find_secrets("\n".join(values), extra or [])):
                found.setdefault(name, set()).update(kinds)
    return {k: sorted(v) for k, v in found.items()}


def _check_secrets(ds: Path, plan: list[tuple[str, int]], problems: list[str], card_text: str | None = None) -> None:
    from factory.secrets import find_secrets

    fix = "remove it before publishing (rebuild, or fix the file)"
    for rel, size in plan:
        suffix = Path(rel).suffix.lower()
        try:
            if suffix == ".parquet":
                for column, kinds in parquet_secrets(ds / rel).items():
                    problems.append(f"{rel}: column {column} contains something that looks like a token, key or "
                                    f"password ({', '.join(kinds)}); {fix}.")
                continue
            if suffix not in TEXT_SUFFIXES or size > 50_000_000:
                continue
            if rel == CARD and card_text is not None:
                text = card_text
            else:
                text = (ds / rel).read_text(encoding="utf-8", errors="replace")
        except Exception as exc:  # noqa: BLE001 - an unreadable shard is reported by _check_shards
            log.debug("secret scan of %s skipped: %s", rel, exc)
            continue
        kinds = find_secrets(text)
        if kinds:
            problems.append(f"{rel}: contains something that looks like a token, key or password "
                            f"({', '.join(kinds)}); {fix}.")


def validate(dataset_dir: str | Path, *, card_text: str | None = None) -> list[str]:
    """Problems that would make ``dataset_dir`` a bad Hub dataset; an empty list means ready.

    Checks: build.json; every shard readable, named ``<split>-NNNNN-of-NNNNN.parquet`` in one
    complete series, with the contract's columns, an Image ``image`` column and HF features in
    its metadata; row counts equal build.json's; the card present, its YAML parsing, with the
    sft/rl configs pointing at existing files and its image links resolving; no live secret or
    credential-shaped string in any text file that would be uploaded nor in any string of any
    parquet shard. ``card_text`` stands for ``README.md`` (the card a publish would write first).
    Reads only: writes nothing.
    """
    ds = Path(dataset_dir)
    if not ds.is_dir():
        return [f"{ds}: no such folder."]
    problems: list[str] = []
    try:
        manifest = read_manifest(ds)
    except ValueError as exc:
        manifest = None
        problems.append(str(exc))
    found = _check_shards(ds, problems)
    if not found.get("sft") and not found.get("rl"):
        problems.append("no training rows: data/sft and data/rl are empty or missing.")
    if manifest is not None:
        for cfg, n in manifest_counts(manifest).items():
            if found.get(cfg, 0) != n:
                problems.append(f"data/{cfg}: {found.get(cfg, 0)} rows, but build.json says {n}.")
    _check_card(ds, problems, card_text)
    plan = upload_plan(ds)
    if card_text is not None and CARD not in {p for p, _ in plan}:
        plan.append((CARD, len(card_text.encode("utf-8"))))
    _check_secrets(ds, plan, problems, card_text)
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
            k in type(exc).__name__ for k in TRANSIENT_NAMES
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
    refresh_card: bool = False,
    license: str | None = None,
    pretty_name: str | None = None,
) -> PublishResult:
    """Validate ``dataset_dir``, create ``datasets/<repo_id>`` if needed and upload the folder.

    ``refresh_card`` re-renders the card first (``license``, ``pretty_name``, ``repo_id`` in its
    loading snippet; its notes block kept; a card edited elsewhere is refused with
    :class:`factory.card.CardEdited`). ``dry_run`` validates and returns the upload plan without
    any API call, without needing a token, and without writing anything (the card is rendered in
    memory, and validated as the card that would be uploaded). ``api`` defaults to
    ``huggingface_hub.HfApi(token=...)``; pass any object with the
    same ``create_repo``/``upload_large_folder``/``list_repo_files``/``delete_files`` methods
    (tests pass a recording stand-in). Transient failures (5xx, 408, 429, connection errors,
    timeouts) are retried ``max_retries`` times with exponential backoff (``backoff`` × 2^k s,
    at most 60 s); re-running resumes an interrupted upload. Raises ``ValueError`` for an invalid
    folder, repo id or missing token, ``factory.errors.ServiceError`` (a ``RuntimeError``; token scrubbed)
    when the Hub keeps failing.
    """
    ds = Path(dataset_dir)
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]{0,95}/[A-Za-z0-9][\w.\-]{0,95}", repo_id or "") or ".." in repo_id:
        raise ValueError(f"--repo-id {repo_id!r}: expected USER/NAME (letters, digits, '-', '_', '.').")
    if not ds.is_dir():
        raise ValueError(f"{ds}: no such folder; pass a dataset folder written by `robust-r1 build`.")
    card_kw = {"repo_id": repo_id, "license": license, "pretty_name": pretty_name}
    if dry_run:
        card_text = None
        if refresh_card:
            check_card_writable(ds)
            card_text = render_card(ds, **card_kw)
        problems = validate(ds, card_text=card_text)
        if problems:
            raise ValueError(f"{ds}: not ready to publish:\n- " + "\n- ".join(problems))
        files = upload_plan(ds)
        if card_text is not None and CARD not in {p for p, _ in files}:
            files = sorted([*files, (CARD, len(card_text.encode("utf-8")))])
        elif card_text is not None:
            files = [(p, len(card_text.encode("utf-8")) if p == CARD else n) for p, n in files]
        return PublishResult(repo_id, files, True, token_source=resolve_token(token)[1], private=private)
    from factory.lock import OutputLock

    with OutputLock(ds, "publish"):
        if refresh_card:
            write_card(ds, **card_kw)
        problems = validate(ds)
        if problems:
            raise ValueError(f"{ds}: not ready to publish:\n- " + "\n- ".join(problems))
        tok, source = resolve_token(token)
        if not tok:
            raise ValueError(LOGIN_HELP)
        return _upload(ds, repo_id, tok, source, api, private, max_retries, backoff, sleep)


def _upload(ds: Path, repo_id: str, tok: str, source: str | None, api: Any, private: bool, max_retries: int,
            backoff: float, sleep: Callable[[float], None]) -> PublishResult:
    """The upload proper (validated folder, token found, folder locked)."""
    files = upload_plan(ds)
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
                    raise ServiceError(_explain(step, exc, repo_id, tok)) from None
                if k == max_retries:
                    raise ServiceError(
                        f"{_explain(step, exc, repo_id, tok)} (gave up after {k + 1} attempts; "
                        "re-run the same command to resume the upload)"
                    ) from None
                wait = min(60.0, backoff * 2**k)
                what = redact(f"{type(exc).__name__}: {exc}", tok)[:300]
                log.warning("%s failed (%s); retry %d/%d in %.0f s", step, what, k + 1, max_retries, wait)
                sleep(wait)

    call(
        "create_repo", lambda: api.create_repo(repo_id, token=tok, repo_type="dataset", private=private, exist_ok=True)
    )
    call(
        "upload",
        lambda: api.upload_large_folder(
            repo_id=repo_id,
            folder_path=str(ds),
            repo_type="dataset",
            private=private,
            ignore_patterns=list(UPLOAD_IGNORE),
        ),
    )
    local = {p for p, _ in files}
    remote = call("list_repo_files", lambda: api.list_repo_files(repo_id, repo_type="dataset", token=tok)) or []
    stale = sorted(f for f in remote if f.startswith((f"{DATA}/", f"{REPORT}/")) and f not in local)
    if stale:
        call(
            "delete stale files",
            lambda: api.delete_files(
                repo_id, delete_patterns=stale, repo_type="dataset", token=tok,
                commit_message=f"Remove {len(stale)} file(s) no longer in the local dataset",
            ),
        )  # fmt: skip
    url = f"https://huggingface.co/datasets/{repo_id}"
    return PublishResult(repo_id, files, False, url, attempts, stale, source, private)
