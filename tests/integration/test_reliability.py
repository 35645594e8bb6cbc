"""Hardened defaults seen from real workers: no prefetch on Redis, default time limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis
from celery.exceptions import TimeLimitExceeded

from tests.support import PlatformEnv, wait_until

GATE = '''
import time
from pathlib import Path
from platform_sdk import Queue, hookimpl, task

@task(name="gate.wait", queue="gate")
def wait(folder: str, n: int) -> int:
    Path(folder, f"started-{n}").touch()
    deadline = time.monotonic() + 60
    while not Path(folder, "open").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return n

@hookimpl
def register_tasks(register):
    register(wait)

@hookimpl
def register_queues(register):
    register(Queue(name="gate"))
'''

LIMITS = '''
import time
from platform_sdk import Queue, hookimpl, task
from platform_sdk.exceptions import SoftTimeLimitExceeded

@task(name="limits.polite", queue="limits")
def polite() -> str:
    try:
        time.sleep(60)
    except SoftTimeLimitExceeded:
        return "stopped at the soft limit"
    return "slept"

@task(name="limits.stubborn", queue="limits")
def stubborn() -> str:
    for _ in range(2):
        try:
            time.sleep(60)
        except SoftTimeLimitExceeded:
            pass
    return "slept"

@task(name="limits.own", queue="limits", time_limit=60)
def own() -> str:
    time.sleep(4)
    return "finished past the default limit"

@hookimpl
def register_tasks(register):
    for t in (polite, stubborn, own):
        register(t)

@hookimpl
def register_queues(register):
    register(Queue(name="limits"))
'''


ONCE = '''
from pathlib import Path
from platform_sdk import Queue, hookimpl, task

@task(name="once.count", queue="once", idempotent=True)
def count(path: str) -> int:
    with open(path, "a") as fh:
        fh.write("ran\\n")
    return len(Path(path).read_text().splitlines())

@hookimpl
def register_tasks(register):
    register(count)

@hookimpl
def register_queues(register):
    register(Queue(name="once"))
'''


@pytest.fixture
def gate(platform_env: PlatformEnv, redis_url: str, tmp_path: Path) -> PlatformEnv:
    platform_env.plugins.add("gate", GATE)
    return platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_PLUGINS="gate")


def three_waiting_tasks(env: PlatformEnv, folder: Path) -> list[object]:
    app = env.host().app
    results = [app.tasks["gate.wait"].delay(str(folder), n) for n in range(3)]
    wait_until(lambda: any(folder.glob("started-*")), 30, "the first task to start")
    return results


def test_redis_worker_leaves_what_it_cannot_start_to_other_workers(
    gate: PlatformEnv, redis_url: str, tmp_path: Path
) -> None:
    gate.worker("-c", "1")
    results = three_waiting_tasks(gate, tmp_path)
    # The first worker's one process is busy, and it holds no other message: a second
    # worker starts the next task while the first still runs.
    gate.worker("-c", "1")
    wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 30,
               "the second worker to start a task")
    assert redis.Redis.from_url(redis_url).llen("gate") == 1  # the third waits in Redis
    (tmp_path / "open").touch()
    assert sorted(r.get(timeout=60) for r in results) == [0, 1, 2]  # type: ignore[attr-defined]


def test_an_operator_prefetch_multiplier_reserves_ahead(
    gate: PlatformEnv, redis_url: str, tmp_path: Path
) -> None:
    gate.worker("-c", "1", "--prefetch-multiplier", "4")
    results = three_waiting_tasks(gate, tmp_path)
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: client.llen("gate") == 0, 30, "the worker to reserve every message")
    (tmp_path / "open").touch()
    assert sorted(r.get(timeout=60) for r in results) == [0, 1, 2]  # type: ignore[attr-defined]


def test_default_time_limits_stop_tasks_that_set_none(broker_env: PlatformEnv) -> None:
    broker_env.plugins.add("limits", LIMITS)
    broker_env.set(PLATFORM_PLUGINS="limits", PLATFORM_TASK_TIME_LIMIT="3",
                   PLATFORM_TASK_SOFT_TIME_LIMIT="1")
    broker_env.worker()
    tasks = broker_env.host().app.tasks
    polite = tasks["limits.polite"].delay()
    stubborn = tasks["limits.stubborn"].delay()
    own = tasks["limits.own"].delay()
    assert polite.get(timeout=60) == "stopped at the soft limit"
    with pytest.raises(TimeLimitExceeded):
        stubborn.get(timeout=60)
    assert own.get(timeout=60) == "finished past the default limit"


def test_a_redelivered_task_that_already_succeeded_is_not_run_again(
    platform_env: PlatformEnv, redis_url: str, tmp_path: Path
) -> None:
    """What a broker restart leaves behind: a task that stored SUCCESS whose message
    comes back marked redelivered (as kombu's restore marks it) because the
    acknowledgement was lost. The worker acknowledges it without running it."""
    platform_env.plugins.add("once", ONCE)
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_PLUGINS="once")
    ledger = tmp_path / "runs.txt"
    result = platform_env.host().app.tasks["once.count"].delay(str(ledger))
    client = redis.Redis.from_url(redis_url)
    envelope = json.loads(client.lindex("once", 0) or b"{}")
    assert envelope["headers"]["id"] == result.id
    worker = platform_env.worker()
    assert result.get(timeout=60) == 1
    envelope["properties"]["delivery_info"]["redelivered"] = True
    envelope["headers"]["redelivered"] = True
    client.lpush("once", json.dumps(envelope))
    worker.wait_for_log(f"once.count[{result.id}] Task already completed successfully", 60)
    assert ledger.read_text().splitlines() == ["ran"]
    assert client.llen("once") == 0
