"""How many messages wait in the queues a worker consumes, on any kombu transport."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from platform_core.broker.view import BrokerView


def depths(app: Any, queues: Iterable[str]) -> dict[str, int]:
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        view = BrokerView(conn)
        try:
            return {name: view.depth(name) for name in queues}
        finally:
            view.close()
