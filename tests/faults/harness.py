"""One side of a fault scenario: plain Celery with its defaults, or the platform.

Both sides run the same task bodies (:mod:`tests.faults.bodies`) against the same kind
of Redis, started, fed and killed by the same scenario code, so the outcomes compare.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.support import PlatformEnv, PluginFactory, Process, wait_until

ROOT = Path(__file__).resolve().parents[2]
VISIBILITY_TIMEOUT = 6  # seconds; both sides, shortened so redelivery happens in a test
TASK_TIME_LIMIT = 5  # the platform refuses limits that outlast the visibility timeout
MAX_REDELIVERIES = 2
SIDES = ("plain", "platform")


@dataclass
class Lab:
    kind: str
    root: Path
    redis_url: str  # the broker
    ledger_url: str  # where task bodies record what they did
    env: PlatformEnv
    queue: str
    _producer: Any = None
    owned_redis: Any = None
    producer_urls: tuple[str, str] | None = None  # broker, results; default: redis_url
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, kind: str, root: Path, redis_url: str, ledger_url: str,
               **settings: str) -> Lab:
        assert kind in SIDES, kind
        root.mkdir(parents=True, exist_ok=True)
        env = PlatformEnv(home=root / "home", logs=root / "logs",
                          plugins=PluginFactory(root / "site"))
        env.vars.update(FAULTS_BROKER_URL=redis_url, FAULTS_LEDGER_URL=ledger_url,
                        PYTHONPATH=str(ROOT),
                        FAULTS_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT))
        lab = cls(kind, root, redis_url, ledger_url, env,
                  "celery" if kind == "plain" else "faults")
        if kind == "platform":
            info = env.plugins.site / "platform_faults-0.0.0.dist-info"
            info.mkdir(parents=True)
            (info / "METADATA").write_text(
                "Metadata-Version: 2.1\nName: platform-faults\nVersion: 0.0.0\n")
            (info / "entry_points.txt").write_text(
                "[platform.plugins]\nfaults = tests.faults.plugin\n")
            env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_PLUGINS="faults",
                    PLATFORM_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT),
                    PLATFORM_TASK_TIME_LIMIT=str(TASK_TIME_LIMIT),
                    PLATFORM_TASK_SOFT_TIME_LIMIT=str(TASK_TIME_LIMIT - 1),
                    PLATFORM_MAX_REDELIVERIES=str(MAX_REDELIVERIES),
                    PLATFORM_BEAT_LOCK_TIMEOUT="5", **settings)
        return lab

    # -- processes -------------------------------------------------------------------

    def _spawn(self, argv: list[str], name: str) -> Process:
        log = self.env.logs / f"{self.kind}-{name}-{uuid.uuid4().hex[:6]}.log"
        with log.open("wb") as fh:
            popen = subprocess.Popen(argv, env=self.env.environ, stdout=fh,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=self.root)
        process = Process(popen, log)
        self.env.processes.append(process)
        return process

    def worker(self, *extra: str, ready: bool = True) -> Process:
        node = f"{self.kind}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        common = ["-n", node, "-c", "2", "--without-gossip", "--without-mingle", "-l", "INFO",
                  *extra]
        if self.kind == "plain":
            argv = [sys.executable, "-m", "celery", "-A", "tests.faults.plain_app", "worker",
                    *common]
        else:
            argv = self.env.command("worker", *common)
        process = self._spawn(argv, "worker")
        process.node = node
        if ready:
            process.wait_for_log(" ready.")
        return process

    def beat(self) -> Process:
        schedule = self.root / f"beat-{uuid.uuid4().hex[:6]}"
        if self.kind == "plain":
            argv = [sys.executable, "-m", "celery", "-A", "tests.faults.plain_app", "beat",
                    "-s", str(schedule), "-l", "INFO"]
        else:
            argv = self.env.command("beat", "-l", "INFO")
        return self._spawn(argv, "beat")

    # -- producing and observing ---------------------------------------------------------

    @property
    def producer(self) -> Any:
        if self._producer is None:
            if self.kind == "plain":
                from celery import Celery

                broker, backend = self.producer_urls or (self.redis_url, self.redis_url)
                self._producer = Celery("producer", broker=broker, backend=backend,
                                        set_as_current=False)
                self._producer.conf.task_default_queue = self.queue
                self._producer.conf.broker_transport_options = {
                    "visibility_timeout": VISIBILITY_TIMEOUT}
            else:
                self._producer = self.env.host(bind=False).app
        return self._producer

    def send(self, task: str, *args: Any, **options: Any) -> Any:
        return self.producer.send_task(task, args=list(args), **options)

    @property
    def broker(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    @property
    def ledger(self) -> redis.Redis:
        return redis.Redis.from_url(self.ledger_url)

    def count(self, key: str) -> int:
        return int(self.ledger.get(key) or 0)

    def dead_letters(self) -> list[dict[str, Any]]:
        if self.kind == "plain":
            return []  # plain Celery keeps none
        result = self.env.run("dlq", "list", "--json", timeout=60)
        assert result.returncode == 0, result.stderr
        found: list[dict[str, Any]] = json.loads(result.stdout)
        return found

    def serving(self, timeout: float = 30) -> bool:
        """Whether some worker still completes a fresh task."""
        key = f"ping-{uuid.uuid4().hex[:8]}"
        self.send("faults.record", key)
        try:
            wait_until(lambda: self.count(f"done:{key}") >= 1, timeout, "a fresh task")
        except AssertionError:
            return False
        return True

    def wait_started(self, key: str, timeout: float = 30) -> int:
        wait_until(lambda: self.ledger.get(f"pid:{key}"), timeout, f"task {key} to start")
        return int(self.ledger.get(f"pid:{key}") or 0)

    def broker_restart(self) -> None:
        """Crash and restart the broker; only for labs on a scenario-owned Redis."""
        assert self.owned_redis is not None, "this lab's Redis is shared; it cannot restart"
        self.owned_redis.crash_and_restart()

    def logs(self) -> str:
        return "\n".join(p.output() for p in self.env.processes)

    def kill_all(self) -> None:
        for process in self.env.processes:
            if process.alive():
                os.killpg(process.popen.pid, signal.SIGKILL)
                process.popen.wait(10)

    def release_results(self) -> None:
        """Let go of the producer's results while its result store still answers.

        Celery's Redis result backend unsubscribes from a result's channel when the
        AsyncResult is collected, and retries for seconds to minutes (20 attempts;
        with Sentinel, a discovery in each) when that Redis is gone: collected later,
        in whatever test runs next in this process, that blocks the test.
        """
        if self._producer is None:
            return
        gc.collect()
        consumer = getattr(self._producer.backend, "result_consumer", None)
        if consumer is not None:
            consumer.subscribed_to.clear()
            consumer.stop()

    def close(self) -> None:
        self.release_results()
        self.env.close()


def settle(seconds: float) -> None:
    """Give a duplicate the time to show up before counting."""
    time.sleep(seconds)
