"""The worker's consumer (``worker_consumer``): messages Celery refuses become dead letters.

The receive path's gate (:mod:`platform_core.worker.receive.gate`) stops malformed messages
before Celery's code; these handlers cover what Celery itself refuses (an unknown
task, a message its strategy calls invalid).

Celery's consumer logs the whole body of a message it cannot use (and with it the
task's arguments) and then drops it. This one stores the message in the dead-letter
store, acknowledges it, logs the task name, id, queue and reason only, and keeps
consuming. Everything else is Celery's.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import signals
from celery.exceptions import NotRegistered
from celery.utils.collections import AttributeDict
from celery.worker.consumer import Consumer

from platform_core.deadletter.letters import label, try_dead_letter, unreadable_problem
from platform_core.worker.receive.gate import guard_requests, mark_handled
from platform_core.worker.receive.protocol import kind

logger = logging.getLogger("platform.deadletter")


class PlatformConsumer(Consumer):  # type: ignore[misc]
    def __init__(self, on_task_request: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(on_task_request, *args, **kwargs)
        # Strategies read this when they are built: requests applied later (after an
        # ETA or a rate limit) pass the receive path's last-resort guard too.
        self.on_task_request: Any = guard_requests(self.app, on_task_request)

    def _dead_letter(self, message: Any, reason: str) -> bool:
        """Store and acknowledge; on a store failure leave the message unacknowledged."""
        if try_dead_letter(self.app, message, reason) is None:
            return False
        mark_handled(message)
        message.ack_log_error(logger, self.connection_errors)
        return True

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._dead_letter(message, "not a task message: neither its headers nor its body "
                                   "name a task")
        signals.task_rejected.send(sender=self, message=message, exc=None)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        try:
            task_id, name = message.headers["id"], message.headers["task"]
            root_id = message.headers.get("root_id")
        except (KeyError, TypeError):  # protocol 1: the names are in the body
            payload = message.payload
            task_id, name, root_id = payload.get("id"), payload.get("task"), None
        self._dead_letter(message, f"unknown task `{label(name)}`: no plugin loaded by this "
                                   "worker provides it")
        try:
            self._report_unknown(message, task_id, name, root_id, exc)
        except Exception as error:  # noqa: BLE001 - the dead letter is stored: report, go on
            logger.warning("Task %s[%s] is dead-lettered, but recording its failure failed: "
                           "%s", label(name), label(task_id), type(error).__name__)

    def _report_unknown(self, message: Any, task_id: Any, name: Any, root_id: Any,
                        exc: Exception) -> None:
        if task_id:
            request = AttributeDict(
                name=name, chord=None, root_id=root_id, errbacks=None,
                correlation_id=message.properties.get("correlation_id"),
                reply_to=message.properties.get("reply_to"),
            )
            self.app.backend.mark_as_failure(task_id, NotRegistered(name), request=request)
        if self.event_dispatcher:
            self.event_dispatcher.send("task-failed", uuid=task_id,
                                       exception=f"NotRegistered({name!r})")
        signals.task_unknown.send(sender=self, message=message, exc=exc, name=name, id=task_id)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._dead_letter(message, f"invalid task message: {exc}")
        signals.task_rejected.send(sender=self, message=message, exc=exc)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        problem = unreadable_problem(message)
        if problem is None:
            # the exception's text may quote the body: name its type only
            shown = kind(message.content_type, text=True)
            problem = (f"cannot decode the body (content type {shown}): "
                       f"{type(exc).__module__}.{type(exc).__name__}")
        self._dead_letter(message, problem)
