"""What every beat lock does, and the lock for brokers that have none."""

from __future__ import annotations

import json
import os
import socket
from abc import ABC, abstractmethod
from typing import Any

UNKNOWN = "unknown"

EntryState = dict[str, Any]  # {"last_run_at": ISO 8601, "total_run_count": int}


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class BeatLock(ABC):
    """A lock at most one process holds; ``scope`` separates partial beats."""

    def __init__(self, timeout: float, scope: str = "") -> None:
        self.timeout = timeout
        self.scope = scope
        self.identity = identity()
        self.entries: dict[str, EntryState] = {}

    @property
    def lease(self) -> float:
        """Seconds after which a holder that stopped renewing may have lost the lock."""
        return self.timeout

    def named(self, base: str, sep: str) -> str:
        return f"{base}{sep}{self.scope}" if self.scope else base

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the lock lives, for log lines."""

    @property
    @abstractmethod
    def freed(self) -> str:
        """When a standby may take the lock over, for log lines."""

    @abstractmethod
    def acquire(self) -> tuple[bool, str | None]:
        """Take the lock if it is free (or already ours): ``(True, None)``; else
        ``(False, holder)``, the holder being ``None`` when the lock cannot be reached."""

    @abstractmethod
    def renew(self) -> bool:
        """Extend the lock; ``False`` when it is no longer ours."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock up (clean exit)."""

    @abstractmethod
    def holder(self) -> str | None:
        """``hostname:pid`` of the holder, ``None`` when nobody holds the lock."""

    @abstractmethod
    def load_state(self) -> dict[str, EntryState]:
        """Each entry's last run, as the previous holder left it."""

    @abstractmethod
    def save_state(self, name: str, state: EntryState) -> bool:
        """Record an entry's run; ``False`` when the lock turned out not to be ours."""

    def close(self) -> None:  # noqa: B027 - most locks hold nothing to close
        """Drop connections without releasing anything."""


class NoLock(BeatLock):
    """For brokers the lock does not support: this beat always dispatches."""

    def __init__(self, broker: str, timeout: float) -> None:
        super().__init__(timeout)
        self.broker = broker

    @property
    def description(self) -> str:
        return f"none ({self.broker} brokers have no beat lock: run a single platform beat)"

    @property
    def freed(self) -> str:
        return "never"

    def acquire(self) -> tuple[bool, str | None]:
        return True, None

    def renew(self) -> bool:
        return True

    def release(self) -> None:
        pass

    def holder(self) -> str | None:
        return None

    def load_state(self) -> dict[str, EntryState]:
        return dict(self.entries)

    def save_state(self, name: str, state: EntryState) -> bool:
        self.entries[name] = state
        return True


def decode(raw: Any) -> dict[str, Any]:
    """A JSON object from ``raw`` (text, bytes or already decoded); ``{}`` if it is none."""
    try:
        value = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
