"""Reliability stores in any SQLAlchemy database (SQLite under PLATFORM_HOME by default).

What these tables hold is task messages, arguments included, and a database's error
text can quote them (PostgreSQL's ``DETAIL: Failing row contains (...)``, SQLAlchemy's
``[parameters: ...]``). So no database error leaves this module: every public method
turns one into a :class:`~platform_core.errors.StoreError` that names the store, the
operation, the error's class and code, and the fix, and that is raised outside the
``except`` block so the original is not even chained to it. The engines also hide
parameters (``hide_parameters=True``) from SQLAlchemy's own logging.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

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
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

from platform_core.errors import StoreError
from platform_core.stores.base import Delayed, dump_entry, load_entry
from platform_core.stores.records import DeadLetter

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
FIX = ("check that the database is running, reachable and writable, and that the table "
       "has the platform's columns (a process creates missing tables when it opens the "
       "store: drop a table changed by hand, then restart the workers); or point "
       "PLATFORM_DEAD_LETTER_URL at another database")


def describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _codes(exc: SQLAlchemyError) -> str:
    """The error's class and codes: names a database defines, never its message."""
    orig = getattr(exc, "orig", None)
    names = [type(exc).__name__]
    if orig is not None:
        names.append(type(orig).__name__)
        names += [str(getattr(orig, code, None) or "") for code in ("sqlstate", "sqlite_errorname")]
        diag = getattr(orig, "diag", None)  # PostgreSQL's identifiers of what failed
        names += [f"{part} {getattr(diag, part + '_name', None)}"
                  for part in ("column", "constraint") if getattr(diag, part + "_name", None)]
    return ", ".join(dict.fromkeys(n for n in names if n))


def failure(engine: Engine, action: str, exc: SQLAlchemyError) -> StoreError:
    return StoreError(
        f"the reliability store at {describe(engine)} cannot {action} ({_codes(exc)}; the "
        f"database's own message is not shown, as it can quote task arguments); {FIX}"
    )


class _Part:
    """One table's worth of a store, on a shared engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine


S = TypeVar("S", bound=_Part)
P = ParamSpec("P")
R = TypeVar("R")


def guarded(action: str) -> Callable[[Callable[Concatenate[S, P], R]],
                                     Callable[Concatenate[S, P], R]]:
    """Turn any database error of the method into a :class:`StoreError` about ``action``."""
    def wrap(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
        def run(part: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(part, *args, **kwargs)
            except SQLAlchemyError as exc:
                error = failure(part.engine, action, exc)
            raise error  # out of the except block: the database's error is not chained

        functools.update_wrapper(run, method)
        return run

    return wrap


class SqlDeadLetters(_Part):
    @guarded("add a dead letter to table platform_dead_letters")
    def add(self, entry: DeadLetter) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(DEAD_LETTERS).values(
                id=entry.id, task=entry.task, plugin=entry.plugin,
                failed_at=entry.failed_at.timestamp(), entry=dump_entry(entry),
            ))

    @guarded("list the dead letters of table platform_dead_letters")
    def list(self) -> list[DeadLetter]:
        query = select(DEAD_LETTERS.c.entry).order_by(DEAD_LETTERS.c.failed_at)
        with self.engine.connect() as conn:
            return [load_entry(text) for text in conn.execute(query).scalars()]

    @guarded("read a dead letter from table platform_dead_letters")
    def get(self, entry_id: str) -> DeadLetter | None:
        query = select(DEAD_LETTERS.c.entry).where(DEAD_LETTERS.c.id == entry_id)
        with self.engine.connect() as conn:
            text = conn.execute(query).scalar_one_or_none()
        return None if text is None else load_entry(text)

    @guarded("remove a dead letter from table platform_dead_letters")
    def remove(self, entry_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(
                delete(DEAD_LETTERS).where(DEAD_LETTERS.c.id == entry_id)
            ).rowcount > 0

    @guarded("clear table platform_dead_letters")
    def clear(self) -> int:
        with self.engine.begin() as conn:
            return int(conn.execute(delete(DEAD_LETTERS)).rowcount)


class SqlDeliveries(_Part):
    @guarded("count a delivery in table platform_deliveries")
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

    @guarded("read a delivery count from table platform_deliveries")
    def get(self, key: str) -> int:
        query = select(DELIVERIES.c.count).where(
            DELIVERIES.c.key == key, DELIVERIES.c.expires_at >= time.time()
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one_or_none() or 0)

    @guarded("forget a delivery count in table platform_deliveries")
    def forget(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(DELIVERIES).where(DELIVERIES.c.key == key))


class SqlDelays(_Part):
    @guarded("hold a delayed task in table platform_delayed")
    def add(self, item: Delayed) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(DELAYED).values(id=item.id, due=item.due, item=item.dumps()))

    @guarded("claim due tasks in table platform_delayed")
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

    @guarded("release a held task from table platform_delayed")
    def done(self, item_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(DELAYED).where(DELAYED.c.id == item_id))

    @guarded("list the held tasks of table platform_delayed")
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
        engine = create_engine(parsed, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    try:
        try:
            metadata.create_all(engine)
        except (OperationalError, ProgrammingError, IntegrityError):
            metadata.create_all(engine)  # another process created the tables at the same time
    except SQLAlchemyError as exc:
        error = failure(engine, "create its tables", exc)
    else:
        return engine
    engine.dispose()
    raise error


class SqlStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.dead_letters = SqlDeadLetters(self.engine)
        self.deliveries = SqlDeliveries(self.engine)
        self.delays = SqlDelays(self.engine)

    def describe(self) -> str:
        return describe(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"<SqlStore {self.describe()}>"
