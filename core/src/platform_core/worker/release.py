"""Worker bootstep: publish held messages when they are (nearly) due.

Every worker's main process runs it on its timer, once a second. Each due message
is claimed atomically in the store, so with several workers exactly one of them
publishes it; it is removed from the store only after the publish succeeded. A
worker that dies between claiming and removing leaves the claim to expire
(:data:`LEASE`); the message is then published again by another worker.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import bootsteps

from platform_core import stores

logger = logging.getLogger("platform.delays")

INTERVAL = 1.0     # seconds between two looks at the store
LEAD = 1.0         # publish this long before the due time; the worker waits for the ETA
LEASE = 60.0       # seconds a claim is trusted before the message is published again
BATCH = 100


def release_due(app: Any, *, lead: float = LEAD, limit: int = BATCH) -> int:
    """Publish what is due within ``lead`` seconds; return how many were published."""
    store = stores.for_app(app).delays
    items = store.claim_due(time.time() + lead, limit, LEASE)
    if not items:
        return 0
    published = 0
    queues = app.amqp.queues
    with app.producer_or_acquire() as producer:
        for item in items:
            message = item.message
            declare = [queues[message.queue]] if message.queue in queues else []
            try:
                message.publish(producer, exchange=message.exchange,
                                routing_key=message.routing_key, declare=declare)
            except Exception as exc:  # noqa: BLE001 - keep it; the lease brings it back
                logger.error("Cannot publish delayed task %s[%s] to queue %s (tried again in "
                             "%.0f s): %s: %s", item.task, item.task_id, message.queue, LEASE,
                             type(exc).__name__, exc)
                continue
            store.done(item.id)
            published += 1
            logger.info("Released delayed task %s[%s] to queue %s", item.task, item.task_id,
                        message.queue)
    return published


class ReleaseDelayed(bootsteps.StartStopStep):  # type: ignore[misc]
    label = "Delayed tasks"
    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def start(self, worker: Any) -> None:
        app = worker.app
        limit = app.conf.get("platform_delay_horizon")
        lead = LEAD if limit is None else min(LEAD, limit / 2)

        def tick() -> None:
            try:
                while release_due(app, lead=lead) == BATCH:
                    pass
            except Exception as exc:  # noqa: BLE001 - the timer must keep running
                logger.error("Cannot release delayed tasks: %s: %s", type(exc).__name__, exc)

        self.tref = worker.timer.call_repeatedly(INTERVAL, tick, priority=5)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
