"""Which declared queue a message belongs to, from the exchange and routing key it was
published with (what Redis keeps for an unacknowledged message, and a worker's request)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class QueueNames:
    """Queue names by (exchange, routing key) for the app's declared ``kombu.Queue`` objects."""

    def __init__(self, queues: Iterable[Any]) -> None:
        self.names: set[str] = set()
        self.by_binding: dict[tuple[str, str], str] = {}
        for queue in queues:
            self.names.add(queue.name)
            exchange = queue.exchange.name if queue.exchange is not None else ""
            self.by_binding.setdefault((exchange, queue.routing_key or queue.name), queue.name)

    def of(self, exchange: str | None, routing_key: str | None) -> str | None:
        """The queue, or None for a message no declared queue is bound to receive."""
        exchange, routing_key = exchange or "", routing_key or ""
        found = self.by_binding.get((exchange, routing_key))
        if found is not None:
            return found
        if not exchange and routing_key in self.names:  # the default exchange: by name
            return routing_key
        return None
