"""Each queue's backlog: the work not yet done, one number an autoscaler can trust.

    backlog = ready + reserved + running + held_due_soon

- *ready*: messages waiting in the broker (on Redis every priority sub-queue too);
- *reserved*: messages a worker took and has not started (waiting for their ETA or a
  pool slot). Redis lists every unacknowledged message (kombu's ``unacked`` hash, each
  entry with its exchange and routing key); those are counted, less the ones the
  workers report running (a running acks-late task is still unacknowledged), so each
  message counts once. On other brokers the workers' reports give it;
- *running*: tasks the workers report running;
- *held_due_soon* / *held_later*: long delays the platform holds outside the broker
  (:mod:`platform_core.app.hold`), due within ``due_soon`` seconds or later. Only the
  first are in the backlog: a worker must be running to release them when due.

The workers report what they hold every second (:mod:`platform_core.worker.load_report`),
so a reading costs a few broker and store reads, never a broadcast to the workers.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from platform_core import stores
from platform_core.broker.queue_names import QueueNames
from platform_core.broker.view import BrokerView
from platform_core.errors import BrokerUnavailable
from platform_core.redaction import redact
from platform_core.stores.worker_loads import reports

PARTS = ("ready", "reserved", "running", "held_due_soon", "held_later")


@dataclass(frozen=True)
class QueueBacklog:
    ready: int = 0
    reserved: int = 0
    running: int = 0
    held_due_soon: int = 0
    held_later: int = 0

    @property
    def backlog(self) -> int:
        """The scaling number: everything but the delays held for later."""
        return self.ready + self.reserved + self.running + self.held_due_soon

    def as_dict(self) -> dict[str, int]:
        parts = {part: int(getattr(self, part)) for part in PARTS}
        return {**parts, "backlog": self.backlog}


@dataclass(frozen=True)
class Backlog:
    queues: dict[str, QueueBacklog]
    broker: str  # kombu's driver type: redis, amqp, filesystem
    due_soon: float
    workers: int  # workers whose load report is live
    measured_at: float

    def as_dict(self) -> dict[str, Any]:
        return {"queues": {name: q.as_dict() for name, q in self.queues.items()},
                "backlog": sum(q.backlog for q in self.queues.values()),
                "broker": self.broker, "due_soon_seconds": self.due_soon,
                "workers_reporting": self.workers, "measured_at": self.measured_at}


def _broker_reads(app: Any, wanted: list[str]) -> tuple[str, dict[str, int],
                                                         list[tuple[str, str, str]] | None]:
    with app.connection_for_read() as conn:
        try:
            conn.ensure_connection(max_retries=1, timeout=3)
        except Exception as exc:  # noqa: BLE001 - kombu raises many kinds here
            raise BrokerUnavailable(
                f"cannot read the backlog: cannot reach the broker at "
                f"{redact(app.conf.broker_url)} ({type(exc).__name__}: {exc}); start it, or "
                "point PLATFORM_BROKER_URL at a running one") from None
        view = BrokerView(conn)
        try:
            return view.kind, {q: view.depth(q) for q in wanted}, view.unacked()
        finally:
            view.close()


def measure(app: Any, queues: Iterable[str], due_soon: float) -> Backlog:
    """The backlog of ``queues`` now."""
    wanted = list(dict.fromkeys(queues))
    names = QueueNames(app.amqp.queues.values())
    kind, ready, unacked = _broker_reads(app, wanted)
    store = stores.for_app(app)
    loads = reports(store).live()
    held = store.delays.pending()
    now = time.time()

    running: Counter[str] = Counter()
    reported: Counter[str] = Counter()
    running_tags: set[str] = set()
    for load in loads:
        running_tags |= load.running_tags
        for queue, counts in load.queues.items():
            running[queue] += counts.running
            reported[queue] += counts.reserved
    if unacked is None:
        reserved = reported
    else:  # Redis: the unacknowledged messages, less those running
        reserved = Counter(names.of(exchange, routing_key) or routing_key
                           for tag, exchange, routing_key in unacked if tag not in running_tags)

    soon: Counter[str] = Counter()
    later: Counter[str] = Counter()
    for item in held:
        message = item.message
        target = message.queue or names.of(message.exchange, message.routing_key)
        if target is not None:
            (soon if item.due <= now + due_soon else later)[target] += 1

    return Backlog(
        queues={q: QueueBacklog(ready=ready[q], reserved=reserved[q], running=running[q],
                                held_due_soon=soon[q], held_later=later[q]) for q in wanted},
        broker=kind, due_soon=due_soon, workers=len(loads), measured_at=now)
