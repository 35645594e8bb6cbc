"""Put a received message into the dead-letter store and say so in one log line.

The log line names the entry, task, task id, queue and reason, never the body or
the task's arguments.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any

from platform_core import stores
from platform_core.errors import StoreError
from platform_core.stores import jsontext
from platform_core.stores.jsontext import depth_over
from platform_core.stores.records import DeadLetter, StoredMessage, short_reason

logger = logging.getLogger("platform.deadletter")

UNREADABLE = "application/x-platform-unreadable"
PROBLEM_HEADER = "x-platform-problem"
QUEUE_HEADER = "x-platform-queue"
# The worker's transports mark the unreadable envelopes they make with a token of this
# process: a producer cannot forge one (and with it the reason, or the raw capture).
MARK_HEADER = "x-platform-mark"
MARK = secrets.token_hex(16)
STORED_DEPTH = 100  # headers nested deeper are stored as text (see capture)
LABEL_LIMIT = 255  # a SQL store's task and task-id columns


def is_unreadable(message: Any) -> bool:
    headers = message.headers
    return message.content_type == UNREADABLE and isinstance(headers, dict) \
        and headers.get(MARK_HEADER) == MARK


def queue_of(app: Any, message: Any) -> str | None:
    """The queue a message was consumed from, as far as its delivery info tells."""
    info = message.delivery_info or {}
    exchange, key = info.get("exchange") or "", info.get("routing_key") or ""
    if not exchange:
        return str(key) or None  # the default exchange routes by queue name
    for queue in app.amqp.queues.values():
        if queue.exchange is not None and queue.exchange.name == exchange \
                and queue.routing_key == key:
            return str(queue.name)
    return str(key) or None


def plugin_of(app: Any, task_name: str | None) -> str | None:
    task = app.tasks.get(task_name) if task_name else None
    return getattr(task, "plugin", None) or None


def _headers(message: Any) -> dict[str, Any]:
    headers = message.headers
    return headers if isinstance(headers, dict) else {}


def capture(app: Any, message: Any, *, plain: bool = False) -> tuple[StoredMessage, str | None]:
    """The message as stored, and the queue it came from. ``plain``: the body alone, raw
    (for a message whose full capture the store refused)."""
    if plain or message.content_type == UNREADABLE:
        # also an unreadable envelope another worker process made (or one a producer
        # forged): the bytes are kept raw; only this process's own mark is trusted
        own = is_unreadable(message)
        headers = _headers(message)
        queue = (headers.get(QUEUE_HEADER) if own else None) or queue_of(app, message)
        body = message.body
        return _raw(body if isinstance(body, (bytes, str)) else b"", queue,
                    headers={} if own or plain else jsonable(headers)), queue
    queue = queue_of(app, message)
    if depth_over([message.headers, message.properties], STORED_DEPTH):
        # too deep for the store's JSON writer: keep the whole message as text, inert
        body = message.body
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        whole = {"headers": message.headers, "properties": message.properties, "body": text}
        return _raw(jsontext.dumps(whole), queue), queue
    return StoredMessage.from_kombu(message, queue), queue


def _raw(data: bytes | str, queue: str | None, headers: dict[str, Any] | None = None
         ) -> StoredMessage:
    """Bytes kept for inspection that cannot be published again."""
    return StoredMessage.from_body(data, queue=queue, exchange="", routing_key=queue or "",
                                   content_type=None, content_encoding=None, raw=True,
                                   headers=headers or {})


def label(value: Any) -> str | None:
    """A task name or id as the store keeps it: text as sent (NULs and lone surrogates,
    which no database takes, replaced; cut to the SQL column), or None for anything else
    (the reason says what was wrong; the value itself is in the stored message)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")
    return text[:LABEL_LIMIT]


def jsonable(value: Any) -> Any:
    """``value`` as the store's JSON writer takes it (no recursion)."""
    return json.loads(jsontext.dumps(value))


def unreadable_problem(message: Any) -> str | None:
    if not is_unreadable(message):
        return None
    return str(_headers(message).get(PROBLEM_HEADER) or "not a message")


def dead_letter(app: Any, message: Any, reason: str, *, deliveries: int = 1,
                plain: bool = False) -> DeadLetter:
    """Store ``message`` with ``reason``; raises if the store cannot be written."""
    headers = _headers(message)
    stored, queue = capture(app, message, plain=plain)
    task = None if stored.raw else label(headers.get("task"))
    entry = DeadLetter(
        task=task,
        task_id=None if stored.raw else label(headers.get("id")),
        plugin=plugin_of(app, task),
        queue=queue,
        reason=short_reason(reason),
        deliveries=deliveries,
        message=stored,
    )
    stores.for_app(app).dead_letters.add(entry)
    task_label = f", task {entry.task}[{entry.task_id or '-'}]" if entry.task else ""
    logger.error("Dead letter %s from queue %s%s: %s", entry.id, entry.queue or "-",
                 task_label, entry.reason)
    return entry


def try_dead_letter(app: Any, message: Any, reason: str, *, deliveries: int = 1
                    ) -> DeadLetter | None:
    """:func:`dead_letter`, logging (without the body) instead of raising on store errors."""
    try:
        return dead_letter(app, message, reason, deliveries=deliveries)
    except Exception as first:  # noqa: BLE001 - the message, or the store: try it plain
        try:
            # what the store refused may be the message itself (a value no database
            # takes): keep its body alone, raw, rather than never storing it
            entry = dead_letter(app, message, reason, deliveries=deliveries, plain=True)
        except Exception as exc:  # noqa: BLE001 - the store is down: report, leave it
            headers = _headers(message)
            # the platform's own store errors name the store and the fix, never a value;
            # any other error's text might quote the message: its type only
            said = f"{type(exc).__name__}: {exc}" if isinstance(exc, StoreError) \
                else type(exc).__name__
            logger.error(
                "Cannot write dead letter for task %s[%s] (%s); the message stays "
                "unacknowledged and is delivered again later: %s", label(headers.get("task"))
                or "-", label(headers.get("id")) or "-", short_reason(reason), said,
            )
            return None
        logger.warning("Dead letter %s keeps the body only: the store refused the whole "
                       "message (%s)", entry.id, type(first).__name__)
        return entry
