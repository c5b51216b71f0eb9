"""The command line as a whole: every command of the CLI before it became the ``factory/cli/``
package still exists with the same flags and defaults, and the one error handler maps library
errors to flags and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from factory.cli import app
from factory.cli.common import FIELD_FLAGS, add_command, flag_for
from factory.errors import ConfigError, InputError, ServiceError
from factory.lock import FolderBusy

runner = CliRunner()

# Every command, option (all its names, sorted) and default of the CLI as it was before the move
# (factory/cli.py, factory/build_cli.py, factory/chains/cli.py, trainers/cli.py and the commands
# inside factory/report.py and factory/publish.py at commit a750495), read from click's command
# objects of that tree; ``<name>`` is a positional argument. demo's --workers default is
# min(2, cpu count).
TRAIN = {
    "--backend": None,
    "--config": None,
    "--dataset": None,
    "--limit": None,
    "--max-steps": None,
    "--merge": False,
    "--model": None,
    "--no-resume": False,
    "--output": None,
    "--preset": "t4",
    "--push-to-hub": None,
    "--set": None,
}
"""The options of `train sft` and `train grpo` (the same)."""
OLD_CLI = {
    "build": {
        "--style": None,  # issue 16: the engine default (reference)
        "--backend": "template",
        "--base-url": None,
        "--cache": None,
        "--columns": None,
        "--concurrency": 8,
        "--image-format": "png",
        "--keep-clean": False,
        "--limit": None,
        "--model": None,
        "--no-report --report": True,
        "--no-vision": False,
        "--out -o": None,
        "--prompts": None,
        "--quiet -q": False,
        "--seed": 0,
        "--sft-fraction": 0.25,
        "--shard-size": 1000,
        "--source -s": "demo",
        "--split": None,
        "--workers -j": 1,
    },
    "card": {
        "--license": None,
        "--overwrite-card": False,  # added: replace a card edited outside its notes block (issue 14)
        "--pretty-name": None,
        "--repo-id": None,
        "<dataset>": None,
    },
    "chain": {
        "--style": None,  # issue 16: the engine default (reference)
        "--answer -a": None,
        "--backend": "template",
        "--base-url": None,
        "--cache": None,
        "--choices": None,
        "--concurrency": 8,
        "--json": False,
        "--model": None,
        "--no-vision": False,
        "--prompts": None,
        "--question -q": None,
        "--seed": 0,
        "<image>": None,
    },
    "degradations": {
        "--style": None,  # issue 16: the engine default (reference)
        "--json": False,
    },
    "degrade": {
        "--style": None,  # issue 16: the engine default (reference)
        "--format": "png",
        "--gallery": False,
        "--intensity": None,
        "--only": None,
        "--recipe": "train",
        "--seed": 0,
        "--workers": 1,
        "<input>": None,
        "<output>": None,
    },
    "demo": {
        "--style": None,  # issue 16: the engine default (reference)
        "--out": "demo-output",
        "--seed": 0,
        "--workers": "<cpu>",
    },
    "eval": {
        "--answer-format": None,
        "--backend": "auto",
        "--batch-size": 8,
        "--benchmark": "demo",
        "--columns": None,
        "--concurrency": 8,
        "--config-name": None,
        "--endpoint": None,
        "--levels": "clean,0.23,0.45,0.9",
        "--limit": None,
        "--judge-concurrency": 8,
        "--judge-endpoint": None,
        "--judge-model": None,
        "--max-new-tokens": 1024,
        "--max-pixels": None,  # the prompt kind's, else the model folder's saved budget, else 448 x 448
        "--name": None,
        "--only": None,
        "--options": None,
        "--out": "eval-output",
        "--prompt": "robust",
        "--prompts": None,
        "--seed": 0,
        "--split": None,
        "--style": None,  # issue 16
        "--temperature": 0.0,
        "<model>": None,
    },
    "eval-compare": {
        "--out": "eval-compare",
        "<runs>": None,
    },
    "export": {
        "--config": "rl",
        "--format": "reference",
        "--human": "question",
        "<dataset>": None,
        "<out>": None,
    },
    "infer": {
        "--backend": "auto",
        "--choices": None,
        "--image": None,
        "--json": False,
        "--max-new-tokens": 512,
        "--max-pixels": None,  # added by issue 12
        "--model": None,
        "--question": None,
    },
    "publish": {
        "--dry-run": False,
        "--license": None,
        "--max-retries": 5,
        "--pretty-name": None,
        "--private": False,
        "--repo-id": None,
        "<dataset>": None,
    },
    "report": {
        "--card --no-card": True,
        "--gallery": 12,
        "--out": None,
        "<dataset>": None,
    },
    "studio": {  # added by issue 17
        "--dataset": None,
        "--endpoint": None,
        "--host": "127.0.0.1",
        "--max-file-mb": 200,
        "--max-image-mp": 25.0,
        "--model": None,
        "--port": None,
        "--share": False,
        "--workdir": "studio-output",
    },
    "train grpo": TRAIN,
    "train sft": TRAIN,
}


def _current() -> dict[str, dict]:
    out = {}

    def walk(cmd, path):
        if getattr(cmd, "commands", None):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
            return
        params = {}
        for p in cmd.params:
            if p.param_type_name != "option":
                params[f"<{p.name}>"] = None
                continue
            default = None if callable(p.default) else p.default
            default = str(default) if isinstance(default, Path) else default
            params[" ".join(sorted(p.opts + p.secondary_opts))] = (
                list(default) if isinstance(default, tuple) else default
            )
        out[" ".join(path)] = params

    walk(typer.main.get_command(app), [])
    return out


def test_every_old_command_keeps_its_flags_and_defaults():
    expected = {cmd: dict(params) for cmd, params in OLD_CLI.items()}
    expected["demo"]["--workers"] = min(2, os.cpu_count() or 1)
    assert _current() == expected


@pytest.mark.parametrize("command", sorted(OLD_CLI))
def test_help_of_every_command_lists_its_flags(command):
    res = runner.invoke(app, [*command.split(), "--help"], terminal_width=200)
    assert res.exit_code == 0, res.output
    for names in OLD_CLI[command]:
        for name in names.split():
            if name.startswith("--"):
                assert name in res.output, (command, name)


def test_python_dash_m_runs_the_cli():
    res = subprocess.run([sys.executable, "-m", "factory.cli", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "eval-compare" in res.stdout and "degradations" in res.stdout


# ---------------------------------------------------------------- the one error handler


def _app_raising(exc: BaseException) -> typer.Typer:
    demo = typer.Typer()

    def work(max_steps: int = typer.Option(3, "--max-steps")) -> None:
        raise exc

    add_command(demo, "work", work)
    add_command(demo, "other", lambda: None)  # two commands: `work` is a subcommand
    return demo


@pytest.mark.parametrize(
    "exc,line",
    [
        (ConfigError("workers", "must be >= 1.", value=0), "error: --workers 0: must be >= 1."),
        (
            ConfigError("cache_dir", "cannot create it.", value="/x", fix="pick another"),
            "error: --cache '/x': cannot create it. (pick another)",
        ),
        (
            ConfigError("max_steps", "must be positive."),
            "error: --max-steps: must be positive.",
        ),  # the command's own option
        (
            ConfigError("length_tolerance", "must be in (0, 1)."),
            "error: length_tolerance: must be in (0, 1).",
        ),  # no flag
        (ValueError("data.parquet: missing column image."), "error: data.parquet: missing column image."),
        (InputError("row 3: empty question."), "error: row 3: empty question."),
        (
            FileNotFoundError(2, "No such file or directory", "x.png"),
            "error: x.png: no such file or folder; check the path.",
        ),
        (ServiceError("upload refused (HTTP 403)"), "error: upload refused (HTTP 403)"),
        (
            OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device", "ds/x.parquet"),
            "error: ds/x.parquet: no space left on device; free space on that disk (or write to another one) and "
            "run the same command again; finished work is kept.",
        ),
        (
            PermissionError(13, "Permission denied", "ds/build.json"),
            "error: ds/build.json: permission denied; check its permissions (ls -l, chmod, chown) or use another "
            "path.",
        ),
        (OSError(30, "Read-only file system", "/ro/x"), "error: /ro/x: read-only file system; write to a folder on "
         "a writable disk."),
        (
            FolderBusy(Path("ds"), {"command": "robust-r1 build --out ds", "pid": 7, "host": "h"}),
            "error: ds is being written by robust-r1 build --out ds (pid 7 on h); wait for it to finish, or choose "
            "another output folder.",
        ),
    ],
)
def test_library_errors_become_one_error_line_and_exit_2(exc, line):
    res = runner.invoke(_app_raising(exc), ["work"])
    assert res.exit_code == 2 and res.output.strip() == line


def test_a_nameless_os_error_names_the_commands_output_folder():
    demo = typer.Typer()

    def work(out: Path = typer.Option(..., "--out")) -> None:
        raise OSError(28, "No space left on device")

    add_command(demo, "work", work)
    add_command(demo, "other", lambda: None)
    res = runner.invoke(demo, ["work", "--out", "ds"])
    assert res.exit_code == 2
    assert res.output.strip() == (
        "error: no space left on device while writing ds; free space on that disk (or write to another one) and "
        "run the same command again; finished work is kept."
    )


def test_other_exceptions_are_not_swallowed():
    res = runner.invoke(_app_raising(KeyError("bug")), ["work"])
    assert res.exit_code == 1 and isinstance(res.exception, KeyError)


def test_the_field_flag_map_names_real_flags():
    flags = {n for params in OLD_CLI.values() for names in params for n in names.split()}
    assert set(FIELD_FLAGS.values()) <= flags
    assert flag_for("splits") == "--split" and flag_for("prompts_dir") == "--prompts" and flag_for("seed") == "--seed"


def test_build_reports_a_config_error_with_its_flag(tmp_path):
    out = tmp_path / "ds"
    res = runner.invoke(app, ["build", "--out", str(out), "--limit", "1x"])
    assert res.exit_code == 2 and "error: --limit '1x': give a number, or train=N,validation=M." in res.output
    res = runner.invoke(app, ["build", "--out", str(out), "--backend", "nope"])
    assert res.exit_code == 2 and "error: --backend 'nope': use 'template' or 'openai'" in res.output
    res = runner.invoke(app, ["build", "--out", str(out), "--split", "test"])
    assert res.exit_code == 2 and "error: --split 'test': use train and/or validation." in res.output
    assert not out.exists()
