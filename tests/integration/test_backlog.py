"""Each queue's backlog against real workers, at each stage of a task's life: waiting
(with a priority), reserved with a countdown, running (acknowledged early and late),
held for later (due soon and not), done; read by `platform queues --json`, over HTTP
(`/backlog/{queue}`, KEDA's metrics-api shape) and from the worker's metrics."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.otlp import Receiver
from tests.support import PlatformEnv, free_port, output_of, wait_until, wait_until_serving

pytestmark = [pytest.mark.slow]

# A short visibility timeout makes short delays "long" (held by the platform): the
# horizon is 36 s, so a 45 s countdown is held, a 15 s one goes to the broker.
VISIBILITY = 40
LIMITS = {"PLATFORM_VISIBILITY_TIMEOUT": str(VISIBILITY), "PLATFORM_TASK_TIME_LIMIT": "35",
          "PLATFORM_TASK_SOFT_TIME_LIMIT": "34", "PLATFORM_PLUGINS": "lag",
          "PLATFORM_BACKLOG_DUE_SOON": "60"}
RESERVED_COUNTDOWN = 15
SOON_COUNTDOWN = 45      # held, and due within PLATFORM_BACKLOG_DUE_SOON
LATER_COUNTDOWN = 3600   # held, due later
WAIT = 60.0

PLUGIN = '''
import time
from pathlib import Path

from platform_sdk import Queue, hookimpl, task

QUEUE = "{queue}"


def _hold(path):
    marker = Path(path)
    marker.with_suffix(".started").touch()
    while not marker.with_suffix(".go").exists():
        time.sleep(0.05)
    return path


@task(name="lag.quick", queue=QUEUE)
def quick() -> int:
    return 1


@task(name="lag.block", queue=QUEUE)
def block(path: str) -> str:
    return _hold(path)


@task(name="lag.block_late", queue=QUEUE, idempotent=True)
def block_late(path: str) -> str:
    return _hold(path)


@hookimpl
def register_tasks(register):
    for t in (quick, block, block_late):
        register(t)


@hookimpl
def register_queues(register):
    register(Queue(name=QUEUE, max_priority=9))
'''

ZERO = {"ready": 0, "reserved": 0, "running": 0, "held_due_soon": 0, "held_later": 0,
        "backlog": 0}
PARTS = tuple(ZERO)


@pytest.fixture(params=["redis", "embedded", "amqp"])
def lag(request: pytest.FixtureRequest, platform_env: PlatformEnv) -> Iterator[
        tuple[PlatformEnv, str]]:
    """The plugin on one broker, with a queue name of its own (RabbitMQ is shared)."""
    queue = f"lag.q{uuid.uuid4().hex[:8]}"
    platform_env.plugins.add("lag", PLUGIN.format(queue=queue), distribution="platform-lag")
    platform_env.set(**LIMITS)
    url = None
    if request.param != "embedded":
        url = request.getfixturevalue(f"{request.param}_url")
        platform_env.set(PLATFORM_BROKER_URL=url)
    yield platform_env, queue
    platform_env.close()
    if request.param == "amqp":
        from kombu import Connection

        with Connection(url) as conn, contextlib.suppress(Exception):
            conn.channel().queue_delete(queue)


def cli_backlog(env: PlatformEnv, queue: str) -> dict[str, Any]:
    result = env.run("queues", "--json", timeout=90)
    assert result.returncode == 0, output_of(result)
    data = json.loads(result.stdout)
    row = next(q for q in data["queues"] if q["name"] == queue)
    assert row["plugin"] == "lag" and "lag.quick" in row["tasks"]
    return {part: row[part] for part in PARTS}


class Api:
    """`platform api` with a read key, called as KEDA's metrics-api scaler calls it."""

    def __init__(self, env: PlatformEnv, key: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.key = key
        process = env.spawn("api", "--port", str(port), name="api")
        wait_until_serving(f"{self.url}/openapi.json", process, "platform api", WAIT)

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30)

    def backlog(self, queue: str) -> dict[str, Any]:
        reply = self.get(f"/backlog/{queue}", **{"X-API-Key": self.key})
        assert reply.status_code == 200, reply.text
        data = reply.json()
        assert data["queue"] == queue
        return {part: data[part] for part in PARTS}


def prometheus_backlog(port: int, queue: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if labels.get("queue") != queue:
            continue
        if line.startswith("platform_queue_backlog_parts{"):
            found[labels["part"]] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("platform_queue_backlog{"):
            found["backlog"] = float(line.rsplit(" ", 1)[1])
    return found


def test_the_backlog_counts_each_task_once_at_each_stage_of_its_life(
        lag: tuple[PlatformEnv, str], tmp_path: Path) -> None:
    env, queue = lag
    key = secrets.token_urlsafe(24)
    env.set(PLATFORM_API_KEYS=f"{key}:read")
    host = env.host()
    api = Api(env, key)
    tasks = host.app.tasks

    def expect(what: str, **parts: int) -> dict[str, int]:
        wanted = {**ZERO, **parts}
        wanted["backlog"] = sum(wanted[p] for p in PARTS[:4])
        last: list[dict[str, Any]] = []

        def matches() -> bool:
            last[:] = [api.backlog(queue)]
            return last[0] == wanted

        try:
            wait_until(matches, WAIT, what, interval=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: last {last[0]}, wanted {wanted}") from None
        return wanted

    # 1. sent, no worker yet: waiting in the broker, the one with a priority too
    tasks["lag.quick"].delay()
    tasks["lag.quick"].apply_async(priority=6)
    wanted = expect("two waiting messages", ready=2)
    assert cli_backlog(env, queue) == wanted
    if host.app.conf.broker_url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(host.app.conf.broker_url)
        assert client.llen(f"{queue}\x06\x166") == 1, "kombu's priority sub-queue"
        client.close()

    # 2. a worker takes and runs them: done
    port = free_port()
    env.set(PLATFORM_METRICS="prometheus", PLATFORM_METRICS_ADDRESS=f"127.0.0.1:{port}")
    env.worker("--plugins", "lag", "-c", "2")
    expect("the waiting messages done")

    # 3. a countdown within the visibility timeout: the worker reserves it until due
    reserved = tasks["lag.quick"].apply_async(countdown=RESERVED_COUNTDOWN)
    expect("the countdown task reserved", reserved=1)

    # 4. two tasks running, one acknowledged on receipt, one late (still unacknowledged
    # on Redis, and counted once)
    early, late = tmp_path / "early.run", tmp_path / "late.run"
    tasks["lag.block"].delay(str(early))
    tasks["lag.block_late"].delay(str(late))
    wait_until(lambda: early.with_suffix(".started").exists()
               and late.with_suffix(".started").exists(), WAIT, "both blocking tasks to start")
    expect("two running, one reserved", reserved=1, running=2)

    # 5. held long delays: one due soon, one later (left out of the scaling number)
    soon = tasks["lag.quick"].apply_async(countdown=SOON_COUNTDOWN)
    tasks["lag.quick"].apply_async(countdown=LATER_COUNTDOWN)
    wanted = expect("two held", reserved=1, running=2, held_due_soon=1, held_later=1)
    assert wanted["backlog"] == 4
    assert cli_backlog(env, queue) == wanted
    assert wait_until(lambda: prometheus_backlog(port, queue) == wanted, WAIT,
                      "the same backlog on the worker's /metrics")

    # 6. the running tasks finish, the countdown task runs, the held one due soon is
    # released and runs: nothing left but the delay held for later
    early.with_suffix(".go").touch()
    late.with_suffix(".go").touch()
    assert reserved.get(timeout=WAIT) == 1
    assert soon.get(timeout=SOON_COUNTDOWN + WAIT) == 1
    wanted = expect("all done but the later delay", held_later=1)
    assert wanted["backlog"] == 0
    assert cli_backlog(env, queue) == wanted


def test_the_backlog_reaches_an_otlp_receiver(platform_env: PlatformEnv, redis_url: str,
                                              otlp: Receiver, tmp_path: Path) -> None:
    queue = "lag"
    platform_env.plugins.add("lag", PLUGIN.format(queue=queue), distribution="platform-lag")
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_METRICS="otlp",
                     OTEL_METRIC_EXPORT_INTERVAL="300", **LIMITS, **otlp.env())
    platform_env.worker("--plugins", "lag", "-c", "2")
    host = platform_env.host()
    run = tmp_path / "one.run"
    host.app.tasks["lag.block"].delay(str(run))
    host.app.tasks["lag.quick"].apply_async(countdown=LATER_COUNTDOWN)

    def latest() -> dict[str, float]:
        found: dict[str, float] = {}
        with otlp.lock:
            for p in otlp.points:
                if p.attributes.get("queue") != queue:
                    continue
                if p.metric == "platform.queue.backlog":
                    found["backlog"] = p.value
                elif p.metric == "platform.queue.backlog.parts":
                    found[str(p.attributes["part"])] = p.value
        return found

    wanted = {**ZERO, "running": 1, "held_later": 1, "backlog": 1}
    try:
        wait_until(lambda: latest() == wanted, WAIT, "the backlog over OTLP")
    finally:
        run.with_suffix(".go").touch()
    wait_until(lambda: latest() == {**ZERO, "held_later": 1}, WAIT, "the task done over OTLP")


def test_an_unknown_queue_and_a_missing_key_are_refused(platform_env: PlatformEnv) -> None:
    key = secrets.token_urlsafe(24)
    platform_env.set(PLATFORM_API_KEYS=f"{key}:read")
    api = Api(platform_env, key)
    assert api.get("/backlog/admin").status_code == 401
    bearer = {"Authorization": f"Bearer {key}"}
    reply = api.get("/backlog/nope", **bearer)
    assert reply.status_code == 404
    assert reply.json()["detail"].startswith("no enabled plugin declares queue `nope`; declared:")
    whole = api.get("/backlog", **bearer).json()
    assert whole["backlog"] == 0 and whole["broker"] == "filesystem"
    assert whole["queues"]["admin"] == ZERO
