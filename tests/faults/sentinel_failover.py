"""Redis Sentinel failover mid-run: the master is killed while a producer sends.

The scenario moves its lab onto a master, a replica and three sentinels of its own
(:class:`~tests.faults.sentinel_cluster.SentinelCluster`), runs a worker and a beat,
streams tasks from a producer, SIGKILLs the master once the stream is flowing, waits
for the sentinels to promote the replica, brings the old master back (the sentinels
make it a replica) and keeps sending. Worker, beat and producer are never restarted.

Redis replicates asynchronously, so a message the master acknowledged but had not
yet streamed to the replica is gone after the failover (*lost*), and a message the
worker had taken whose removal had not reached the replica comes back (*ran twice*).
``redis_wait_replicas`` (``WAIT`` after each publish) closes the first gap.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.faults.harness import VISIBILITY_TIMEOUT, Lab
from tests.faults.scenarios import Outcome, _wait_quietly
from tests.faults.sentinel_cluster import MASTER_NAME, SentinelCluster

BEFORE = 150  # tasks completed before the master is killed
AFTER = 150  # tasks acknowledged after the failover before the stream stops
PACE = 0.003  # seconds between two sends: a steady stream, not a burst


@dataclass
class FailoverOutcome(Outcome):
    lost: int = 0  # the producer was told "sent", and it never ran
    twice: int = 0  # ran more than once
    raised: int = 0  # the producer was told the send failed
    worker_alive: bool = False  # the same worker process, never restarted
    beat_ticking: bool = False  # the same beat sent periodic tasks after the failover


@dataclass
class Stream:
    """A producer thread sending ``faults.record`` tasks until stopped."""

    send: Any
    sent: list[str] = field(default_factory=list)  # the producer was told: sent
    refused: list[tuple[str, str]] = field(default_factory=list)  # the send raised
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        prefix = uuid.uuid4().hex[:6]
        for n in range(10**9):
            if self.stop.is_set():
                return
            key = f"sf-{prefix}-{n}"
            try:
                self.send(key)
            except Exception as exc:
                self.refused.append((key, type(exc).__name__))
            else:
                self.sent.append(key)
            time.sleep(PACE)

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)


def _producer(lab: Lab, url: str) -> Any:
    if lab.kind == "platform":
        return lab.producer
    from celery import Celery

    app = Celery("producer", broker=url, backend=url, set_as_current=False)
    app.conf.broker_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT,
                                         "master_name": MASTER_NAME}
    app.conf.result_backend_transport_options = {"master_name": MASTER_NAME}
    lab._producer = app  # what lab.serving() sends with
    return app


def sentinel_failover(lab: Lab, wait_replicas: int = 0) -> FailoverOutcome:
    """Kill the Sentinel-managed master mid-stream; count what was lost or ran twice."""
    cluster = SentinelCluster(lab.root / "sentinel")
    cluster.start()
    try:
        return _run(lab, cluster, wait_replicas)
    finally:
        lab.kill_all()
        lab.release_results()
        cluster.stop()



def _run(lab: Lab, cluster: SentinelCluster, wait_replicas: int) -> FailoverOutcome:
    url = cluster.url
    lab.redis_url = url
    lab.env.vars.update(FAULTS_BROKER_URL=url, FAULTS_MASTER_NAME=MASTER_NAME)
    if lab.kind == "platform":
        lab.env.set(PLATFORM_BROKER_URL=url, PLATFORM_REDIS_MASTER_NAME=MASTER_NAME,
                    PLATFORM_REDIS_WAIT_REPLICAS=str(wait_replicas))
    worker = lab.worker()
    beat = lab.beat()
    producer = _producer(lab, url)
    ledger = lab.ledger
    wait_first_tick = _wait_quietly(lambda: ledger.llen("ticks") >= 1, 30)
    stream = Stream(lambda key: producer.send_task("faults.record", args=[key]))
    stream.start()

    def done(keys: list[str]) -> int:
        return sum(1 for k in keys if lab.count(f"done:{k}"))

    _wait_quietly(lambda: done(list(stream.sent)) >= BEFORE, 60)
    old, _ = cluster.kill_master()
    killed_wall = time.time()
    failover = cluster.wait_for_failover(old)
    sent_at_failover = len(stream.sent)
    cluster.restart_as_replica(old)
    _wait_quietly(lambda: len(stream.sent) >= sent_at_failover + AFTER, 60)
    stream.finish()
    resumed = _wait_quietly(lambda: lab.count(f"done:{stream.sent[-1]}") >= 1, 60)
    _wait_quietly(lambda: _drained(cluster, lab.queue), 60)
    # A message restored from the unacknowledged set comes back after the visibility
    # timeout; give it that long to show up as a second run.
    _settle_until_quiet(lambda: sum(lab.count(f"done:{k}") for k in stream.sent),
                        VISIBILITY_TIMEOUT + 3)
    runs = {k: lab.count(f"done:{k}") for k in stream.sent}
    lost = [k for k, n in runs.items() if n == 0]
    twice = [k for k, n in runs.items() if n > 1]
    refused_ran = sum(1 for k, _ in stream.refused if lab.count(f"done:{k}"))
    ticks = ledger.lrange("ticks", 0, -1)
    ticks_after = sum(1 for t in ticks if float(t) > killed_wall + failover)
    completed = sum(runs.values())
    notes = [
        f"{len(stream.sent)} sent, {len(lost)} lost, {len(twice)} ran twice",
        f"{len(stream.refused)} sends raised ({_kinds(stream.refused)}; {refused_ran} of them ran)"
        if stream.refused else "no send raised",
        f"failover {failover:.1f}s",
        f"worker {'kept running' if worker.alive() else 'DIED'}, "
        f"beat {'ticking after' if beat.alive() and ticks_after else 'NOT ticking after'}",
        "" if wait_first_tick and resumed else "stream stalled",
    ]
    return FailoverOutcome(completed, len(stream.sent), serving=lab.serving(60), notes=notes,
                           lost=len(lost), twice=len(twice), raised=len(stream.refused),
                           worker_alive=worker.alive(),
                           beat_ticking=beat.alive() and ticks_after > 0)


def _kinds(refused: list[tuple[str, str]]) -> str:
    names = sorted({kind for _, kind in refused})
    return ", ".join(names)


def _drained(cluster: SentinelCluster, queue: str) -> bool:
    port = cluster.master_port()
    if port is None:
        return False
    client = cluster.client(port)
    try:
        return int(client.llen(queue)) == 0 and int(client.hlen("unacked")) == 0
    except Exception:
        return False


def _settle_until_quiet(total: Any, quiet: float) -> None:
    """Wait until ``total()`` has not changed for ``quiet`` seconds."""
    last, since = total(), time.monotonic()
    while time.monotonic() - since < quiet:
        time.sleep(0.5)
        now = total()
        if now != last:
            last, since = now, time.monotonic()


def sentinel_failover_waiting(lab: Lab) -> FailoverOutcome:
    """The same, with producers waiting for one replica (``redis_wait_replicas = 1``)."""
    return sentinel_failover(lab, wait_replicas=1)
