"""The backlog's pieces: the formula, the queue a message belongs to, the workers' load
reports (their wire form, the SQL store, what a worker counts)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery.worker import state
from kombu import Exchange, Queue

from platform_core.broker.queue_names import QueueNames
from platform_core.stores.sql_store import SqlStore
from platform_core.stores.worker_loads import QueueLoad, WorkerLoad, reports
from platform_core.telemetry.backlog import QueueBacklog
from platform_core.worker.load_report import current_load
from tests.support import PlatformEnv, free_port, output_of

NAMES = QueueNames([Queue("quant", Exchange("quant", type="direct"), routing_key="quant"),
                    Queue("quant.data", Exchange("quant.data", type="direct"),
                          routing_key="data")])


def test_the_scaling_number_leaves_out_only_the_delays_held_for_later() -> None:
    parts = QueueBacklog(ready=1, reserved=2, running=3, held_due_soon=4, held_later=50)
    assert parts.backlog == 10
    assert parts.as_dict() == {"ready": 1, "reserved": 2, "running": 3, "held_due_soon": 4,
                               "held_later": 50, "backlog": 10}


@pytest.mark.parametrize(("exchange", "routing_key", "queue"), [
    ("quant", "quant", "quant"),
    ("quant.data", "data", "quant.data"),
    ("", "quant.data", "quant.data"),  # the default exchange routes by queue name
    ("quant.data", "quant.data", None),  # bound with routing key `data` only
    ("other", "quant", None),
])
def test_a_message_belongs_to_the_queue_its_binding_leads_to(
        exchange: str, routing_key: str, queue: str | None) -> None:
    assert NAMES.of(exchange, routing_key) == queue


def test_a_load_report_reads_back_as_written() -> None:
    load = WorkerLoad("w1@h", 12.5, {"quant": QueueLoad(2, 1)}, frozenset({"tag-1"}))
    assert WorkerLoad.loads(load.dumps()) == load


def test_sql_load_reports_expire(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    loads = reports(store)
    assert reports(store) is loads
    loads.put(WorkerLoad("w1@h", time.time(), {"quant": QueueLoad(1, 0)}), ttl=60)
    loads.put(WorkerLoad("w2@h", time.time(), {"quant": QueueLoad(0, 1)}), ttl=-1)
    loads.put(WorkerLoad("w1@h", time.time(), {"quant": QueueLoad(3, 0)}), ttl=60)
    assert [(x.worker, x.queues["quant"]) for x in loads.live()] == [("w1@h", QueueLoad(3, 0))]
    loads.remove("w1@h")
    assert loads.live() == []
    store.close()


class FakeRequest:
    def __init__(self, routing_key: str, tag: str) -> None:
        self.delivery_info = {"exchange": routing_key, "routing_key": routing_key}
        self.message = SimpleNamespace(delivery_tag=tag)


@pytest.fixture
def worker_state() -> Iterator[list[Any]]:
    kept: list[Any] = []  # the state's sets hold weak references
    yield kept
    for request in kept:
        for requests in (state.reserved_requests, state.active_requests,
                         state.scheduled_requests):
            requests.discard(request)


def test_a_worker_counts_each_request_once(worker_state: list[Any]) -> None:
    waiting, eta, running = (FakeRequest("quant", t) for t in ("t1", "t2", "t3"))
    elsewhere = FakeRequest("stray", "t4")
    worker_state += [waiting, eta, running, elsewhere]
    state.reserved_requests.update([waiting, running, elsewhere])
    state.scheduled_requests.add(eta)
    state.active_requests.add(running)  # a running request stays in reserved_requests too
    load = current_load("w1@h", NAMES)
    assert load.queues == {"quant": QueueLoad(reserved=2, running=1),
                           "stray": QueueLoad(reserved=1, running=0)}
    assert load.running_tags == {"t3"}


def test_queues_json_gives_each_queue_its_declaration_and_backlog(
        platform_env: PlatformEnv) -> None:
    result = platform_env.run("queues", "--json")
    assert result.returncode == 0, output_of(result)
    data = json.loads(result.stdout)
    assert (data["backlog"], data["broker"], data["workers_reporting"]) == (0, "filesystem", 0)
    admin = next(q for q in data["queues"] if q["name"] == "admin")
    assert admin == {"name": "admin", "routing_key": "admin", "plugin": "admin",
                     "tasks": ["admin.print_hello", "admin.weekly_report"], "ready": 0,
                     "reserved": 0, "running": 0, "held_due_soon": 0, "held_later": 0,
                     "backlog": 0}
    assert {"pattern": "admin.*", "queue": "admin", "plugin": "admin"} in data["routes"]


def test_queues_names_the_broker_it_cannot_read(platform_env: PlatformEnv) -> None:
    port = free_port()
    platform_env.set(PLATFORM_BROKER_URL=f"redis://:secret-pw@127.0.0.1:{port}/0")
    result = platform_env.run("queues", "--json")
    assert result.returncode == 2, output_of(result)
    assert result.stderr.startswith(
        f"Error: cannot read the backlog: cannot reach the broker at "
        f"redis://:***@127.0.0.1:{port}/0 (")
    assert "secret-pw" not in result.stdout + result.stderr
