"""The reliability stores on SQLite and on a real Redis: dead letters, counts, held messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from platform_core.settings import Settings
from platform_core.stores import locate
from platform_core.stores.base import Delayed, Store
from platform_core.stores.records import DeadLetter, StoredMessage
from platform_core.stores.redis_store import RedisStore
from platform_core.stores.sql_store import SqlStore

CONTRACT = {"id", "task", "task_id", "plugin", "queue", "reason", "deliveries", "failed_at"}


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store
    if request.param == "sqlite":
        made = SqlStore(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    else:
        made = RedisStore(request.getfixturevalue("redis_url"))
    yield made
    made.close()


def message(body: bytes | str = '[["a"], {}, {}]', **fields: object) -> StoredMessage:
    values: dict[str, object] = {
        "queue": "q", "exchange": "", "routing_key": "q", "content_type": "application/json",
        "content_encoding": "utf-8", "headers": {"task": "t.x", "id": "1"},
        "properties": {"priority": 0},
    }
    values.update(fields)
    return StoredMessage.from_body(body, **values)  # type: ignore[arg-type]


def letter(task: str, minutes_ago: int, **fields: object) -> DeadLetter:
    return DeadLetter(task=task, task_id=f"id-{task}", plugin="p", queue="q", reason="why",
                      deliveries=2, message=message(),
                      failed_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
                      **fields)  # type: ignore[arg-type]


def test_dead_letters_round_trip_oldest_first(store: Store) -> None:
    newer, older = letter("t.new", 1), letter("t.old", 5)
    store.dead_letters.add(newer)
    store.dead_letters.add(older)
    assert [e.task for e in store.dead_letters.list()] == ["t.old", "t.new"]
    assert store.dead_letters.get(newer.id) == newer
    assert store.dead_letters.get("nope") is None
    assert set(newer.summary()) == CONTRACT
    assert newer.summary()["failed_at"].endswith("+00:00")
    assert store.dead_letters.remove(newer.id)
    assert not store.dead_letters.remove(newer.id)
    assert [e.id for e in store.dead_letters.list()] == [older.id]
    assert store.dead_letters.clear() == 1
    assert store.dead_letters.list() == []


def test_dead_letters_keep_undecodable_bytes_exactly(store: Store) -> None:
    raw = b"\x00\xff\xfe not utf-8 \x80"
    entry = DeadLetter(task=None, task_id=None, plugin=None, queue="q", reason="garbage",
                       deliveries=1, message=message(raw, raw=True))
    store.dead_letters.add(entry)
    stored = store.dead_letters.get(entry.id)
    assert stored is not None
    assert stored.message.binary and stored.message.raw
    assert stored.message.body_bytes == raw


def test_delivery_counts(store: Store) -> None:
    counts = store.deliveries
    assert counts.get("task:0") == 0
    assert [counts.increment("task:0", 60) for _ in range(3)] == [1, 2, 3]
    assert counts.get("task:0") == 3
    assert counts.get("task:1") == 0
    counts.forget("task:0")
    assert counts.get("task:0") == 0
    assert counts.increment("task:0", 60) == 1


def test_an_expired_delivery_count_starts_again(store: Store) -> None:
    counts = store.deliveries
    counts.increment("k:0", 60)
    counts.increment("k:0", -1)  # expires at once
    assert counts.get("k:0") == 0
    assert counts.increment("k:0", 60) == 1


def test_delivery_counts_from_many_threads_add_up(store: Store) -> None:
    def bump() -> None:
        for _ in range(25):
            store.deliveries.increment("busy:0", 60)

    threads = [threading.Thread(target=bump) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert store.deliveries.get("busy:0") == 150


def held(item_id: str, due: float) -> Delayed:
    return Delayed(id=item_id, due=due, task="t.x", task_id=f"task-{item_id}", message=message())


def test_held_messages_are_claimed_when_due_and_once(store: Store) -> None:
    now = time.time()
    store.delays.add(held("late", now + 3600))
    store.delays.add(held("due", now - 1))
    store.delays.add(held("soon", now + 0.5))
    assert [i.id for i in store.delays.pending()] == ["due", "soon", "late"]
    claimed = store.delays.claim_due(now + 1, 10, lease=60)
    assert sorted(i.id for i in claimed) == ["due", "soon"]
    assert claimed[0].message == message()
    assert store.delays.claim_due(now + 1, 10, lease=60) == []
    store.delays.done("due")
    assert sorted(i.id for i in store.delays.pending()) == ["late", "soon"]


def test_a_claim_whose_lease_ran_out_is_due_again(store: Store) -> None:
    store.delays.add(held("x", time.time() - 1))
    assert [i.id for i in store.delays.claim_due(time.time(), 10, lease=60)] == ["x"]
    assert store.delays.claim_due(time.time(), 10, lease=60) == []
    time.sleep(0.05)
    assert [i.id for i in store.delays.claim_due(time.time(), 10, lease=0.01)] == ["x"]
    store.delays.done("x")
    assert store.delays.claim_due(time.time(), 10, lease=0) == []
    assert store.delays.pending() == []


def test_concurrent_claims_share_out_every_item_once(store: Store) -> None:
    past = time.time() - 1
    for n in range(60):
        store.delays.add(held(f"i{n:02}", past))
    taken: list[str] = []
    lock = threading.Lock()

    def claim() -> None:
        while batch := store.delays.claim_due(time.time(), 5, lease=60):
            with lock:
                taken.extend(i.id for i in batch)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(taken) == sorted(f"i{n:02}" for n in range(60))


def test_location_follows_the_broker(tmp_path: Path) -> None:
    home = tmp_path.resolve()
    sqlite = f"sqlite:///{home / 'reliability.sqlite3'}"
    assert locate(Settings(home=home)).url == sqlite
    assert locate(Settings(home=home, broker_url="redis://h:6379/2;redis://h2/2")).url == \
        "redis://h:6379/2"
    amqp = "amqp://guest@rabbit//"
    assert locate(Settings(home=home, broker_url=amqp, result_backend="redis://r/1")).url == \
        "redis://r/1"
    assert locate(Settings(home=home, broker_url=amqp,
                           result_backend="db+postgresql://u@db/x")).url == "postgresql://u@db/x"
    local = locate(Settings(home=home, broker_url=amqp))
    assert local.url == sqlite and local.note and "PLATFORM_DEAD_LETTER_URL" in local.note
    assert locate(Settings(home=home, broker_url="redis://h/0",
                           dead_letter_url="sqlite:////x.db")).url == "sqlite:////x.db"
    assert locate(Settings(home=home)).note is None
