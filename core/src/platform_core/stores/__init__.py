"""Where dead letters, delivery counts and held (long-delayed) messages are kept.

- ``dead_letter_url`` set: that URL, Redis (``redis://``, ``rediss://``, ``unix://``,
  ``redis+socket://``, ``sentinel://``) or any SQLAlchemy URL;
- a Redis broker (Sentinel too): the broker's Redis server and database;
- the embedded broker: SQLite ``$PLATFORM_HOME/reliability.sqlite3``;
- another broker (RabbitMQ): the result backend if it is Redis or ``db+...``, else
  SQLite under home.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from platform_core.urls import database_url, redis_client_url, scheme

if TYPE_CHECKING:
    from platform_core.settings import Settings
    from platform_core.stores.base import Store

SQLITE_FILE = "reliability.sqlite3"


@dataclass(frozen=True)
class Location:
    url: str
    source: str
    local: bool = False  # SQLite on this machine while the broker is shared

    @property
    def note(self) -> str | None:
        if not self.local:
            return None
        return ("dead letters and long-delayed tasks are kept in SQLite on this machine "
                "(no Redis or database result backend to share); when producers and workers "
                "run on several machines, set PLATFORM_DEAD_LETTER_URL to a database or Redis "
                "they all reach")


def locate(settings: Settings) -> Location:
    if settings.dead_letter_url:
        return Location(settings.dead_letter_url.get_secret_value(), "PLATFORM_DEAD_LETTER_URL")
    sqlite = f"sqlite:///{settings.resolved_home / SQLITE_FILE}"
    if not settings.broker_url:
        return Location(sqlite, "default: SQLite under home")
    broker = redis_url(settings.broker_url.get_secret_value())
    if broker:
        return Location(broker, "default: the broker's Redis")
    backend = settings.result_backend.get_secret_value() if settings.result_backend else ""
    if redis_url(backend):
        return Location(backend, "default: the result backend")
    database = database_url(backend)
    if database:
        return Location(database, "default: the result backend")
    return Location(sqlite, "default: SQLite under home", local=True)


def redis_url(url: str | None) -> str | None:
    """``url`` as the platform's Redis client opens it (a Sentinel URL as it is), or None."""
    if url and scheme(url) == "sentinel":
        return url
    return redis_client_url(url)


_stores: dict[tuple[int, str, str | None], Store] = {}
_lock = threading.Lock()


def open_store(url: str, master_name: str | None = None) -> Store:
    """The store at ``url``, opened once per process (connections are not shared over fork);
    ``master_name`` is the Sentinel master's, for a ``sentinel://`` URL."""
    key = (os.getpid(), url, master_name)
    with _lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = _make(url, master_name)
        return store


def _make(url: str, master_name: str | None) -> Store:
    found = redis_url(url)
    if found:
        from platform_core.stores.redis_store import RedisStore

        return RedisStore(found, master_name)
    from platform_core.stores.sql_store import SqlStore

    return SqlStore(url)


def for_app(app: Any) -> Store:
    return open_store(app.conf.platform_dead_letter_database,
                      app.conf.get("platform_redis_master_name"))

