"""Quorum queues: Celery's native delayed delivery, ready before a producer's first delay.

With ``queue_type = "quorum"`` Celery sends a countdown or an ETA to its delayed-delivery
exchanges (``celery_delayed_27`` and down), which the worker declares when it starts. A
producer that sends one before any worker ever ran got ``NOT_FOUND - no exchange
'celery_delayed_27'``. So the first delayed send of a process declares the same
topology Celery's worker declares (kombu's functions), and the plugins' queues bound to
it; everything involved is durable, so this happens once per process.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    declare_native_delayed_delivery_exchanges_and_queues,
)

_declared: set[tuple[int, str]] = set()
_lock = threading.Lock()


def ensure_topology(app: Any, options: dict[str, Any]) -> None:
    if app.conf.get("platform_queue_type") != "quorum" or not (
            options.get("countdown") or options.get("eta")):
        return
    key = (os.getpid(), str(app.conf.broker_url))
    if key in _declared:
        return
    with _lock:
        if key in _declared:
            return
        with app.connection_for_write() as connection:
            declare_native_delayed_delivery_exchanges_and_queues(
                connection, app.conf.broker_native_delayed_delivery_queue_type)
            channel = connection.default_channel
            for queue in app.amqp.queues.values():
                queue(channel).declare()
                bind_queue_to_native_delayed_delivery_exchange(connection, queue)
        _declared.add(key)
