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
        "--pretty-name": None,
        "--repo-id": None,
        "<dataset>": None,
    },
    "chain": {
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
        "--json": False,
    },
    "degrade": {
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
        "--max-pixels": None,  # the prompt kind's budget: still 448 x 448 (200704) for robust and plain
        "--name": None,
        "--only": None,
        "--options": None,
        "--out": "eval-output",
        "--prompt": "robust",
        "--prompts": None,
        "--seed": 0,
        "--split": None,
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
            "error: [Errno 2] No such file or directory: 'x.png'",
        ),
        (ServiceError("upload refused (HTTP 403)"), "error: upload refused (HTTP 403)"),
    ],
)
def test_library_errors_become_one_error_line_and_exit_2(exc, line):
    res = runner.invoke(_app_raising(exc), ["work"])
    assert res.exit_code == 2 and res.output.strip() == line


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
