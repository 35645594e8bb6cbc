"""Span attribute names and the setters shared by producer, run and lost-run spans.

Task arguments and results are never recorded: they may hold secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

PLUGIN = "platform.plugin"
QUEUE = "platform.queue"
TASK = "platform.task.name"
TASK_ID = "platform.task.id"
ATTEMPT = "platform.task.attempt"
REQUEUED = "platform.task.requeued"
BEAT_ENTRY = "platform.beat.entry"
DESTINATION = "messaging.destination.name"
MESSAGE_ID = "messaging.message.id"
SYSTEM = "messaging.system"


def _get(carrier: Any, key: str) -> Any:
    if isinstance(carrier, Mapping):
        return carrier.get(key)
    return getattr(carrier, key, None)


def queue_of(delivery_info: Any, queues: Mapping[str, str]) -> str | None:
    if not isinstance(delivery_info, Mapping):
        return None
    key = delivery_info.get("routing_key")
    return queues.get(key, key) if key else None


def set_run(span: Span, task: Any, request: Any, queues: Mapping[str, str]) -> None:
    """``request`` is a task's Context (in the child) or the worker's request dict."""
    carrier = request.request_dict if hasattr(request, "request_dict") else request
    retries = _get(carrier, "retries") or 0
    span.set_attribute(SYSTEM, "celery")
    span.set_attribute(TASK, task.name)
    span.set_attribute(PLUGIN, getattr(task, "plugin", "") or "")
    span.set_attribute(ATTEMPT, int(retries) + 1)
    task_id = _get(carrier, "id")
    if task_id:
        span.set_attribute(TASK_ID, str(task_id))
        span.set_attribute(MESSAGE_ID, str(task_id))
    queue = queue_of(_get(carrier, "delivery_info"), queues)
    if queue:
        span.set_attribute(QUEUE, queue)
        span.set_attribute(DESTINATION, queue)


def set_publish(
    span: Span, name: str, task_id: str, task: Any, kwargs: Mapping[str, Any],
    queues: Mapping[str, str],
) -> None:
    span.set_attribute(SYSTEM, "celery")
    span.set_attribute(TASK, name)
    span.set_attribute(TASK_ID, task_id)
    span.set_attribute(MESSAGE_ID, task_id)
    span.set_attribute("celery.action", "apply_async")
    span.set_attribute("celery.task_name", name)
    if task is not None:
        span.set_attribute(PLUGIN, getattr(task, "plugin", "") or "")
    headers = kwargs.get("headers") or {}
    span.set_attribute(ATTEMPT, int(headers.get("retries") or 0) + 1)
    key = kwargs.get("routing_key")
    if key:
        queue = queues.get(key, key)
        span.set_attribute(QUEUE, queue)
        span.set_attribute(DESTINATION, queue)
