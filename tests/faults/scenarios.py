"""The fault scenarios, each run unchanged against plain Celery and the platform.

A scenario returns an :class:`Outcome`: how many times the work completed, what the
dead-letter store holds, whether the workers still serve, and what else was seen.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.faults.harness import VISIBILITY_TIMEOUT, Lab, settle
from tests.support import wait_until

SECRET = "s3cr3t-card-4111111111111111"


@dataclass
class Outcome:
    completed: int
    expected: int
    dead_lettered: list[str] = field(default_factory=list)  # reasons
    serving: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        return self.completed == self.expected

    def summary(self) -> str:
        if self.expected == 0:
            head = "nothing to run"
        elif self.exactly_once:
            head = f"completed exactly once ({self.completed}/{self.expected})"
        elif self.completed < self.expected:
            head = f"LOST {self.expected - self.completed} of {self.expected}"
        else:
            head = f"DUPLICATED: {self.completed} runs for {self.expected}"
        parts = [] if self.expected == 0 else [head]
        if self.dead_lettered:
            parts.append(f"{len(self.dead_lettered)} dead-lettered ({self.dead_lettered[0]})")
        elif self.expected == 0:
            parts.append("nothing kept")
        parts.append("workers serving" if self.serving else "WORKER STOPPED SERVING")
        return "; ".join(parts + [n for n in self.notes if n])


def _key(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def child_sigkill(lab: Lab) -> Outcome:
    """SIGKILL of the pool child running a task."""
    lab.worker()
    key = _key("child")
    lab.send("faults.slow", key, 2)
    os.kill(lab.wait_started(key), signal.SIGKILL)
    _wait_quietly(lambda: lab.count(f"done:{key}") >= 1, 30)
    settle(3)
    return Outcome(lab.count(f"done:{key}"), 1, serving=lab.serving(),
                   notes=[f"started {lab.count(f'started:{key}')}x"])


def worker_sigkill(lab: Lab) -> Outcome:
    """SIGKILL of the whole worker mid-task; a new worker starts."""
    first = lab.worker()
    key = _key("worker")
    lab.send("faults.slow", key, 2)
    lab.wait_started(key)
    os.killpg(first.popen.pid, signal.SIGKILL)
    first.popen.wait(10)
    lab.worker()
    _wait_quietly(lambda: lab.count(f"done:{key}") >= 1, VISIBILITY_TIMEOUT + 30)
    settle(3)
    return Outcome(lab.count(f"done:{key}"), 1, serving=lab.serving(),
                   notes=[f"started {lab.count(f'started:{key}')}x"])


def poison_task(lab: Lab) -> Outcome:
    """A task that kills its own process every time it runs."""
    lab.worker()
    key = _key("poison")
    result = lab.send("faults.suicide", key)
    _wait_quietly(lambda: result.state in ("FAILURE",) or _dead(lab, result.id), 120)
    settle(4)
    attempts = lab.count(f"attempts:{key}")
    reasons = [d["reason"] for d in lab.dead_letters() if d.get("task_id") == result.id]
    outcome = Outcome(0, 0, reasons, serving=lab.serving(),
                      notes=[f"ran {attempts}x", f"result {result.state}"])
    return outcome


def redis_restart(lab: Lab) -> Outcome:
    """The broker (an append-only Redis owned by the scenario) restarts mid-run."""
    lab.worker()
    keys = [_key("restart") for _ in range(30)]
    for key in keys:
        lab.send("faults.slow", key, 0.2)
    _wait_quietly(lambda: sum(lab.count(f"done:{k}") for k in keys) >= 5, 30)
    lab.broker_restart()
    _wait_quietly(lambda: all(lab.count(f"done:{k}") >= 1 for k in keys), 90)
    settle(VISIBILITY_TIMEOUT + 2)
    done = [lab.count(f"done:{k}") for k in keys]
    lost, twice = done.count(0), sum(1 for d in done if d > 1)
    completed = len(keys) - lost + sum(d - 1 for d in done if d > 1)
    return Outcome(completed, len(keys), serving=lab.serving(60),
                   notes=[f"{lost} lost, {twice} ran twice"])


def garbage(lab: Lab) -> Outcome:
    """Undecodable and malformed messages pushed straight onto the worker's queue."""
    lab.worker()
    client = lab.broker
    for raw in _garbage(lab.queue):
        client.lpush(lab.queue, raw)
    settle(3)
    serving = lab.serving()
    reasons = [d["reason"] for d in lab.dead_letters()]
    leaked = SECRET in lab.logs()
    return Outcome(0, 0, reasons, serving=serving,
                   notes=[f"{len(_garbage(lab.queue))} pushed",
                          "args in logs" if leaked else "args not logged"])


def unknown_task(lab: Lab) -> Outcome:
    """A message naming a task no worker has."""
    lab.worker()
    result = lab.producer.send_task("faults.missing", args=[SECRET], queue=lab.queue)
    settle(3)
    reasons = [d["reason"] for d in lab.dead_letters() if d.get("task_id") == result.id]
    leaked = SECRET in lab.logs()
    return Outcome(0, 0, reasons, serving=lab.serving(),
                   notes=["args in logs" if leaked else "args not logged",
                          f"result {result.state}"])


def long_countdown(lab: Lab) -> Outcome:
    """A countdown longer than the visibility timeout."""
    lab.worker()
    key = _key("countdown")
    lab.send("faults.record", key, countdown=VISIBILITY_TIMEOUT * 4)
    _wait_quietly(lambda: lab.count(f"done:{key}") >= 1, VISIBILITY_TIMEOUT * 4 + 30)
    settle(VISIBILITY_TIMEOUT * 3)
    return Outcome(lab.count(f"done:{key}"), 1, serving=lab.serving())


def two_beats(lab: Lab) -> Outcome:
    """Two beat processes against one broker for several periods (1 s entry)."""
    lab.worker()
    lab.beat()
    lab.beat()
    client = lab.ledger
    _wait_quietly(lambda: client.llen("ticks") >= 1, 30)
    start = time.time()
    settle(8)
    ticks = sorted(float(t) for t in client.lrange("ticks", 0, -1))
    in_window = [t for t in ticks if start <= t < start + 8]
    doubled = sum(1 for a, b in itertools.pairwise(in_window) if b - a < 0.5)
    return Outcome(len(in_window), len(in_window) - doubled, serving=lab.serving(),
                   notes=[f"{len(in_window)} dispatches in 8 one-second periods, "
                          f"{doubled} of them duplicates"])


def broken_plugin(lab: Lab) -> Outcome:
    """A plugin (or a module of the app) that raises on import."""
    source = "raise RuntimeError('broken at import')\n"
    if lab.kind == "plain":
        path = lab.root / "site" / "broken_tasks.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        lab.env.vars["PYTHONPATH"] = f"{lab.root / 'site'}{os.pathsep}{lab.env.vars['PYTHONPATH']}"
        process = lab.worker("--include", "broken_tasks", ready=False)
    else:
        lab.env.plugins.add("broken", source, distribution="platform-broken")
        lab.env.set(PLATFORM_PLUGINS="faults,broken")
        process = lab.worker(ready=False)
    started = _wait_quietly(lambda: " ready." in process.output() or not process.alive(), 60)
    up = started and process.alive()
    return Outcome(0, 0, serving=up and lab.serving(),
                   notes=["worker started" if up else "worker did not start (import error)",
                          "broken plugin reported" if "plugin `broken`" in process.output()
                          else ""])


def warm_shutdown(lab: Lab) -> Outcome:
    """SIGTERM (warm shutdown) with tasks running and more reserved; a new worker follows."""
    first = lab.worker()
    keys = [_key("warm") for _ in range(6)]
    for key in keys:
        lab.send("faults.slow", key, 2)
    lab.wait_started(keys[0])
    first.popen.send_signal(signal.SIGTERM)
    first.popen.wait(60)
    lab.worker()
    _wait_quietly(lambda: all(lab.count(f"done:{k}") >= 1 for k in keys), 60)
    settle(VISIBILITY_TIMEOUT + 2)
    done = [lab.count(f"done:{k}") for k in keys]
    completed = sum(done)
    return Outcome(completed, len(keys), serving=lab.serving(),
                   notes=[f"{done.count(0)} lost, {sum(1 for d in done if d > 1)} ran twice"])


def rate_limit_60m(lab: Lab) -> Outcome:
    """75 tasks limited to 60/m on three workers: Celery's ``rate_limit`` (per worker)
    beside the platform's ``global_rate_limit`` (one bucket for all)."""
    for _ in range(3):
        lab.worker()
    keys = [_key("limited") for _ in range(75)]
    for key in keys:
        lab.send("faults.limited", key)
    _wait_quietly(lambda: all(lab.count(f"done:{k}") >= 1 for k in keys), 150)
    settle(3)
    done = [lab.count(f"done:{k}") for k in keys]
    stamps = sorted(float(t) for t in lab.ledger.lrange("stamps", 0, -1))
    start, busiest = 0, 0
    for end, t in enumerate(stamps):
        while stamps[start] <= t - 60:
            start += 1
        busiest = max(busiest, end - start + 1)
    return Outcome(sum(done), len(keys), serving=lab.serving(),
                   notes=[f"busiest sliding minute: {busiest} runs (limit 60)",
                          f"{done.count(0)} lost, {sum(1 for d in done if d > 1)} ran twice"])


def _sentinel_failover(lab: Lab) -> Outcome:
    from tests.faults.sentinel_failover import sentinel_failover

    return sentinel_failover(lab)


def _redis_half_open(lab: Lab) -> Outcome:
    from tests.faults.half_open import redis_half_open

    return redis_half_open(lab)  # type: ignore[no-any-return]


def _rabbitmq_half_open(lab: Lab) -> Outcome:
    from tests.faults.half_open import rabbitmq_half_open

    return rabbitmq_half_open(lab)  # type: ignore[no-any-return]


SCENARIOS: dict[str, Callable[[Lab], Outcome]] = {
    "SIGKILL of a pool child mid-task": child_sigkill,
    "SIGKILL of the whole worker mid-task": worker_sigkill,
    "a task that kills its own process every time": poison_task,
    "Redis restarted mid-run (append-only)": redis_restart,
    "garbage pushed onto a queue": garbage,
    "an unknown task name": unknown_task,
    "a countdown longer than the visibility timeout": long_countdown,
    "two beat processes for 8 periods": two_beats,
    "a plugin that raises on import": broken_plugin,
    "warm shutdown with tasks in flight": warm_shutdown,
    "Redis Sentinel failover mid-stream": _sentinel_failover,
    "a half-open link to Redis (10 tasks sent after it froze)": _redis_half_open,
    "a half-open link to RabbitMQ (10 tasks sent after it froze)": _rabbitmq_half_open,
    "three workers, a 60/m rate limit": rate_limit_60m,
}


def _wait_quietly(check: Callable[[], object], timeout: float) -> bool:
    try:
        wait_until(check, timeout, "the scenario", interval=0.2)
    except AssertionError:
        return False
    return True


def _dead(lab: Lab, task_id: str) -> bool:
    return lab.kind == "platform" and any(d.get("task_id") == task_id
                                          for d in lab.dead_letters())


def _garbage(queue: str) -> list[bytes]:
    import base64
    import json

    def envelope(body: bytes, content_type: str, headers: dict[str, object]) -> bytes:
        return json.dumps({
            "body": base64.b64encode(body).decode(), "content-encoding": "utf-8",
            "content-type": content_type, "headers": headers,
            "properties": {"body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
                           "delivery_info": {"exchange": queue, "routing_key": queue},
                           "delivery_mode": 2, "priority": 0},
        }).encode()

    task = {"task": "faults.record", "id": str(uuid.uuid4()), "lang": "py"}
    return [
        b"\x00\xff not json at all " + SECRET.encode(),
        json.dumps({"hello": SECRET}).encode(),
        envelope(b"{not json " + SECRET.encode(), "application/json", task),
        envelope(b"\x80\x04\x95" + SECRET.encode(), "application/x-python-serialize", task),
    ]


class OwnedRedis:
    """A redis-server of the scenario's own, append-only, that it can kill and restart.

    ``durable=False`` keeps nothing on disk: for a load run that must measure the
    workers, not the disk's fsync."""

    def __init__(self, root: Path, name: str = "redis", durable: bool = True) -> None:
        self.durable = durable
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *(["--appendonly", "yes", "--appendfsync", "always"] if self.durable
               else ["--appendonly", "no"]), "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 20, "the scenario's redis-server")

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def crash_and_restart(self, down: float = 2.0) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        time.sleep(down)
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
