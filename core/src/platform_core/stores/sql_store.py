"""Reliability stores in any SQLAlchemy database (SQLite under PLATFORM_HOME by default)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    create_engine,
    delete,
    event,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from ..deadletter.entry import DeadLetter
from .base import Delayed, dump_entry, load_entry

metadata = MetaData()

DEAD_LETTERS = Table(
    "platform_dead_letters", metadata,
    Column("id", String(64), primary_key=True),
    Column("task", String(255)),
    Column("plugin", String(255)),
    Column("failed_at", Float, nullable=False, index=True),
    Column("entry", Text, nullable=False),
)
DELIVERIES = Table(
    "platform_deliveries", metadata,
    Column("key", String(255), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)
DELAYED = Table(
    "platform_delayed", metadata,
    Column("id", String(64), primary_key=True),
    Column("due", Float, nullable=False, index=True),
    Column("claimed_at", Float),
    Column("item", Text, nullable=False),
)

INSERT_RACES = 5


class SqlDeadLetters:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, entry: DeadLetter) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(DEAD_LETTERS).values(
                id=entry.id, task=entry.task, plugin=entry.plugin,
                failed_at=entry.failed_at.timestamp(), entry=dump_entry(entry),
            ))

    def list(self) -> list[DeadLetter]:
        query = select(DEAD_LETTERS.c.entry).order_by(DEAD_LETTERS.c.failed_at)
        with self.engine.connect() as conn:
            return [load_entry(text) for text in conn.execute(query).scalars()]

    def get(self, entry_id: str) -> DeadLetter | None:
        query = select(DEAD_LETTERS.c.entry).where(DEAD_LETTERS.c.id == entry_id)
        with self.engine.connect() as conn:
            text = conn.execute(query).scalar_one_or_none()
        return None if text is None else load_entry(text)

    def remove(self, entry_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(
                delete(DEAD_LETTERS).where(DEAD_LETTERS.c.id == entry_id)
            ).rowcount > 0

    def clear(self) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(delete(DEAD_LETTERS)).rowcount)


class SqlDeliveries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def increment(self, key: str, ttl: int) -> int:
        table = DELIVERIES
        for _ in range(INSERT_RACES):
            now = time.time()
            with self.engine.begin() as conn:
                bumped = conn.execute(
                    update(table).where(table.c.key == key).values(
                        count=case((table.c.expires_at < now, 1), else_=table.c.count + 1),
                        expires_at=now + ttl,
                    )
                ).rowcount
                if bumped:
                    return int(conn.execute(
                        select(table.c.count).where(table.c.key == key)
                    ).scalar_one())
            try:
                with self.engine.begin() as conn:
                    conn.execute(delete(table).where(table.c.expires_at < now))
                    conn.execute(insert(table).values(key=key, count=1, expires_at=now + ttl))
                return 1
            except IntegrityError:
                continue  # another process inserted the row first: bump it
        raise RuntimeError(f"could not count the delivery of {key}")

    def get(self, key: str) -> int:
        query = select(DELIVERIES.c.count).where(
            DELIVERIES.c.key == key, DELIVERIES.c.expires_at >= time.time()
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one_or_none() or 0)

    def forget(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(DELIVERIES).where(DELIVERIES.c.key == key))


class SqlDelays:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, item: Delayed) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(DELAYED).values(id=item.id, due=item.due, item=item.dumps()))

    def claim_due(self, until: float, limit: int, lease: float) -> list[Delayed]:
        now = time.time()
        free = or_(DELAYED.c.claimed_at.is_(None), DELAYED.c.claimed_at < now - lease)
        query = (select(DELAYED.c.id, DELAYED.c.item)
                 .where(DELAYED.c.due <= until, free).order_by(DELAYED.c.due).limit(limit))
        with self.engine.connect() as conn:
            candidates = conn.execute(query).all()
        claimed = []
        for item_id, text in candidates:
            # The guarded update succeeds for exactly one claimer.
            with self.engine.begin() as conn:
                won = conn.execute(
                    update(DELAYED).where(DELAYED.c.id == item_id, free).values(claimed_at=now)
                ).rowcount
            if won == 1:
                claimed.append(Delayed.loads(text))
        return claimed

    def done(self, item_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(DELAYED).where(DELAYED.c.id == item_id))

    def pending(self) -> list[Delayed]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(DELAYED.c.item).order_by(DELAYED.c.due)).scalars()
            return [Delayed.loads(text) for text in rows]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    try:
        metadata.create_all(engine)
    except (OperationalError, ProgrammingError, IntegrityError):
        metadata.create_all(engine)  # another process created the tables at the same time
    return engine


class SqlStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.dead_letters = SqlDeadLetters(self.engine)
        self.deliveries = SqlDeliveries(self.engine)
        self.delays = SqlDelays(self.engine)

    def describe(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"<SqlStore {self.describe()}>"
