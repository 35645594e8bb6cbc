"""Global rate limits in the worker: a run over its task's limit is sent again for later.

The check runs in the worker's main process, in the task's strategy, before Celery
sees the message, so no pool process is taken or made to wait. Each message takes a
token from its task's bucket in Redis (:mod:`platform_core.stores.rate_buckets`), for
its ETA if it has one. When the bucket gives a later time, the message, unchanged
but for its ETA (same task id, arguments, headers, trace context and retry count), is
published again for that time, or held in the delay store when that lies beyond the
broker's patience (:mod:`platform_core.app.hold`), and only then acknowledged. The
copy carries its slot in :data:`SLOT_HEADER`; it took its token already, so when it
arrives at its ETA it goes straight to Celery. A retry gets a new ETA and takes a
token again.

A bucket that cannot be reached, or a copy that cannot be published, lets the run go
ahead as without the limit, with a warning: nothing is lost.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from platform_core import stores
from platform_core.broker.replication import NotReplicated
from platform_core.deadletter.letters import queue_of
from platform_core.stores import rate_buckets
from platform_core.stores.base import Delayed
from platform_core.stores.rate_buckets import MICROS, Rate
from platform_core.stores.records import StoredMessage

logger = logging.getLogger("platform.rate_limits")

#: The ETA a deferred copy's token is for; equal to the copy's ``eta`` header.
SLOT_HEADER = "x-platform-rate-slot"

#: Called as ``listener(task, seconds)`` for each run sent again (the metrics count them).
listeners: list[Callable[[Any, float], None]] = []


def describe(rate: Rate) -> str:
    return f"{rate.count} per {rate.period:g}s"


def eta_timestamp(value: Any) -> float | None:
    """A message's ``eta`` header as a POSIX time (naive: UTC, as Celery reads it)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        eta = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (eta if eta.tzinfo else eta.replace(tzinfo=UTC)).timestamp()


def wrap(handle: Any, task: Any, app: Any, consumer: Any) -> Any:
    """``handle`` (a strategy's message handler) behind the task's global rate limit."""
    rate: Rate | None = getattr(task, "global_rate_limit", None)
    url = app.conf.get("platform_rate_limit_url")
    if rate is None or not url:
        return handle
    key = rate_buckets.key_of(task.name)

    def task_message_handler(message: Any, body: Any, ack: Any, reject: Any, callbacks: Any,
                             **options: Any) -> Any:
        headers = message.headers or {}
        eta = headers.get("eta")
        if eta is None or headers.get(SLOT_HEADER) != eta:
            now = time.time()
            due = max(now, eta_timestamp(eta) or now)
            try:
                buckets = rate_buckets.open_buckets(url, app.conf.get("platform_redis_master_name"))
                slot = buckets.acquire(key, rate, now=now, at=due)
            except Exception as exc:  # noqa: BLE001 - cannot limit: run it, as without one
                logger.warning("Cannot take a token for task %s[%s] from its global rate "
                               "limit (%s); running it without: %s: %s", task.name,
                               headers.get("id"), describe(rate), type(exc).__name__, exc)
            else:
                # in whole microseconds, as the bucket counts: a free token is for `due`
                if round(slot * MICROS) > round(due * MICROS) and \
                        _defer(app, task, message, slot, ack, consumer):
                    wait = slot - now
                    logger.info("Task %s[%s] is over its global rate limit (%s): sent again "
                                "to run in %.3f s", task.name, headers.get("id"),
                                describe(rate), wait)
                    for listener in listeners:
                        listener(task, wait)
                    return None
        return handle(message, body, ack, reject, callbacks, **options)

    return task_message_handler


def _defer(app: Any, task: Any, message: Any, slot: float, ack: Any, consumer: Any) -> bool:
    """Send the message again for ``slot``, then acknowledge it; False if it cannot be sent."""
    queue = queue_of(app, message)
    stored = StoredMessage.from_kombu(message, queue)
    eta = datetime.fromtimestamp(slot, UTC).isoformat()
    stored = dataclasses.replace(stored, headers={**stored.headers, "eta": eta,
                                                  SLOT_HEADER: eta})
    task_id = str(stored.headers.get("id"))
    try:
        horizon = app.conf.get("platform_delay_horizon")
        # Quorum queues: a worker cannot hold delayed messages unacknowledged (no global
        # QoS), so the copy waits in the delay store, released about a second before due.
        quorum = app.conf.get("platform_queue_type") == "quorum"
        if horizon is not None and (quorum or slot - time.time() > horizon):
            stores.for_app(app).delays.add(Delayed(id=uuid.uuid4().hex, due=slot,
                                                   task=task.name, task_id=task_id,
                                                   message=stored))
        else:
            queues = app.amqp.queues
            declare = [queues[queue]] if queue in queues else []
            with app.producer_or_acquire() as producer:
                stored.publish(producer, exchange=stored.exchange,
                               routing_key=stored.routing_key, declare=declare)
    except NotReplicated as exc:  # queued, only not yet on enough replicas: it is sent
        logger.warning("Task %s[%s] was sent again for its global rate limit, but %s",
                       task.name, task_id, exc)
    except Exception as exc:  # noqa: BLE001 - keep the message: run it now instead
        logger.warning("Cannot send task %s[%s] again for its global rate limit; running it "
                       "now: %s: %s", task.name, task_id, type(exc).__name__, exc)
        return False
    ack(logger, consumer.connection_errors)
    return True
