"""Worker bootstep: report what this worker holds, per queue, for the backlog.

Every :data:`INTERVAL` seconds the worker's main process counts the requests Celery's
worker state lists (received and waiting for their ETA or a pool slot: *reserved*;
handed to the pool: *running*) and writes them to the reliability store as one report
that expires after :data:`TTL` seconds (:mod:`platform_core.stores.worker_loads`). Reading
the backlog then costs one store read, never a broadcast to the workers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import bootsteps

from platform_core import stores
from platform_core.broker.queue_names import QueueNames
from platform_core.stores.worker_loads import QueueLoad, WorkerLoad, reports

logger = logging.getLogger("platform.backlog")

INTERVAL = 1.0  # seconds between two reports
TTL = 10.0      # a report no longer renewed counts this long


def _queue(request: Any, names: QueueNames) -> str:
    info = request.delivery_info or {}
    exchange, routing_key = info.get("exchange"), info.get("routing_key")
    return names.of(exchange, routing_key) or str(routing_key or exchange or "?")


def _snapshot(requests: Any) -> list[Any]:
    for _ in range(5):  # a timer thread (non-event-loop pools) may change the set meanwhile
        try:
            return list(requests)
        except RuntimeError:
            continue
    return []


def current_load(worker: str, names: QueueNames) -> WorkerLoad:
    """This process's requests by queue, from Celery's worker state."""
    from celery.worker import state

    active = set(_snapshot(state.active_requests))
    waiting = set(_snapshot(state.reserved_requests)) | set(_snapshot(state.scheduled_requests))
    counts: dict[str, list[int]] = {}
    for request in waiting - active:
        counts.setdefault(_queue(request, names), [0, 0])[0] += 1
    tags = set()
    for request in active:
        counts.setdefault(_queue(request, names), [0, 0])[1] += 1
        tag = getattr(request.message, "delivery_tag", None)
        if tag is not None:
            tags.add(str(tag))
    return WorkerLoad(worker=worker, at=time.time(),
                      queues={q: QueueLoad(r, n) for q, (r, n) in counts.items()},
                      running_tags=frozenset(tags))


class ReportLoad(bootsteps.StartStopStep):  # type: ignore[misc]
    label = "Load report"
    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None
        self.failing = False

    def start(self, worker: Any) -> None:
        app = worker.app
        names = QueueNames(app.amqp.queues.values())
        hostname = str(worker.hostname)

        def tick() -> None:
            try:
                reports(stores.for_app(app)).put(current_load(hostname, names), TTL)
            except Exception as exc:  # noqa: BLE001 - the timer must keep running
                if not self.failing:
                    logger.warning("Cannot report this worker's load for the backlog (tried "
                                   "again every %.0f s): %s: %s", INTERVAL,
                                   type(exc).__name__, exc)
                self.failing = True
            else:
                self.failing = False

        tick()
        self.tref = worker.timer.call_repeatedly(INTERVAL, tick, priority=5)

    def stop(self, worker: Any) -> None:
        # The last report stays until it expires: a warm shutdown still runs its tasks.
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
