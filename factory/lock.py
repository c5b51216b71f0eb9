"""One writer per output folder.

``with OutputLock(out, "build"):`` takes an exclusive lock on ``out/.robust-r1.lock``. A second
writer into the same folder gets a :class:`FolderBusy` error naming the holder (command, process id,
host, start time) instead of two processes corrupting each other's files.

The lock is an OS advisory lock (``fcntl.flock`` on POSIX, ``msvcrt.locking`` on Windows) held by
an open file: the operating system releases it when the holder exits in any way, ``kill -9``
included, so a lock left by a crashed run never blocks the next one. The file itself stays
behind (it only describes the last holder) and is ignored by readers of the folder.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

LOCK_NAME = ".robust-r1.lock"

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except (BlockingIOError, PermissionError):
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class FolderBusy(RuntimeError):
    """Another process is writing into the folder."""

    def __init__(self, folder: Path, holder: dict[str, Any]) -> None:
        self.folder = folder
        self.holder = holder
        who = holder.get("command") or holder.get("purpose") or "another robust-r1 process"
        since = holder.get("started")
        since = f", started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" if since else ""
        pid = holder.get("pid", "?")
        host = holder.get("host", "?")
        super().__init__(
            f"{folder} is being written by {who} (pid {pid} on {host}{since}); wait for it to finish, "
            "or choose another output folder."
        )


class OutputLock:
    """An exclusive, crash-safe lock on an output folder (see the module docstring)."""

    def __init__(
        self, folder: str | os.PathLike, purpose: str, *, command: str | None = None, name: str = LOCK_NAME
    ) -> None:
        self.folder = Path(folder)
        self.path = self.folder / name
        self.purpose = purpose
        self.command = command if command is not None else " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])
        self._fd: int | None = None

    def holder(self) -> dict[str, Any]:
        """What the lock file says about its last holder (empty if unreadable)."""
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> OutputLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            raise FolderBusy(self.folder, self.holder())
        info = {
            "purpose": self.purpose,
            "command": self.command,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time(),
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode("utf-8"))
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
