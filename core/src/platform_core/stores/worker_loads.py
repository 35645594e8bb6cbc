"""What each worker holds, per queue, as its main process last reported it.

Each worker writes one short-lived report (:mod:`platform_core.worker.load_report`);
the backlog reads the live ones instead of asking every worker over the broker. A
report expires ``ttl`` seconds after it was written, so a worker that died stops
counting soon after.

Redis: a key ``platform:load:<worker>`` (JSON, with the TTL) and the set
``platform:load:workers`` naming them. SQL: table ``platform_worker_loads``.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import redis
    from sqlalchemy.engine import Engine

    from platform_core.stores.base import Store

KEY = "platform:load:"
WORKERS = "platform:load:workers"
TABLE = "platform_worker_loads"


@dataclass(frozen=True)
class QueueLoad:
    reserved: int = 0  # received, not running: waiting for a pool slot or for its ETA
    running: int = 0


@dataclass(frozen=True)
class WorkerLoad:
    worker: str
    at: float  # when it was reported (seconds since the epoch)
    queues: Mapping[str, QueueLoad] = field(default_factory=dict)
    #: delivery tags of the running tasks' messages, to tell them from the unacknowledged
    #: messages a Redis broker lists (a running acks-late task is in both)
    running_tags: frozenset[str] = frozenset()

    def dumps(self) -> str:
        return json.dumps({
            "worker": self.worker, "at": self.at,
            "queues": {q: [n.reserved, n.running] for q, n in self.queues.items()},
            "running_tags": sorted(self.running_tags)})

    @classmethod
    def loads(cls, text: str | bytes) -> WorkerLoad:
        data = json.loads(text)
        return cls(worker=str(data["worker"]), at=float(data["at"]),
                   queues={str(q): QueueLoad(int(r), int(n))
                           for q, (r, n) in data["queues"].items()},
                   running_tags=frozenset(str(t) for t in data["running_tags"]))


class LoadReports(Protocol):
    def put(self, load: WorkerLoad, ttl: float) -> None: ...

    def remove(self, worker: str) -> None: ...

    def live(self) -> list[WorkerLoad]:
        """The reports that have not expired, by worker name."""


class RedisLoads:
    def __init__(self, client: redis.Redis[bytes]) -> None:
        self.client = client

    def put(self, load: WorkerLoad, ttl: float) -> None:
        pipe = self.client.pipeline()
        pipe.set(KEY + load.worker, load.dumps(), px=max(1, int(ttl * 1000)))
        pipe.sadd(WORKERS, load.worker)
        pipe.execute()

    def remove(self, worker: str) -> None:
        pipe = self.client.pipeline()
        pipe.delete(KEY + worker)
        pipe.srem(WORKERS, worker)
        pipe.execute()

    def live(self) -> list[WorkerLoad]:
        names = sorted(n.decode() for n in self.client.smembers(WORKERS))
        if not names:
            return []
        values = self.client.mget([KEY + n for n in names])
        gone = [n for n, v in zip(names, values, strict=True) if v is None]
        if gone:
            self.client.srem(WORKERS, *gone)  # expired: the worker stopped reporting
        return [WorkerLoad.loads(v) for v in values if v is not None]


class SqlLoads:
    def __init__(self, engine: Engine) -> None:
        from sqlalchemy import Column, Float, MetaData, String, Table, Text

        self.engine = engine
        self.metadata = MetaData()
        self.table = Table(TABLE, self.metadata,
                           Column("worker", String(255), primary_key=True),
                           Column("expires_at", Float, nullable=False),
                           Column("load", Text, nullable=False))
        self._created = False

    def _guard(self, action: str, run: Any) -> Any:
        from sqlalchemy.exc import SQLAlchemyError

        from platform_core.stores.sql_store import failure

        try:
            if not self._created:
                self.metadata.create_all(self.engine)
                self._created = True
            return run()
        except SQLAlchemyError as exc:
            error = failure(self.engine, f"{action} table {TABLE}", exc)
        raise error  # out of the except block: the database's error is not chained

    def put(self, load: WorkerLoad, ttl: float) -> None:
        from sqlalchemy import delete, insert

        def run() -> None:
            with self.engine.begin() as conn:
                conn.execute(delete(self.table).where(self.table.c.worker == load.worker))
                conn.execute(insert(self.table).values(
                    worker=load.worker, expires_at=time.time() + ttl, load=load.dumps()))

        self._guard("write a worker's load to", run)

    def remove(self, worker: str) -> None:
        from sqlalchemy import delete

        def run() -> None:
            with self.engine.begin() as conn:
                conn.execute(delete(self.table).where(self.table.c.worker == worker))

        self._guard("remove a worker's load from", run)

    def live(self) -> list[WorkerLoad]:
        from sqlalchemy import select

        def run() -> list[WorkerLoad]:
            query = (select(self.table.c.load).where(self.table.c.expires_at > time.time())
                     .order_by(self.table.c.worker))
            with self.engine.connect() as conn:
                return [WorkerLoad.loads(text) for text in conn.execute(query).scalars()]

        result: list[WorkerLoad] = self._guard("read the workers' loads from", run)
        return result


_reports: weakref.WeakKeyDictionary[Any, LoadReports] = weakref.WeakKeyDictionary()


def reports(store: Store) -> LoadReports:
    """The load reports kept next to ``store``'s held delays (one object per store)."""
    found = _reports.get(store)
    if found is None:
        client = getattr(store, "client", None)
        engine = getattr(store, "engine", None)
        if client is not None:
            found = RedisLoads(client)
        elif engine is not None:
            found = SqlLoads(engine)
        else:
            raise TypeError(f"{store!r} keeps no worker loads: it has neither a Redis client "
                            "nor a SQL engine")
        _reports[store] = found
    return found
