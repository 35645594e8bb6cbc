"""A SQL reliability store that refuses a write never shows what was being written.

A dead letter holds the task message, arguments included, and databases quote rows in
their errors (PostgreSQL's ``DETAIL: Failing row contains (...)``, SQLAlchemy's
``[parameters: ...]``). The store's errors name the store and the fix instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from platform_core.errors import StoreError
from platform_core.stores.base import Delayed
from platform_core.stores.records import DeadLetter, StoredMessage
from platform_core.stores.sql_store import SqlStore
from tests.integration.reliability_plugin import SOURCE
from tests.support import PlatformEnv, wait_until

MARKER = "ARG-hunter2-Zq9"
COLUMNS = ("id varchar(64) primary key, task varchar(255), plugin varchar(255), "
           "failed_at float not null, entry text not null")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'letters.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    made = SqlStore(store_url)
    yield made
    made.close()


class Kept(logging.Handler):
    """Every record any logger emits, SQLAlchemy's statement log included."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def kept() -> Iterator[Kept]:
    handler = Kept()
    root, engine = logging.getLogger(), logging.getLogger("sqlalchemy.engine")
    levels = root.level, engine.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    engine.setLevel(logging.INFO)  # statements and their parameters, as echo=True shows
    yield handler
    root.removeHandler(handler)
    root.setLevel(levels[0])
    engine.setLevel(levels[1])


def letter(task: str = "vault.open") -> DeadLetter:
    body = f'[["{MARKER}"], {{"token": "{MARKER}"}}, {{}}]'
    message = StoredMessage.from_body(body, queue="q", exchange="", routing_key="q",
                                      content_type="application/json",
                                      content_encoding="utf-8")
    return DeadLetter(task=task, task_id=str(uuid.uuid4()), plugin="vault", queue="q",
                      reason="unknown task", deliveries=1, message=message)


def run_sql(store: SqlStore, *statements: str) -> None:
    with store.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def dropped(store: SqlStore) -> None:
    run_sql(store, "DROP TABLE platform_dead_letters")


def constrained(store: SqlStore) -> None:
    """A check constraint added by hand; PostgreSQL's error quotes the failing row."""
    run_sql(store, "DROP TABLE platform_dead_letters",
            f"CREATE TABLE platform_dead_letters ({COLUMNS}, CHECK (entry NOT LIKE '%hunter2%'))")


def extra_column(store: SqlStore) -> None:
    """A NOT NULL column added by hand; the insert leaves it empty."""
    run_sql(store, "DROP TABLE platform_dead_letters",
            f"CREATE TABLE platform_dead_letters ({COLUMNS}, owner text not null)")


BREAKS: dict[str, Callable[[SqlStore], None]] = {
    "dropped table": dropped, "check constraint": constrained, "extra column": extra_column,
}


def assert_safe(error: StoreError, store: SqlStore, action: str) -> None:
    message = str(error)
    assert MARKER not in message and MARKER not in repr(error)
    assert "[parameters" not in message and "[SQL" not in message
    assert message.startswith(f"the reliability store at {store.describe()} cannot {action} (")
    assert "or point PLATFORM_DEAD_LETTER_URL at another database" in message
    # raised outside the except block: the database's own error is not even chained
    assert error.__cause__ is None and error.__context__ is None


@pytest.mark.parametrize("broken", list(BREAKS))
def test_a_refused_write_names_the_store_and_the_fix_not_the_arguments(
        store: SqlStore, kept: Kept, broken: str) -> None:
    BREAKS[broken](store)
    with pytest.raises(StoreError) as raised:
        store.dead_letters.add(letter())
    assert_safe(raised.value, store, "add a dead letter to table platform_dead_letters")
    assert not any(MARKER in line for line in kept.lines)
    assert any("parameters hidden" in line for line in kept.lines)  # the log was on


def test_a_value_too_long_for_its_column(postgres_url: str, kept: Kept) -> None:
    store = SqlStore(postgres_url)
    try:
        with pytest.raises(StoreError) as raised:
            store.dead_letters.add(letter(task=f"{MARKER}." + "x" * 300))
        assert_safe(raised.value, store, "add a dead letter to table platform_dead_letters")
        assert "StringDataRightTruncation, 22001" in str(raised.value)
        assert not any(MARKER in line for line in kept.lines)
    finally:
        store.close()


def test_every_operation_of_every_table_fails_the_same_safe_way(store: SqlStore) -> None:
    run_sql(store, "DROP TABLE platform_dead_letters", "DROP TABLE platform_deliveries",
            "DROP TABLE platform_delayed")
    held = Delayed(id="d1", due=0.0, task="vault.open", task_id="t1",
                   message=letter().message)
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("add a dead letter", lambda: store.dead_letters.add(letter())),
        ("list the dead letters", store.dead_letters.list),
        ("read a dead letter", lambda: store.dead_letters.get("x")),
        ("remove a dead letter", lambda: store.dead_letters.remove("x")),
        ("clear table platform_dead_letters", store.dead_letters.clear),
        ("count a delivery", lambda: store.deliveries.increment(MARKER, 60)),
        ("read a delivery count", lambda: store.deliveries.get(MARKER)),
        ("forget a delivery count", lambda: store.deliveries.forget(MARKER)),
        ("hold a delayed task", lambda: store.delays.add(held)),
        ("claim due tasks", lambda: store.delays.claim_due(1.0, 10, 30.0)),
        ("release a held task", lambda: store.delays.done(MARKER)),
        ("list the held tasks", store.delays.pending),
    ]
    for action, call in calls:
        with pytest.raises(StoreError) as raised:
            call()
        message = str(raised.value)
        assert f"cannot {action}" in message, message
        assert MARKER not in message
        assert raised.value.__context__ is None


def test_a_worker_that_cannot_store_a_dead_letter_logs_no_arguments(
        platform_env: PlatformEnv, redis_url: str, store_url: str) -> None:
    """The real path: a worker gets a message for an unknown task and the store refuses
    it; its log says which store failed and how to fix it, without the message."""
    store = SqlStore(store_url)
    constrained(store)
    store.close()
    platform_env.plugins.add("rel", SOURCE)
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_DEAD_LETTER_URL=store_url)
    worker = platform_env.worker("--plugins", "rel")
    host = platform_env.host()
    host.app.send_task("rel.nosuch", args=[MARKER], kwargs={"token": MARKER}, queue="rel")
    worker.wait_for_log("Cannot write dead letter for task rel.nosuch")
    wait_until(lambda: "PLATFORM_DEAD_LETTER_URL" in worker.output(), 10, "the whole line")
    output = worker.output()
    line = next(x for x in output.splitlines() if "Cannot write dead letter" in x)
    shown = SqlStore(store_url)
    try:
        assert f"StoreError: the reliability store at {shown.describe()} cannot add a dead " \
            "letter to table platform_dead_letters (IntegrityError" in line
    finally:
        shown.close()
    assert MARKER not in output, output[-3000:]
    assert "[parameters" not in output and "Failing row" not in output
    assert worker.alive()
