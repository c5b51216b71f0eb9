"""What every command shares: the one error handler, the field → flag map, shared option groups.

Only typer and :mod:`factory.errors` are imported here: ``robust-r1 --help`` stays fast, and the
library (numpy, the engine, ``openai``, ``datasets``) loads when a command runs.

Errors: every command is registered with ``cls=Command``. A :class:`~factory.errors.ConfigError`
is printed as ``error: --flag VALUE: message`` (its config field mapped to the flag that sets it
through :data:`FIELD_FLAGS`, else through the command's own option of that name); a
``ValueError`` (``InputError`` included), :class:`~factory.errors.ServiceError` or
:class:`~factory.lock.FolderBusy` as ``error: message``; an ``OSError`` as one line naming the file
and the fix (:func:`os_error_message`: disk full, permission denied, read-only disk, missing file).
All exit with :data:`EXIT_USAGE` (2). Commands themselves never catch these.

Exit statuses (docs/bad-input.md has the table per command): :data:`EXIT_OK` (0) done,
:data:`EXIT_NOTHING` (1) nothing useful was produced (every input failed, each recorded with its
reason), :data:`EXIT_USAGE` (2) stopped by an error (settings, input, busy folder, disk, service),
:data:`EXIT_INCOMPLETE` (3) finished, but samples that failed for a passing reason (an LLM outage)
are left for the next run: run the same command again.
"""

from __future__ import annotations

import errno
import shlex
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from factory.errors import ConfigError, ServiceError

EXIT_OK = 0
"""The command did its work (samples that failed for good are recorded in ``errors.jsonl``)."""
EXIT_NOTHING = 1
"""Nothing useful was produced: every input failed (each recorded with its reason)."""
EXIT_USAGE = 2
"""Stopped by an error: settings, input, a busy folder, the disk, a service (as click's usage errors)."""
EXIT_INCOMPLETE = 3
"""Finished, but some samples failed for a passing reason (an LLM outage); re-run the same command."""

FIELD_FLAGS: dict[str, str] = {
    # BuildConfig
    "source": "--source",
    "out": "--out",
    "splits": "--split",
    "limit": "--limit",
    "columns": "--columns",
    "seed": "--seed",
    "workers": "--workers",
    "sft_fraction": "--sft-fraction",
    "keep_clean": "--keep-clean",
    "image_format": "--image-format",
    "shard_size": "--shard-size",
    # ChainConfig (and the chat settings of an LLM backend)
    "backend": "--backend",
    "model": "--model",
    "base_url": "--base-url",
    "concurrency": "--concurrency",
    "cache_dir": "--cache",
    "prompts_dir": "--prompts",
    "vision": "--no-vision",
    # export
    "config": "--config",
    "human": "--human",
}
"""Config field → the CLI flag that sets it (one map for every command). A field missing here is
shown as the command's option of the same name, else as the field itself (a setting with no flag)."""


def flag_for(field: str, ctx: Any = None) -> str:
    """The flag that sets config field ``field`` (see :data:`FIELD_FLAGS`)."""
    if field in FIELD_FLAGS:
        return FIELD_FLAGS[field]
    for p in getattr(getattr(ctx, "command", None), "params", ()):
        if p.name == field and p.opts:
            return max(p.opts, key=len)
    return field


_OUTPUT_PARAMS = ("out", "output", "dataset")
"""Parameters naming the folder a command writes: an OSError without a file name names it instead."""


def _where(ctx: Any) -> str | None:
    params = getattr(ctx, "params", None) or {}
    for name in _OUTPUT_PARAMS:
        if params.get(name):
            return str(params[name])
    return None


def os_error_message(exc: OSError, where: str | None = None) -> str:
    """One line for an ``OSError``: the file (else ``where``, the folder being written), what
    happened and the fix. Disk full, permission denied, a read-only disk and a missing file are
    named as such."""
    path = exc.filename or None
    code = exc.errno
    detail = exc.strerror or str(exc)
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        what = "no space left on device" if code == errno.ENOSPC else "disk quota exceeded"
        fix = ("free space on that disk (or write to another one) and run the same command again; "
               "finished work is kept")
    elif isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM):
        what, fix = "permission denied", "check its permissions (ls -l, chmod, chown) or use another path"
    elif code == errno.EROFS:
        what, fix = "read-only file system", "write to a folder on a writable disk"
    elif isinstance(exc, FileNotFoundError):
        what, fix = "no such file or folder", "check the path"
    elif isinstance(exc, IsADirectoryError):
        what, fix = "is a folder, not a file", "pass a file"
    elif isinstance(exc, NotADirectoryError):
        what, fix = "not a folder", "pass a folder"
    else:
        what, fix = detail, None
    if path is None and where is not None:
        head = f"{what} while writing {where}"
    else:
        head = f"{path}: {what}" if path else what
    return head if fix is None else f"{head}; {fix}."


def error_message(exc: BaseException, ctx: Any = None) -> str | None:
    """The one-line message for an error the CLI reports (``None``: not ours, let it raise)."""
    from factory.lock import FolderBusy

    if isinstance(exc, ConfigError):
        return exc.for_flag(flag_for(exc.field, ctx))
    if isinstance(exc, OSError):
        return os_error_message(exc, _where(ctx))
    if isinstance(exc, (ValueError, ServiceError, FolderBusy)):
        return str(exc)
    return None


class Command(TyperCommand):
    """A typer command whose library errors become ``error: ...`` and exit status 2."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            message = error_message(exc, ctx)
            if message is None:
                raise
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(EXIT_USAGE)


def add_command(app: typer.Typer, name: str, fn: Any, cls: type = Command) -> None:
    """Register ``fn`` as command ``name`` of ``app`` with the error handler."""
    app.command(name, cls=cls)(fn)


# ---------------------------------------------------------------- helpers of several commands


def output_lock(folder: Path, purpose: str, *, beside: bool = False):
    """The one-writer lock of an output folder (``factory.lock.OutputLock``, named after the command
    line). ``beside=True`` keeps the lock file next to the folder (``.NAME.robust-r1.lock``) for a
    folder that is swapped or uploaded whole (an export, a trained model pushed to the Hub)."""
    import sys

    from factory.lock import LOCK_NAME, OutputLock
    from factory.secrets import redact

    folder = Path(folder)
    command = redact(" ".join(["robust-r1", *sys.argv[1:]]))
    if not beside:
        return OutputLock(folder, purpose, command=command)
    return OutputLock(folder.parent, purpose, command=command, name=f".{folder.name}{LOCK_NAME}")


def split_values(values: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated values of one option as one list (``None`` when empty)."""
    if not values:
        return None
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


def command_line(ctx: Any, prog: str = "robust-r1") -> str:
    """The command as typed, rebuilt from the options given on the command line (normalised:
    long option names, given options only, in declaration order; shell-quoted), without secrets:
    credentials in a URL (``--base-url https://user:pass@host/v1?api_key=...``) and anything
    credential-shaped are masked (``factory.secrets``): it is written into build.json and the card."""
    from factory.secrets import redact, redact_url

    parts = [prog, ctx.info_name or "build"]
    for p in ctx.command.params:
        src = ctx.get_parameter_source(p.name)  # an enum of click's or typer's vendored click
        if getattr(src, "name", None) not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        value = ctx.params[p.name]
        opt = max(p.opts, key=len) if p.opts else p.name
        if getattr(p, "is_flag", False):
            if value:
                parts.append(opt)
            elif p.secondary_opts:
                parts.append(max(p.secondary_opts, key=len))
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            text = str(v)
            parts += [opt, shlex.quote(redact_url(text) if "://" in text else text)]
    return redact(" ".join(parts))


# ---------------------------------------------------------------- the degradation style option

STYLE = typer.Option(
    None,
    "--style",
    help="Degradation style: reference (default: the look and strength of the Robust-R1 reference code, as in the "
    "paper's data and numbers), physical (robust-r1's physical renderings) or mixed (one drawn per degradation).",
)
"""``--style`` of degrade, build, demo, chain, degradations and eval (``None``: the engine's
``DEFAULT_STYLE``; the commands resolve it with :func:`style_or_default`)."""


def style_or_default(style: str | None) -> str:
    """The style to use: the one given (checked), else ``factory.degrade.DEFAULT_STYLE``."""
    from factory.degrade import DEFAULT_STYLE, check_style

    return check_style(DEFAULT_STYLE if style is None else style)


# ---------------------------------------------------------------- the LLM option group


class LLM:
    """The chain-writer options of ``build`` and ``chain``, declared once (use them as defaults)."""

    backend = typer.Option(
        "template",
        "--backend",
        help="Chain writer: template (offline, default), openai (any OpenAI-compatible server) or another "
        "registered backend.",
    )
    model = typer.Option(
        None, "--model", help="Model name of an LLM backend (e.g. gpt-4o, or what your vLLM/Ollama server serves)."
    )
    base_url = typer.Option(
        None,
        "--base-url",
        help="OpenAI-compatible server URL, e.g. http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama); "
        "default api.openai.com, key from OPENAI_API_KEY.",
    )
    concurrency = typer.Option(8, "--concurrency", min=1, help="LLM requests in flight.")
    cache = typer.Option(
        None,
        "--cache",
        help="LLM response cache folder: a re-run makes no new calls (build: default OUT/.build/llm-cache).",
    )
    prompts = typer.Option(
        None, "--prompts", help="Folder with your own copies of the prompt templates (prompts/*.j2)."
    )
    no_vision = typer.Option(False, "--no-vision", help="Send no images to the LLM (text-only models).")


def chain_config(
    backend: str,
    model: str | None,
    base_url: str | None,
    concurrency: int,
    cache: Path | None,
    prompts: Path | None,
    no_vision: bool,
    *,
    seed: int,
):
    """A ``ChainConfig`` from the :class:`LLM` options (in the order they are declared there)."""
    from factory.chains.writer import ChainConfig

    return ChainConfig(
        backend=backend,
        model=model,
        base_url=base_url,
        concurrency=concurrency,
        cache_dir=str(cache) if cache else None,
        prompts_dir=str(prompts) if prompts else None,
        vision=not no_vision,
        seed=seed,
    )


MAX_PIXELS_HELP = (
    "Image budget in pixels; default: the model folder's training budget (robust_r1_settings.json), else 448x448."
)
