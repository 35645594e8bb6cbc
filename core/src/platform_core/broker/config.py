"""Broker and result-store URLs, with the embedded default under PLATFORM_HOME."""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

from platform_core.errors import BrokerUnavailable
from platform_core.redaction import redact
from platform_core.settings import Settings
from platform_core.urls import PLAIN_REDIS, scheme

EMBEDDED = "filesystem://localhost/"


def broker_config(settings: Settings) -> dict[str, Any]:
    home = settings.resolved_home
    if settings.broker_url:
        broker = settings.broker_url.get_secret_value()
        options: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout}
    else:
        broker = EMBEDDED
        folders = {name: home / "broker" / name for name in ("queue", "control", "processed")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "control_folder": str(folders["control"]),
            "processed_folder": str(folders["processed"]),
            "polling_interval": 0.1,
        }
    extra: dict[str, Any] = {}
    if settings.result_backend:
        backend = settings.result_backend.get_secret_value()
    elif scheme(broker) in PLAIN_REDIS:
        backend = broker
    else:
        home.mkdir(parents=True, exist_ok=True)
        results = Path(home, "results.sqlite3")
        backend = f"db+sqlite:///{results}"
        extra["database_engine_options"] = {"creator": partial(connect_results, str(results))}
    return {
        "broker_url": broker,
        "broker_transport_options": options,
        "result_backend": backend,
        **extra,
    }


def connect_results(path: str) -> sqlite3.Connection:
    """A connection to the embedded result store, in write-ahead-log mode.

    SQLite's default journal syncs the disk several times per commit, and every stored
    result is a commit: the store, not the broker, bounded how fast the embedded default
    ran tasks. With a write-ahead log and ``synchronous=NORMAL`` a commit is an append;
    a crashed process loses nothing, a power cut at most the last commits. Writers
    (the pool processes) wait up to 30 s for each other instead of failing.
    """
    connection = sqlite3.connect(path, timeout=30, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def check_broker(app: Any, timeout: float = 3.0) -> None:
    """Raise :class:`BrokerUnavailable` unless the broker answers within ``timeout``."""
    url = app.conf.broker_url
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds here
        raise BrokerUnavailable(
            f"cannot reach the broker at {redact(url)} ({type(exc).__name__}: {exc}); start it, "
            "or point PLATFORM_BROKER_URL at a running one (unset it for the embedded broker)"
        ) from None
