"""Run spans that reach an OTLP receiver when every pool child is recycled.

Plain Celery traced as the contrib instrumentation documents it, and the platform with
PLATFORM_TRACING=otlp, run the same tasks on Redis with ``--max-tasks-per-child 1``
(and, for the platform, a memory ceiling every child exceeds); the report counts the
``run/`` spans the receiver got.

    python bench/tracing_loss.py [--tasks 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

from bench.otlp_sink import count, start_receiver
from bench.throughput import REDIS, ROOT, environment, install_plugin

SIDES = {
    "plain Celery + contrib, --max-tasks-per-child 1": ("plain", ["--max-tasks-per-child", "1"]),
    "platform, --max-tasks-per-child 1": ("platform", ["--max-tasks-per-child", "1"]),
    "platform, --max-memory-per-child 1 (KiB)": ("platform", ["--max-memory-per-child", "1"]),
}


def run(kind: str, recycle: list[str], env: dict[str, str], tasks: int, logs: Path) -> int:
    receiver = start_receiver()
    env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
           "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "PLATFORM_TRACING": "otlp"}
    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    node = f"loss-{uuid.uuid4().hex[:6]}@%h"
    common = ["-n", node, "-c", "2", "-Q", "bench", "--without-gossip", "--without-mingle",
              "-l", "WARNING", *recycle]
    if kind == "plain":
        worker = [sys.executable, "-m", "celery", "-A", "bench.plain_traced_app", "worker",
                  *common]
        setup = ("from bench.plain_traced_app import noop, init_celery_tracing\n"
                 "init_celery_tracing()\n")
    else:
        worker = [sys.executable, "-m", "platform_core", "worker", *common]
        setup = "from bench.plugin import noop\n"
    log = logs / f"{kind}-{uuid.uuid4().hex[:4]}.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(worker, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=ROOT)
    try:
        code = (f"{setup}results = [noop.delay() for _ in range({tasks})]\n"
                "[r.get(timeout=120) for r in results]\n")
        subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT, timeout=300)
        deadline = time.monotonic() + 15  # the batch processor's 5 s delay, three times over
        while count(receiver, "run/") < tasks and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(1)
        assert receiver.server is not None
        receiver.server.shutdown()
    return count(receiver, "run/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        site, home, logs = Path(tmp, "site"), Path(tmp, "home"), Path(tmp, "logs")
        logs.mkdir()
        install_plugin(site)
        env = environment(site, home)
        env["PLATFORM_PLUGINS"] = "bench"
        print(f"{args.tasks} tasks, Redis {REDIS}, 2 prefork children, OTLP/HTTP receiver")
        for label, (kind, recycle) in SIDES.items():
            got = run(kind, recycle, env, args.tasks, logs)
            print(f"{label:50} {got:3d} of {args.tasks} run spans received")


if __name__ == "__main__":
    os.environ.setdefault("BENCH_REDIS_URL", REDIS)
    main()
