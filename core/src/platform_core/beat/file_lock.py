"""The beat lock on the embedded broker: flock on a file under PLATFORM_HOME."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from pathlib import Path

from platform_core.beat.lock import UNKNOWN, BeatLock, EntryState

logger = logging.getLogger("platform.beat")

LOCK_FILE = "beat.lock"


class FileLock(BeatLock):
    def __init__(self, path: Path, state_path: Path, timeout: float, scope: str = "") -> None:
        super().__init__(timeout, scope)
        self.path = path.with_name(self.named(path.stem, "-") + path.suffix)
        self.state_path = state_path.with_name(
            self.named(state_path.stem, "-") + state_path.suffix)
        self._fd: int | None = None

    @property
    def description(self) -> str:
        return f"file {self.path}"

    @property
    def freed(self) -> str:
        return "once its holder's process exits"

    def acquire(self) -> tuple[bool, str | None]:
        if self._fd is not None and self.renew():
            return True, None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False, self.holder() or UNKNOWN
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.identity.encode(), 0)
        self._fd = fd
        return True, None

    def renew(self) -> bool:
        # The kernel keeps the lock while the process lives; only a replaced file loses it.
        if self._fd is None:
            return False
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(self._fd).st_ino:
            self.close()
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        self.close()

    def holder(self) -> str | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.pread(fd, 256, 0).decode(errors="replace").strip() or UNKNOWN
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def load_state(self) -> dict[str, EntryState]:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("beat: ignoring unreadable schedule state %s (%s)", self.state_path, exc)
            return {}
        entries = data.get("entries", {}) if isinstance(data, dict) else {}
        self.entries = entries if isinstance(entries, dict) else {}
        return dict(self.entries)

    def save_state(self, name: str, state: EntryState) -> bool:
        if not self.renew():
            return False
        self.entries[name] = state
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps({"holder": self.identity, "entries": self.entries}))
        os.replace(tmp, self.state_path)
        return True

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
