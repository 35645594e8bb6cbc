"""Two `platform beat` processes: one dispatches, the other stands by and takes over."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from kombu import Connection

from platform_core.beat import locks as beatlock
from tests.support import PlatformEnv, Process, wait_until

TICKER = '''
import json
from pathlib import Path
from platform_sdk import BeatEntry, Every, Queue, hookimpl, task

@task(name="{name}.tick", queue="{name}", bind=True)
def tick(self, path: str) -> None:
    # origin: the node that sent the message, "gen<pid>@<host>" for a beat process
    with Path(path).open("a") as fh:
        fh.write(json.dumps({{"origin": self.request.origin, "id": self.request.id}}) + "\\n")

@hookimpl
def register_tasks(register):
    register(tick)

@hookimpl
def register_queues(register):
    register(Queue(name="{name}"))

@hookimpl
def register_beat_entries(register):
    register(BeatEntry(name="{name}.every-second", task="{name}.tick", schedule=Every(seconds=1),
                       args=({path!r},)))
'''
LOCK_TIMEOUT = "3"


def runs(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def origin(process: Process) -> str:
    return f"gen{process.popen.pid}@{socket.gethostname()}"


def identity(process: Process) -> str:
    return f"{socket.gethostname()}:{process.popen.pid}"


def sent(process: Process, entry: str) -> int:
    return process.output().count(f"Sending due task {entry}")


def send_times(process: Process, entry: str) -> list[datetime]:
    """When the process logged each send of ``entry`` (Celery's log line timestamps)."""
    return [datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
            for line in process.output().splitlines()
            if f"Sending due task {entry}" in line]


@pytest.fixture(params=["embedded", "redis", "rabbitmq"])
def lock_env(request: pytest.FixtureRequest, platform_env: PlatformEnv) -> Iterator[PlatformEnv]:
    if request.param == "redis":
        platform_env.set(PLATFORM_BROKER_URL=request.getfixturevalue("redis_url"))
    elif request.param == "rabbitmq":
        platform_env.set(PLATFORM_BROKER_URL=request.getfixturevalue("amqp_url"))
    yield platform_env.set(PLATFORM_BEAT_LOCK_TIMEOUT=LOCK_TIMEOUT)
    if request.param == "rabbitmq":  # the durable queues this test's plugin left behind
        platform_env.close()
        plugin = platform_env.vars["PLATFORM_PLUGINS"]
        with Connection(platform_env.vars["PLATFORM_BROKER_URL"]) as conn:
            for queue in (plugin, f"{beatlock.STATE_QUEUE}.{plugin}"):
                with contextlib.suppress(Exception):
                    conn.channel().queue_delete(queue)


def test_one_beat_dispatches_and_the_other_takes_over_when_it_dies(
    lock_env: PlatformEnv, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # A plugin name of its own: on RabbitMQ, queue names are shared by parallel tests.
    name = f"tick{uuid.uuid4().hex[:8]}"
    ticks = tmp_path / "ticks.jsonl"
    lock_env.plugins.add(name, TICKER.format(name=name, path=str(ticks)))
    lock_env.set(PLATFORM_PLUGINS=name)
    entry = f"{name}.every-second"
    # On RabbitMQ the lock queue is shared by parallel tests too; a partial beat's lock
    # is named after its plugins. Redis (a database per test process) and the embedded
    # broker (a home per test) use the default lock.
    scope = ("--plugins", name, "--partial") if "rabbitmq" in request.node.name else ()
    lock_env.worker()

    first = lock_env.spawn("beat", *scope, name="beat-a")
    first.wait_for_log("holding the beat lock")
    second = lock_env.spawn("beat", *scope, name="beat-b")
    second.wait_for_log(f"standing by: {identity(first)} holds the beat lock")

    standby_from = len(runs(ticks))
    wait_until(lambda: len(runs(ticks)) >= standby_from + 4, 60,
               "four runs while both beats are up")
    assert sent(second, entry) == 0, second.output()
    assert {r["origin"] for r in runs(ticks)} == {origin(first)}

    os.killpg(first.popen.pid, signal.SIGKILL)
    first.popen.wait(10)
    dispatched_by_first = sent(first, entry)
    second.wait_for_log("took over the beat lock", timeout=30)
    assert f"from {identity(first)}" in second.output()
    wait_until(lambda: sum(r["origin"] == origin(second) for r in runs(ticks)) >= 3, 60,
               "three runs dispatched by the beat that took over")

    by_origin = [r["origin"] for r in runs(ticks)]
    assert set(by_origin) == {origin(first), origin(second)}
    assert len({r["id"] for r in runs(ticks)}) == len(by_origin)
    # Each run was sent once: the first beat's runs are at most the sends it logged (it
    # may have died between logging a send and finishing it).
    assert by_origin.count(origin(first)) <= dispatched_by_first
    # The beats never sent at the same time: the second's first send (logged on the
    # same machine's clock) comes after the first beat's last.
    assert max(send_times(first, entry)) < min(send_times(second, entry))

    # The second beat continued the first one's count of runs, recorded with the lock
    # (a beat records a run just before it logs the send, hence the one-run slack).
    assert second.stop() == 0
    app = lock_env.host().app
    if scope:
        app.conf.platform_beat_scope = name
    lock = beatlock.for_app(app)
    assert lock.acquire() == (True, None)
    try:
        recorded = lock.load_state()[entry]["total_run_count"]
    finally:
        lock.release()
    assert recorded - (dispatched_by_first + sent(second, entry)) in (0, 1)


def test_holder_names_the_running_beat_until_it_exits_cleanly(
    lock_env: PlatformEnv, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    name = f"tick{uuid.uuid4().hex[:8]}"
    lock_env.plugins.add(name, TICKER.format(name=name, path=str(tmp_path / "ticks.jsonl")))
    lock_env.set(PLATFORM_PLUGINS=name)
    app = lock_env.host().app
    rabbitmq = "rabbitmq" in request.node.name
    if rabbitmq:
        app.conf.platform_beat_scope = name
    scope = ("--plugins", name, "--partial") if rabbitmq else ()
    assert beatlock.holder(app) is None
    beat = lock_env.spawn("beat", *scope, name="beat")
    beat.wait_for_log("holding the beat lock")
    assert beatlock.holder(app) == identity(beat)
    assert beat.stop() == 0
    assert "released the beat lock" in beat.output()
    assert beatlock.holder(app) is None  # released at exit, not left to expire


def test_a_holder_whose_key_expires_mid_acquire_is_not_reported_unknown(
    platform_env: PlatformEnv, redis_url: str
) -> None:
    """The holder's key can expire between a standby's SET NX and its read: the standby
    then takes the free lock (or names the new holder), never an `unknown` one."""
    from platform_core.beat.redis_lock import RedisLock

    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    app = platform_env.host().app
    holder, standby = RedisLock(app, timeout=30), RedisLock(app, timeout=30)
    holder.identity, standby.identity = "holder:1", "standby:2"
    assert holder.acquire() == (True, None)
    real = standby._run

    def expiring(what: str, fn: object) -> object:
        if what == "read":  # the holder's key expires just before the standby reads it
            holder._redis().delete(holder.key)
        return real(what, fn)

    standby._run = expiring  # type: ignore[method-assign]
    try:
        assert standby.acquire() == (True, None)
        assert beatlock.holder(app) == "standby:2"
    finally:
        standby.release()
        holder.close()
