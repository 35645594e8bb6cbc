"""`platform doctor` against real workers, real queues and real beat locks."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import PlatformEnv, Process, output_of, wait_until

OPS = """
from platform_sdk import BeatEntry, Every, Queue, Route, hookimpl, task

@task(name="ops.ping", queue="ops.work")
def ping():
    return "pong"

@task(name="ops.parked")
def parked(n):
    return n

@hookimpl
def register_tasks(register):
    register(ping)
    register(parked)

@hookimpl
def register_queues(register):
    register(Queue(name="ops.work"))
    register(Queue(name="ops.parked"))

@hookimpl
def register_routes(register):
    register(Route(pattern="ops.parked", queue="ops.parked"))
"""

BEAT = """
@hookimpl
def register_beat_entries(register):
    register(BeatEntry(name="ops.ping-hourly", task="ops.ping", schedule=Every(seconds=3600)))
"""


def doctor(env: PlatformEnv, *args: str, timeout: str = "10") -> tuple[int, dict[str, Any]]:
    """The JSON report; ``timeout`` is generous where every worker must be seen to answer."""
    result = env.run("doctor", "--json", "--timeout", timeout, *args, timeout=120)
    assert result.returncode in (0, 1), output_of(result)
    assert result.stdout.startswith("{"), output_of(result)
    return result.returncode, json.loads(result.stdout)


def findings(report: dict[str, Any], check: str) -> list[dict[str, str]]:
    return [f for f in report["findings"] if f["check"] == check]


def problems(report: dict[str, Any]) -> list[dict[str, str]]:
    return [f for f in report["findings"] if f["severity"] != "info"]


@pytest.fixture
def ops(platform_env: PlatformEnv) -> PlatformEnv:
    platform_env.plugins.add("ops", OPS, distribution="platform-ops", version="1.2.3")
    return platform_env.set(PLATFORM_PLUGINS="ops")


def test_healthy_setup_exits_0(ops: PlatformEnv, redis_url: str) -> None:
    ops.set(PLATFORM_BROKER_URL=redis_url)
    worker = ops.worker()
    code, report = doctor(ops)
    assert code == 0, report
    assert report["healthy"] is True
    assert problems(report) == []
    assert report["workers"] == {worker.node: ["ops.parked", "ops.work"]}
    assert {q["name"]: q["consumers"] for q in report["queues"]} == {
        "ops.parked": [worker.node], "ops.work": [worker.node]}

    text = ops.run("doctor", "--timeout", "10", timeout=120)
    assert text.returncode == 0, output_of(text)
    assert "no problems found" in text.stdout


def test_tasks_queued_where_nobody_consumes(broker_env: PlatformEnv) -> None:
    broker_env.plugins.add("ops", OPS, distribution="platform-ops", version="1.2.3")
    broker_env.set(PLATFORM_PLUGINS="ops")
    worker = broker_env.worker("-Q", "ops.work")
    app = broker_env.host().app
    ids = [app.tasks["ops.parked"].apply_async((n,)).id for n in range(3)]

    code, report = doctor(broker_env)
    assert code == 1
    (stuck,) = findings(report, "queue-without-worker")
    assert stuck["severity"] == "error"
    assert "queue `ops.parked` holds 3 waiting message(s)" in stuck["problem"]
    assert "task `ops.parked` of plugin `ops` (platform-ops 1.2.3) ×3" in stuck["culprit"]
    assert "`platform worker -Q ops.parked`" in stuck["fix"]
    assert "--plugins ops" in stuck["fix"]
    assert {q["name"]: (q["waiting"], q["consumers"]) for q in report["queues"]} == {
        "ops.parked": (3, []), "ops.work": (0, [worker.node])}

    ahead = []
    for task_id in ids:
        # Worker replies do not matter here: none consumes `ops.parked` either way.
        code, explained = doctor(broker_env, "--task-id", task_id, timeout="1")
        assert code == 1
        (why,) = findings(explained, "task")
        assert why["severity"] == "error"
        assert why["problem"].startswith(f"task id {task_id} is queued in `ops.parked`")
        assert why["problem"].endswith(
            ", but no live worker consumes that queue, so it stays PENDING")
        assert why["culprit"] == ("task `ops.parked` of plugin `ops` (platform-ops 1.2.3), "
                                  "queue `ops.parked` of plugin `ops` (platform-ops 1.2.3)")
        assert "`platform worker -Q ops.parked`" in why["fix"]
        behind = re.search(r"behind (\d+) other message", why["problem"])
        ahead.append(int(behind.group(1)) if behind else 0)
    assert sorted(ahead) == [0, 1, 2]  # each message's place in the order consumers take

    # Following the fix: a worker for the queue runs them, and the doctor is content.
    broker_env.worker("-Q", "ops.parked")
    assert app.AsyncResult(ids[-1]).get(timeout=60) == 2
    code, done = doctor(broker_env, "--task-id", ids[-1])
    assert code == 0, done
    assert findings(done, "task")[0]["problem"] == f"task id {ids[-1]} is SUCCESS"
    code, report = doctor(broker_env)
    assert code == 0, report


def test_unknown_task_id(ops: PlatformEnv) -> None:
    code, report = doctor(ops, "--task-id", "no-such-id", timeout="1")
    assert code == 1
    (why,) = findings(report, "task")
    assert why["severity"] == "warning"
    assert "task id no-such-id is unknown" in why["problem"]
    assert "check the id" in why["fix"]


def test_task_held_for_a_long_delay(ops: PlatformEnv, redis_url: str) -> None:
    ops.set(PLATFORM_BROKER_URL=redis_url)
    task_id = ops.host().app.tasks["ops.parked"].apply_async((1,), countdown=7200).id
    _, report = doctor(ops, "--task-id", task_id, timeout="1")
    (why,) = findings(report, "task")
    assert why["problem"].startswith(f"task id {task_id} is held until "), why
    assert "sends it to queue `ops.parked` when due" in why["problem"]
    assert why["culprit"].startswith("task `ops.parked` of plugin `ops`")


def test_task_held_by_a_worker(ops: PlatformEnv, redis_url: str) -> None:
    ops.set(PLATFORM_BROKER_URL=redis_url)
    ops.worker()
    app = ops.host().app
    # A countdown keeps the task on the worker (scheduled) without running it.
    task_id = app.tasks["ops.ping"].apply_async(countdown=600).id
    code, report = doctor(ops, "--task-id", task_id)
    assert code == 0, report
    (why,) = findings(report, "task")
    assert why["severity"] == "info"
    assert "waits for its ETA on worker" in why["problem"]


SLEEPY = """
import time
from pathlib import Path
from platform_sdk import Queue, hookimpl, task

@task(name="nap.sleep", queue="nap", idempotent=True)
def sleep(marker):
    Path(marker).write_text("started")
    time.sleep(120)

@hookimpl
def register_tasks(register):
    register(sleep)

@hookimpl
def register_queues(register):
    register(Queue(name="nap"))
"""


def test_task_of_a_killed_worker(platform_env: PlatformEnv, redis_url: str,
                                 tmp_path: Path) -> None:
    """Redis keeps a late-acknowledged message of a dead worker until the visibility timeout."""
    platform_env.plugins.add("nap", SLEEPY)
    platform_env.set(PLATFORM_PLUGINS="nap", PLATFORM_BROKER_URL=redis_url)
    worker = platform_env.worker()
    marker = tmp_path / "started"
    task_id = platform_env.host().app.tasks["nap.sleep"].apply_async((str(marker),)).id
    wait_until(marker.exists, 60, "the task to start")
    os.killpg(worker.popen.pid, signal.SIGKILL)
    worker.popen.wait(10)

    code, report = doctor(platform_env, "--task-id", task_id, timeout="1")
    assert code == 1
    (why,) = findings(report, "task")
    assert why["severity"] == "warning"
    assert "was delivered to a worker at" in why["problem"]
    assert "never acknowledged, and no live worker holds it now" in why["problem"]
    assert "Redis puts it back on queue `nap` after the visibility timeout" in why["problem"]
    assert "task `nap.sleep`" in why["culprit"]
    assert "`platform worker -Q nap`" in why["fix"]


def test_queue_of_a_route_without_consumer(ops: PlatformEnv, redis_url: str) -> None:
    ops.set(PLATFORM_BROKER_URL=redis_url)
    ops.worker("-Q", "ops.work")
    code, report = doctor(ops)
    assert code == 1
    (idle,) = findings(report, "route-without-worker")
    assert idle["severity"] == "warning"
    assert "no live worker consumes queue `ops.parked`" in idle["problem"]
    assert "task `ops.parked`" in idle["culprit"]
    assert "route `ops.parked` (ops)" in idle["culprit"]
    assert "`platform worker -Q ops.parked`" in idle["fix"]


def test_worker_without_the_plugin_consuming_its_queue(ops: PlatformEnv, redis_url: str,
                                                       plugins: Any) -> None:
    """A worker of other plugins on the queue would discard the task as unregistered."""
    ops.set(PLATFORM_BROKER_URL=redis_url)
    plugins.add("bystander", """
from platform_sdk import Queue, hookimpl
@hookimpl
def register_queues(register):
    register(Queue(name="bystander"))
""")
    env = {**ops.environ, "PLATFORM_PLUGINS": "bystander"}
    node = f"stranger@{socket.gethostname()}"
    log = ops.logs / "stranger.log"
    with log.open("wb") as fh:
        popen = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "platform_core.celery_app", "worker",
             "-Q", "ops.parked", "-n", node, "-c", "1", "-l", "INFO", "--without-gossip", "--without-mingle"],
            env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
            cwd=ops.home.parent)
    stranger = Process(popen, log, node)
    ops.processes.append(stranger)
    stranger.wait_for_log(" ready.")

    code, report = doctor(ops)
    assert code == 1
    (lost,) = findings(report, "unregistered-task")
    assert lost["severity"] == "error"
    assert f"worker(s) {node} consume queue `ops.parked` but do not know task `ops.parked`" \
        in lost["problem"]
    assert "plugin `ops` (platform-ops 1.2.3)" in lost["culprit"]


def test_visibility_timeout_in_the_command(platform_env: PlatformEnv, redis_url: str) -> None:
    platform_env.plugins.add("slow", """
from platform_sdk import Queue, hookimpl, task

@task(name="slow.crunch", queue="slow", time_limit=7200, idempotent=True)
def crunch():
    return 1

@hookimpl
def register_tasks(register):
    register(crunch)

@hookimpl
def register_queues(register):
    register(Queue(name="slow"))
""")
    """The platform refuses to start such a task, and doctor says why and what to do."""
    platform_env.set(PLATFORM_PLUGINS="slow", PLATFORM_BROKER_URL=redis_url)
    result = platform_env.run("doctor", timeout=60)
    assert result.returncode == 2, output_of(result)
    assert ("task `slow.crunch` has time_limit 7200s, which runs past the visibility timeout "
            "(3600s, less a 60s margin)") in result.stderr
    assert "raise PLATFORM_VISIBILITY_TIMEOUT to at least 7260" in result.stderr


# --- beat ------------------------------------------------------------------------------

HOLD_LOCK = """
import fcntl, sys, time
f = open(sys.argv[1], "a+")
if sys.argv[2] == "flock":
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
else:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
f.seek(0); f.truncate(); f.write("beathost:4242"); f.flush()
print("locked", flush=True)
time.sleep(300)
"""


def with_beat(env: PlatformEnv) -> PlatformEnv:
    env.plugins.add("ops", OPS + BEAT, distribution="platform-ops", version="1.2.3")
    return env.set(PLATFORM_PLUGINS="ops")


@pytest.mark.parametrize("kind", ["lockf", "flock"])
def test_beat_lock_file_on_the_embedded_broker(platform_env: PlatformEnv, kind: str) -> None:
    ops = with_beat(platform_env)
    code, report = doctor(ops, timeout="0.5")
    assert code == 1
    (missing,) = findings(report, "beat")
    assert missing["severity"] == "warning"
    assert "no beat is running" in missing["problem"]
    assert "`ops.ping-hourly` (ops)" in missing["culprit"]
    assert missing["fix"] == "start exactly one scheduler: `platform beat`"

    ops.home.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(ops.home / "beat.lock"),
                               kind], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        _, report = doctor(ops, timeout="0.5")
        (running,) = findings(report, "beat")
        assert running["severity"] == "info"
        assert running["problem"] == "beat is running (beathost:4242)"
    finally:
        holder.kill()
        holder.wait(10)
    _, report = doctor(ops, timeout="0.5")
    assert findings(report, "beat")[0]["severity"] == "warning"


def test_beat_lock_key_on_redis(platform_env: PlatformEnv, redis_url: str) -> None:
    import redis

    ops = with_beat(platform_env).set(PLATFORM_BROKER_URL=redis_url)
    code, report = doctor(ops, timeout="0.5")
    assert code == 1
    (missing,) = findings(report, "beat")
    assert missing["severity"] == "warning"
    assert "Redis key `platform:beat:lock`" in missing["problem"]

    client = redis.Redis.from_url(redis_url)
    client.set("platform:beat:lock", "beathost:4242", ex=300)
    client.close()
    _, report = doctor(ops, timeout="0.5")
    (running,) = findings(report, "beat")
    assert running == {"check": "beat", "severity": "info",
                       "problem": "beat is running (beathost:4242)", "culprit": "", "fix": ""}


def test_text_output_names_culprit_and_fix(ops: PlatformEnv, tmp_path: Path) -> None:
    app = ops.host().app
    app.tasks["ops.parked"].apply_async((1,))
    result = ops.run("doctor", "--timeout", "0.5", timeout=120)
    assert result.returncode == 1, output_of(result)
    out = result.stdout
    assert out, output_of(result)
    assert "error  queue `ops.parked` holds 1 waiting message(s)" in out
    assert "culprit: queue `ops.parked` of plugin `ops` (platform-ops 1.2.3)" in out
    assert "fix: start a worker that consumes it: `platform worker -Q ops.parked`" in out
    assert "error(s)" in out.splitlines()[-1]
