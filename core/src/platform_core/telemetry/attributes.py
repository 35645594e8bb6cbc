"""Span attribute names and the setters shared by producer, run and lost-run spans.

Task arguments and results are never recorded: they may hold secrets.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from platform_core.telemetry.headers import eta_timestamp, sent_at

PLUGIN = "platform.plugin"
QUEUE = "platform.queue"
TASK = "platform.task.name"
TASK_ID = "platform.task.id"
ATTEMPT = "platform.task.attempt"
REQUEUED = "platform.task.requeued"
BEAT_ENTRY = "platform.beat.entry"
QUEUE_WAIT = "platform.task.queue_wait_ms"
DEAD_LETTERED = "platform.task.dead_lettered"
LINK_KIND = "platform.link"
ERROR_TYPE = "error.type"
DESTINATION = "messaging.destination.name"
MESSAGE_ID = "messaging.message.id"
SYSTEM = "messaging.system"


def _get(carrier: Any, key: str) -> Any:
    if isinstance(carrier, Mapping):
        return carrier.get(key)
    return getattr(carrier, key, None)


def carried(carrier: Any, key: str) -> Any:
    """A header of a request dict, or of a task's request context."""
    return _get(carrier, key)


def queue_of(delivery_info: Any, queues: Mapping[str, str]) -> str | None:
    if not isinstance(delivery_info, Mapping):
        return None
    key = delivery_info.get("routing_key")
    return queues.get(key, key) if key else None


def run(task: Any, request: Any, queues: Mapping[str, str]) -> dict[str, Any]:
    """Attributes of a run span; ``request`` is a task's Context or a request dict."""
    task_id = str(_get(request, "id") or "")
    found: dict[str, Any] = {
        SYSTEM: "celery",
        TASK: task.name,
        TASK_ID: task_id,
        MESSAGE_ID: task_id,
        PLUGIN: getattr(task, "plugin", "") or "",
        ATTEMPT: int(_get(request, "retries") or 0) + 1,
        "celery.action": "run",
        "celery.task_name": task.name,
        "celery.hostname": str(_get(request, "hostname") or ""),
    }
    queue = queue_of(_get(request, "delivery_info"), queues)
    if queue:
        found[QUEUE] = found[DESTINATION] = queue
    wait = queue_wait_ms(request)
    if wait is not None:
        found[QUEUE_WAIT] = wait
    return found


def queue_wait_ms(request: Any) -> float | None:
    """How long the message waited for a worker: from when it was sent, or from its ETA
    if it had one, to now (the run starting); None if the producer stamped no time."""
    sent = sent_at(request)
    if sent is None:
        return None
    ready = max(sent, eta_timestamp(_get(request, "eta")) or sent)
    return round(max(0.0, time.time() - ready) * 1000, 3)


def publish(
    name: str, task_id: str, task: Any, kwargs: Mapping[str, Any], queues: Mapping[str, str],
) -> dict[str, Any]:
    headers = kwargs.get("headers") or {}
    found: dict[str, Any] = {
        SYSTEM: "celery",
        TASK: name,
        TASK_ID: task_id,
        MESSAGE_ID: task_id,
        "celery.action": "apply_async",
        "celery.task_name": name,
        ATTEMPT: int(headers.get("retries") or 0) + 1,
    }
    if task is not None:
        found[PLUGIN] = getattr(task, "plugin", "") or ""
    key = kwargs.get("routing_key")
    if key:
        found[QUEUE] = found[DESTINATION] = queues.get(key, key)
    return found


def bulk_publish(name: str, task: Any, count: int) -> dict[str, Any]:
    """Attributes of the one producer span of a bulk send of ``count`` messages."""
    found: dict[str, Any] = {
        SYSTEM: "celery",
        TASK: name,
        "celery.action": "apply_many",
        "celery.task_name": name,
        "messaging.batch.message_count": count,
        "messaging.operation.type": "send",
    }
    if task is not None:
        found[PLUGIN] = getattr(task, "plugin", "") or ""
    return found
