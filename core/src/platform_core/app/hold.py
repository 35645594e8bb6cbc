"""Hold task messages whose countdown/eta lies beyond the broker's patience.

A worker keeps a message with an ETA unacknowledged until it is due. Redis gives
an unacknowledged message back to the queue after the visibility timeout (so a
task due in two hours runs twice, or more), and RabbitMQ closes the channel after
its ``consumer_timeout``. So at the one place every task message passes through
(``send_task``, which ``delay``/``apply_async`` call too), a message due later than
the *horizon* (the visibility timeout less a margin) is stored with its due time
instead of being published; a worker publishes it shortly before it is due
(:mod:`platform_core.worker.release`). The caller gets the usual AsyncResult with the same task id.

The message is built by Celery exactly as it would be sent: ``send_task`` runs
unchanged with a producer whose ``publish`` stores the serialized message.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery.utils.time import maybe_make_aware
from kombu.compression import compress
from kombu.entity import Exchange
from kombu.messaging import Producer
from kombu.serialization import dumps

from platform_core import stores
from platform_core.stores.base import Delayed, DelayStore
from platform_core.stores.records import StoredMessage, kept_properties

MARGIN_CAP = 300.0


def horizon(visibility_timeout: float) -> float:
    """Delays up to this many seconds go to the broker; longer ones are held."""
    return visibility_timeout - min(MARGIN_CAP, visibility_timeout / 10)


def due_time(countdown: float | None, eta: datetime | str | None) -> float | None:
    if countdown:  # as Celery: a countdown wins over an eta
        return time.time() + float(countdown)
    if eta is None:
        return None
    if isinstance(eta, str):
        eta = datetime.fromisoformat(eta)
    return float(maybe_make_aware(eta).timestamp())  # naive: UTC, as the worker reads it


def held_until(app: Any, countdown: float | None, eta: datetime | str | None) -> float | None:
    """The due time of a message to hold (due beyond the horizon), or None: send it."""
    limit = app.conf.get("platform_delay_horizon")
    due = None if limit is None else due_time(countdown, eta)
    if due is None or due - time.time() <= limit:
        return None
    return due


def send_task(app: Any, send: Callable[..., Any], name: str, args: Any = None,
              kwargs: Any = None, countdown: float | None = None,
              eta: datetime | str | None = None, *rest: Any, **options: Any) -> Any:
    """``Celery.send_task``, holding the message when it is due beyond the horizon."""
    if (not countdown and eta is None) or rest:
        return send(name, args, kwargs, countdown, eta, *rest, **options)
    due = held_until(app, countdown, eta)
    if due is None:
        return send(name, args, kwargs, countdown, eta, **options)
    store = stores.for_app(app).delays
    producer = options.pop("producer", None) or options.pop("publisher", None)
    connection = options.pop("connection", None)
    with contextlib.ExitStack() as stack:
        if connection is None:
            connection = stack.enter_context(app.producer_or_acquire(producer)).connection
        holder = HoldingProducer(connection, store=store, due=due)
        return send(name, args, kwargs, countdown, eta, producer=holder, **options)


def _queue_name(exchange: str, routing_key: str, declare: Any) -> str | None:
    names = [q.name for q in declare or () if getattr(q, "name", None)]
    if names:
        return str(names[0])
    return routing_key if not exchange else None


class HoldingProducer(Producer):
    """A producer whose task messages go to the delay store; anything else is published."""

    def __init__(self, connection: Any, *, store: DelayStore, due: float) -> None:
        super().__init__(connection, auto_declare=False)  # type: ignore[no-untyped-call]
        self.store = store
        self.due = due

    def publish(self, body: Any, routing_key: str | None = None, delivery_mode: Any = None,
                mandatory: bool = False, immediate: bool = False, priority: int = 0,
                content_type: str | None = None, content_encoding: str | None = None,
                serializer: str | None = None, headers: dict[str, Any] | None = None,
                compression: str | None = None, exchange: Any = None, retry: bool = False,
                retry_policy: Any = None, declare: Any = None, expiration: float | None = None,
                timeout: float | None = None, confirm_timeout: float | None = None,
                **properties: Any) -> Any:
        headers = dict(headers or {})
        if "task" not in headers or "id" not in headers:  # e.g. a task-sent event
            return super().publish(  # type: ignore[no-untyped-call]
                body, routing_key, delivery_mode, mandatory, immediate, priority,
                content_type, content_encoding, serializer, headers, compression, exchange,
                retry, retry_policy, declare, expiration, timeout, confirm_timeout,
                **properties)
        if content_type is None:
            content_type, content_encoding, body = dumps(body, serializer=serializer)
        if compression:
            body, headers["compression"] = compress(body, compression)
        exchange_name = exchange.name if isinstance(exchange, Exchange) else (exchange or "")
        routing_key = routing_key or ""
        properties.update(priority=priority,
                          delivery_mode=delivery_mode or getattr(exchange, "delivery_mode", 2))
        kept = kept_properties(properties)
        message = StoredMessage.from_body(
            body, queue=_queue_name(exchange_name, routing_key, declare), exchange=exchange_name,
            routing_key=routing_key, content_type=content_type,
            content_encoding=content_encoding, headers=headers, properties=kept,
        )
        self.store.add(Delayed(id=uuid.uuid4().hex, due=self.due, task=str(headers["task"]),
                               task_id=str(headers["id"]), message=message))
        return None
