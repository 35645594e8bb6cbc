"""Broker and result-store URLs, with the embedded default under PLATFORM_HOME."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from platform_core.broker import results
from platform_core.errors import BrokerUnavailable
from platform_core.redaction import redact
from platform_core.settings import Settings
from platform_core.urls import PLAIN_REDIS, scheme

EMBEDDED = "filesystem://localhost/"
#: The default result store's file under PLATFORM_HOME (:mod:`.results`).
RESULTS_FILE = "results.sqlite3"


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
    if settings.result_backend:
        backend = settings.result_backend.get_secret_value()
    elif scheme(broker) in PLAIN_REDIS or scheme(broker) == "sentinel":
        backend = broker
    else:
        home.mkdir(parents=True, exist_ok=True)
        backend = results.url_for(Path(home, RESULTS_FILE))
    return {
        "broker_url": broker,
        "broker_transport_options": options,
        "result_backend": backend,
    }


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
