"""Task strategy (``Task.Strategy``): stop redelivering a message whose workers keep dying.

When a whole worker dies (SIGKILL, out of memory, a lost machine) while running an
acks-late task, nobody is left to count the loss: the broker just delivers the
message again (Redis after the visibility timeout, RabbitMQ when the connection
drops). So each redelivery is counted when it arrives; past ``max_redeliveries``
the message goes to the dead-letter store instead of to the pool.

A task with a global rate limit then passes that limit (:mod:`.rate_limit`).
"""

from __future__ import annotations

import logging
from typing import Any

from billiard.exceptions import WorkerLostError
from celery.worker.strategy import default

from platform_core import stores
from platform_core.deadletter import redelivery
from platform_core.deadletter.letters import try_dead_letter
from platform_core.worker import rate_limit

logger = logging.getLogger("platform.deadletter")


def bounded(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Any:
    handle = rate_limit.wrap(default(task, app, consumer, **kwargs), task, app, consumer)
    if not (task.acks_late and task.reject_on_worker_lost):
        return handle  # acknowledged before it runs: a lost worker loses it, as in Celery
    most = redelivery.limit(app) + 1

    def task_message_handler(message: Any, body: Any, ack: Any, reject: Any, callbacks: Any,
                             **options: Any) -> Any:
        if redelivery.is_redelivered(message):
            key = redelivery.key(message.headers)
            if key is not None and _over_limit(app, message, key, most, ack, consumer):
                return None
        return handle(message, body, ack, reject, callbacks, **options)

    return task_message_handler


def _over_limit(app: Any, message: Any, key: str, most: int, ack: Any, consumer: Any) -> bool:
    counter = stores.for_app(app).deliveries
    try:
        deliveries = 1 + counter.increment(key, redelivery.COUNT_TTL)
    except Exception as exc:  # noqa: BLE001 - cannot count: run it, as without a limit
        logger.warning("Cannot count the deliveries of task %s: %s: %s",
                       key, type(exc).__name__, exc)
        return False
    if deliveries <= most:
        return False
    reason = (f"worker lost: delivered {deliveries} times and never finished (the worker "
              "running it stopped or was killed each time)")
    if try_dead_letter(app, message, reason, deliveries=deliveries) is None:
        return False
    ack(logger, consumer.connection_errors)
    headers = message.headers
    task = app.tasks.get(headers.get("task"))
    try:
        counter.forget(key)
        if task is not None and not task.ignore_result:
            task.backend.mark_as_failure(headers["id"], WorkerLostError(reason))
    except Exception as exc:  # noqa: BLE001 - the dead letter is stored; report and go on
        logger.warning("Task %s[%s] is dead-lettered, but recording it failed: %s: %s",
                       headers.get("task"), headers.get("id"), type(exc).__name__, exc)
    return True
