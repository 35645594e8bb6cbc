"""The embedded result store: Celery's key-value result backend on one SQLite file.

``platform-sqlite:///<path>`` (registered with Celery through the
``celery.result_backends`` entry point) is the default result store when no Redis
is configured: the embedded broker, and RabbitMQ without ``PLATFORM_RESULT_BACKEND``.

Celery's database backend goes through the SQLAlchemy ORM: a query, a flush and a
commit for every stored state, about a millisecond of a pool process's time per task,
half of what a no-op task cost on the embedded broker. This one is the key-value
backend Celery's Redis, memcached and file stores share, so Celery keeps every rule
(a stored SUCCESS is final, group and chord bookkeeping, expiry) and the store only
reads and writes keys: one statement per stored state. It also counts chord parts
with ``incr``, so a chord's body starts when its last part ends, as on Redis, instead
of through ``celery.chord_unlock`` polling the store.

A stored SUCCESS, FAILURE or REVOKED is not replaced by a late RETRY or STARTED of an
earlier attempt (see :meth:`SQLiteBackend._set_with_state`).

Each process (and thread) opens its own connection; a forked pool process opens a new
one. The file is in write-ahead-log mode with ``synchronous=NORMAL``: a commit is an
append, a crashed process loses nothing, and a power cut at most the last commits.
Writers wait up to 30 s for each other instead of failing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

from celery import states
from celery.backends.base import KeyValueStoreBackend
from celery.exceptions import ImproperlyConfigured

SCHEME = "platform-sqlite"
TABLE = "platform_results"
#: Keys looked up in one ``SELECT`` by ``mget`` (SQLite's default bound-variable limit
#: is 32,766; this stays far below it).
MGET_CHUNK = 500
#: A process deletes the expired keys once per this many writes, so that a store with
#: no beat running does not grow without end.
SWEEP_EVERY = 10_000

_SCHEMA = (f"CREATE TABLE IF NOT EXISTS {TABLE} (key BLOB PRIMARY KEY, value BLOB NOT NULL, "
           "expires REAL, state TEXT) WITHOUT ROWID")
_READY = ", ".join(f"'{state}'" for state in sorted(states.READY_STATES))
#: A task's state; an earlier attempt's RETRY or STARTED never replaces a stored ready state.
_SET_STATE = (f"INSERT INTO {TABLE} (key, value, expires, state) VALUES (?, ?, ?, ?) "
              "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
              "expires = excluded.expires, state = excluded.state "
              f"WHERE excluded.state IN ({_READY}) OR {TABLE}.state IS NULL "
              f"OR {TABLE}.state NOT IN ({_READY})")
_GET = f"SELECT value FROM {TABLE} WHERE key = ? AND (expires IS NULL OR expires > ?)"
_SET = (f"INSERT INTO {TABLE} (key, value, expires) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires")
_INCR = (f"INSERT INTO {TABLE} (key, value, expires) VALUES (?, 1, NULL) "
         "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1 RETURNING value")


def url_for(path: Path) -> str:
    return f"{SCHEME}://{path.resolve()}"


def path_of(url: str) -> str:
    """The file of a ``platform-sqlite://`` URL: the scheme, then the file's absolute path
    (``platform-sqlite:///var/lib/results.sqlite3``; SQLAlchemy's four slashes also do)."""
    head, sep, rest = url.partition("://")
    if head.lower() != SCHEME or not sep or not rest.startswith("/") or rest == "/":
        raise ImproperlyConfigured(
            f"result backend URL {url!r}: write {SCHEME}:///<absolute path of the file>, "
            f"for example {SCHEME}:////var/lib/platform/results.sqlite3"
        )
    return rest[1:] if rest.startswith("//") else rest


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode (each statement is its own transaction)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=30, isolation_level=None,
                                 check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(_SCHEMA)
    return connection


class SQLiteBackend(KeyValueStoreBackend):  # type: ignore[misc]
    """Task states and results in one SQLite file, as keys with an expiry time."""

    implements_incr = True
    #: Expired keys are never read; they are deleted by beat's daily
    #: ``celery.backend_cleanup`` (scheduled for stores that do not expire keys
    #: themselves) and by every process once per :data:`SWEEP_EVERY` writes.
    supports_autoexpire = False
    supports_native_join = False

    def __init__(self, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(url=url, **kwargs)
        self.path = path_of(url or "")
        self._local = threading.local()
        with closing(connect(self.path)):  # a bad path fails here, not at the first task
            pass

    @property
    def _db(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.db, local.pid = connect(self.path), os.getpid()
        db: sqlite3.Connection = local.db
        return db

    def _until(self, seconds: float | None) -> float | None:
        return time.time() + seconds if seconds else None

    def get(self, key: bytes) -> Any:
        row = self._db.execute(_GET, (key, time.time())).fetchone()
        return row[0] if row else None

    def mget(self, keys: Iterable[bytes]) -> list[Any]:
        wanted = list(keys)
        found: dict[bytes, Any] = {}
        now = time.time()
        for start in range(0, len(wanted), MGET_CHUNK):
            chunk = wanted[start:start + MGET_CHUNK]
            marks = ", ".join("?" * len(chunk))
            found.update(self._db.execute(
                f"SELECT key, value FROM {TABLE} WHERE key IN ({marks}) "
                "AND (expires IS NULL OR expires > ?)", (*chunk, now)))
        return [found.get(key) for key in wanted]

    def set(self, key: bytes, value: Any) -> None:
        self._db.execute(_SET, (key, value, self._until(self.expires)))
        self._count_write()

    def _count_write(self) -> None:
        local = self._local
        local.writes = getattr(local, "writes", 0) + 1
        if local.writes % SWEEP_EVERY == 0:
            self.cleanup()

    def _set_with_state(self, key: bytes, value: Any, state: str) -> None:
        """Store a task's state; a stored ready state (SUCCESS, FAILURE, REVOKED) is not
        replaced by a state that is not. A task that retries with a short countdown can
        run again, on another pool process, and end before the attempt that retried it
        has stored RETRY: that late RETRY would replace the final FAILURE and leave
        callers waiting for ever. (Celery itself keeps only a stored SUCCESS.)"""
        self._db.execute(_SET_STATE, (key, value, self._until(self.expires), state))
        self._count_write()

    def delete(self, key: bytes) -> None:
        self._db.execute(f"DELETE FROM {TABLE} WHERE key = ?", (key,))

    def incr(self, key: bytes) -> int:
        return int(self._db.execute(_INCR, (key,)).fetchone()[0])

    def expire(self, key: bytes, value: float | None) -> None:
        self._db.execute(f"UPDATE {TABLE} SET expires = ? WHERE key = ?",
                         (self._until(value), key))

    def cleanup(self) -> None:
        """Remove expired keys (Celery's ``celery.backend_cleanup`` task calls this)."""
        self._db.execute(f"DELETE FROM {TABLE} WHERE expires <= ?", (time.time(),))

    def __reduce__(self, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Any:
        return super().__reduce__(args, {**(kwargs or {}), "url": self.url})
