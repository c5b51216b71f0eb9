"""The folder lock (one writer per output folder, safe after kill -9) and the secret scanner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from factory.lock import LOCK_NAME, FolderBusy, OutputLock
from factory.secrets import find_secrets, live_secrets, redact, redact_url

ROOT = Path(__file__).resolve().parents[1]

HOLD = """
import sys, time
from factory.lock import OutputLock
with OutputLock(sys.argv[1], "build", command="robust-r1 build --out X"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(folder: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_second_writer_is_refused_with_the_holder_named(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(FolderBusy) as err:
            OutputLock(tmp_path, "build").acquire()
        msg = str(err.value)
        assert f"pid {proc.pid}" in msg and "robust-r1 build --out X" in msg and "another output folder" in msg
    finally:
        proc.kill()
        proc.wait()


def test_lock_is_free_after_the_holder_is_killed_with_sigkill(tmp_path):
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / LOCK_NAME).exists()  # the file stays, the lock does not
    with OutputLock(tmp_path, "build") as lock:
        assert lock.held
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not lock.held


def test_lock_is_exclusive_within_one_process_and_reusable_after_release(tmp_path):
    first = OutputLock(tmp_path / "new", "eval").acquire()  # creates the folder
    with pytest.raises(FolderBusy):
        OutputLock(tmp_path / "new", "eval").acquire()
    first.release()
    with OutputLock(tmp_path / "new", "eval"):
        pass


def test_live_secrets_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "key-1234567890-abcdef")
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-abcdefghijkl")
    monkeypatch.setenv("SHORT_TOKEN", "1")  # too short to be a secret
    values = live_secrets()
    assert "key-1234567890-abcdef" in values and "tok-abcdefghijkl" in values and "1" not in values


def test_redact_masks_live_values_patterns_and_url_credentials(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "key-1234567890-abcdef")
    fake_hf = "hf_" + "a1B2" * 9  # built at run time: no token-shaped literal in the repository
    text = f"echo key-1234567890-abcdef then {fake_hf} via https://bob:pw123456@host/v1"
    out = redact(text)
    assert "key-1234567890-abcdef" not in out and fake_hf not in out and "bob" not in out and "pw123456" not in out
    assert "https://host/v1" in out
    assert find_secrets(text) == ["live secret", "credential pattern", "URL credentials"]
    assert find_secrets("a plain sentence about a cat") == []


def test_redact_url_drops_userinfo_and_key_parameters():
    assert redact_url("http://user:secret@localhost:8000/v1?api_key=abc123&x=1") == (
        "http://localhost:8000/v1?api_key=***&x=1"
    )
    assert redact_url("http://localhost:8000/v1") == "http://localhost:8000/v1"
    assert redact_url(None) is None


def test_redact_extra_secret_given_explicitly():
    assert redact("value s3cr3t-value-xyz here", "s3cr3t-value-xyz") == "value *** here"
