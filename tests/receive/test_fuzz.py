"""No message shape stops a worker or is lost: mutated real envelopes against real workers.

Each example is a batch of mutants of a task message captured from the broker
itself, pushed straight onto the worker's queue (Redis list, RabbitMQ queue, the
embedded broker's folder), then a canary task. After each batch the worker is
alive, the canary succeeded, and every mutant ran or is in the dead-letter store.

``PLATFORM_FUZZ_CASES`` (mutants per broker, default 240) and ``PLATFORM_FUZZ_SEED``
(default fixed, so CI explores the same cases each run) tune it; ``nox -s fuzz`` runs
thousands with a fresh seed and prints the table.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.receive.corpus import CORPUS
from tests.receive.lab import Lab, Report
from tests.receive.mutants import Mutant, mutants
from tests.support import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.fuzz]

BATCH = 20
CASES = int(os.environ.get("PLATFORM_FUZZ_CASES", "240"))
SEED = int(os.environ.get("PLATFORM_FUZZ_SEED", "20261201"))


def test_every_shape_in_the_corpus_is_dead_lettered_or_run(lab: Lab) -> None:
    report = Report(lab.broker)
    for start in range(0, len(CORPUS), BATCH):
        report.merge(lab.run([mutant for _, mutant in CORPUS[start:start + BATCH]]))
    assert report.ok(), report.explain()
    by_mark = {o.mark: o for o in report.outcomes}
    assert len(by_mark) == len(CORPUS)
    assert report.count()["dead-lettered"] >= len(CORPUS) // 2, report.explain()


@seed(SEED)
@settings(max_examples=max(1, CASES // BATCH), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(batch=st.lists(mutants, min_size=BATCH, max_size=BATCH))
def test_no_mutant_stops_the_worker_or_is_lost(lab: Lab, batch: list) -> None:
    report = lab.run(batch)
    assert report.ok(), report.explain()


def test_replaying_the_dead_letters_never_harms_the_worker(lab: Lab) -> None:
    """What ``platform dlq replay`` does, entry by entry: refuse what the model refuses,
    publish the rest; a published one that fails again is a dead letter again."""
    from platform_core import stores
    from platform_core.cli.dlq import _refusal
    from platform_core.worker.receive.gate import limits_for

    unknown = Mutant(edits=[("header", "task", f"{lab.name}.nosuch")])  # valid in form
    lab.run([mutant for _, mutant in CORPUS[:BATCH]] + [unknown])
    letters = stores.for_app(lab.app).dead_letters
    entries = letters.list()
    assert entries
    queues, limits = lab.app.amqp.queues, limits_for(lab.app)
    replayed = []
    with lab.app.producer_or_acquire() as producer:
        for entry in entries:
            if _refusal(entry, queues, limits) is None:
                entry.message.publish(producer, exchange="", routing_key=str(entry.queue),
                                      declare=[queues[entry.queue]])
                letters.remove(entry.id)
                replayed.append(entry)
    assert any(e.task == f"{lab.name}.nosuch" for e in replayed), [e.reason for e in entries]
    assert lab._canary(), lab.worker.output()[-3000:] if lab.worker else "no worker"
    assert lab.alive()

    def unsettled() -> list[dict[str, object]]:
        """Replayed entries the worker has neither refused again nor run (yet: the canary
        can overtake a replayed message on the embedded broker, whose files are taken in
        the order of their names, not of their writing)."""
        back = {e.task_id for e in letters.list()}
        ran = lab.runs.read_text() if lab.runs.exists() else ""
        return [e.summary() for e in replayed if e.task_id not in back and e.task_id not in ran]

    try:
        wait_until(lambda: not unsettled(), 60, "every replayed entry refused again or run")
    except AssertionError:
        pytest.fail(f"replayed, then neither refused again nor run: {unsettled()}")
    assert lab.alive()


def test_a_broadcast_kombu_cannot_read_stops_no_worker(lab: Lab) -> None:
    """Remote control goes to every worker at once (a Redis PUBLISH, a RabbitMQ fanout):
    one that cannot be read is dropped with a warning, and every worker keeps serving."""
    exchange = lab.app.control.mailbox.exchange.name
    garbage = [b'{"__type__": "bytes", "__value__": 1}', b"\x00\xff not json", b"[1, 2]",
               b'{"body": {"__type__": "uuid", "__value__": "x"}}']
    if lab.broker == "redis":
        import redis

        client = redis.Redis.from_url(lab.url or "")
        db = client.connection_pool.connection_kwargs.get("db", 0)
        for channel in (f"/{db}.{exchange}", exchange):
            for item in garbage:
                client.publish(channel, item)
        client.close()
    else:
        from kombu import Exchange, Producer

        with lab.app.connection_for_write() as conn:
            producer = Producer(conn)
            for item in garbage:
                producer.publish(item, exchange=Exchange(exchange, type="fanout"),
                                 routing_key="", content_type="application/json",
                                 content_encoding="utf-8")
    assert lab._canary(), lab.worker.output()[-3000:] if lab.worker else "no worker"
    assert lab.alive()
    replies = lab.app.control.ping(timeout=5)
    assert replies, "the worker no longer answers remote control"
    if lab.broker == "redis":  # kombu's reader raised, and the guard dropped it
        assert lab.worker is not None
        assert "Dropped a broadcast message that cannot be read" in lab.worker.output()
