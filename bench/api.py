"""The task API against calling ``delay()`` directly, same run, same broker and worker.

A ``platform worker`` and a ``platform api`` on Redis (broker and result store) serve the
no-op bench task. Rounds alternate between the sides:

- ``delay``: this process enqueues with ``noop.delay()`` in a loop;
- ``api``: this process POSTs ``/tasks/bench.noop`` in a loop over one keep-alive
  connection (httpx), each answered 202 after the broker took the message;
- ``api x4``: four threads POST at once, each over its own connection;
- ``api many``: ``POST /tasks/bench.noop/many`` with 100 calls per request (the bulk path).

It reports submits per second and the ratio to ``delay``. Then, for ``--samples`` tasks,
the time from the submit's 202 to the first Server-Sent Event, and to the first event
a worker caused (its state no longer PENDING), on Redis (pushed) and on the embedded
broker (polled).

    python -m bench.api [--tasks 1000] [--rounds 3] [--samples 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis

from bench.throughput import install_plugin

ROOT = Path(__file__).resolve().parent.parent
REDIS = os.environ.get("BENCH_API_REDIS_URL", "redis://127.0.0.1:6379/13")
KEY = secrets.token_urlsafe(24)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(site: Path, home: Path, broker: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")}
    env.update(PLATFORM_HOME=str(home), PLATFORM_API_KEYS=KEY, BENCH_REDIS_URL=REDIS,
               PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    if broker:
        env["PLATFORM_BROKER_URL"] = broker
    return env


class Stack:
    """A worker and the API, started for one broker and stopped together."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.processes = env, logs, []
        self.url = ""

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen([sys.executable, "-m", "platform_core", *args], env=self.env,
                                   stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def __enter__(self) -> Stack:
        node = f"api-bench-{uuid.uuid4().hex[:6]}@%h"
        worker = self.spawn("worker", "worker", "-n", node, "-c", "2", "-Q", "bench",
                            "--without-gossip", "--without-mingle", "-l", "WARNING")
        port = free_port()
        self.spawn("api", "api", "--plugins", "bench", "--port", str(port),
                   "--log-level", "warning")
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health", headers={"X-API-Key": KEY},
                             timeout=5).json()["workers"]:
                    break
            except (httpx.TransportError, KeyError, TypeError, ValueError):
                pass
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"the worker or the API did not start; see {self.logs}")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def producer(env: dict[str, str]) -> Any:
    os.environ.update({k: v for k, v in env.items() if k.startswith(("PLATFORM_", "BENCH_"))})
    sys.path[:0] = env["PYTHONPATH"].split(os.pathsep)
    from platform_core.host import current

    return current().app.tasks["bench.noop"]


def by_delay(task: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        task.delay()
    return n / (time.perf_counter() - started)


def by_api(url: str, n: int, threads: int = 1) -> float:
    def post(count: int) -> None:
        with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client:
            for _ in range(count):
                response = client.post("/tasks/bench.noop", json={})
                if response.status_code != 202:
                    raise SystemExit(f"submit answered {response.status_code}: {response.text}")

    share = n // threads
    workers = [threading.Thread(target=post, args=(share,)) for _ in range(threads)]
    started = time.perf_counter()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return share * threads / (time.perf_counter() - started)


def by_api_many(url: str, n: int, per_request: int = 100) -> float:
    body = {"calls": [{} for _ in range(per_request)]}
    with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client:
        started = time.perf_counter()
        for _ in range(n // per_request):
            response = client.post("/tasks/bench.noop/many", json=body)
            if response.status_code != 202:
                raise SystemExit(f"submit answered {response.status_code}: {response.text}")
        return (n // per_request) * per_request / (time.perf_counter() - started)


def latencies(url: str, samples: int) -> dict[str, float]:
    first, worker = [], []
    with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client:
        for _ in range(samples):
            task_id = client.post("/tasks/bench.noop", json={}).json()["id"]
            sent = time.perf_counter()
            seen_first = None
            with client.stream("GET", f"/tasks/{task_id}/events") as response:
                for line in response.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    now = time.perf_counter()
                    seen_first = seen_first or now
                    if json.loads(line[6:])["state"] != "PENDING":
                        worker.append(now - sent)
                        break
            first.append((seen_first or time.perf_counter()) - sent)
    return {"first_event_ms": statistics.median(first) * 1000,
            "first_worker_event_ms": statistics.median(worker) * 1000,
            "first_worker_event_p90_ms": statistics.quantiles(worker, n=10)[-1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        root = Path(tmp)
        install_plugin(root / "site")
        client = redis.Redis.from_url(REDIS)
        client.flushdb()
        env = environment(root / "site", root / "home", REDIS)
        (root / "redis").mkdir()
        with Stack(env, root / "redis") as stack:
            task = producer(env)
            sides: dict[str, list[float]] = {"delay": [], "api": [], "api x4": [],
                                             "api many": []}
            for _ in range(options.rounds):
                sides["delay"].append(by_delay(task, options.tasks))
                sides["api"].append(by_api(stack.url, options.tasks))
                sides["api x4"].append(by_api(stack.url, options.tasks, threads=4))
                sides["api many"].append(by_api_many(stack.url, options.tasks * 10))
            medians = {side: statistics.median(rates) for side, rates in sides.items()}
            report["submit_per_s"] = medians
            report["ratio_to_delay"] = {side: rate / medians["delay"]
                                        for side, rate in medians.items()}
            report["redis"] = latencies(stack.url, options.samples)
        embedded = environment(root / "site", root / "home-embedded", None)
        (root / "embedded").mkdir()
        with Stack(embedded, root / "embedded") as stack:
            report["embedded"] = latencies(stack.url, options.samples)
        client.flushdb()
    print(f"submits/s, {options.tasks} tasks, median of {options.rounds} rounds (Redis):")
    for side, rate in report["submit_per_s"].items():
        print(f"  {side:8} {rate:8.0f}/s   {report['ratio_to_delay'][side]:.2f}x delay()")
    print("  (api many: 100 calls per request, 10x the tasks)")
    for broker in ("redis", "embedded"):
        found = report[broker]
        print(f"{broker}: submit -> first SSE event {found['first_event_ms']:.1f} ms, "
              f"-> first event from the worker {found['first_worker_event_ms']:.1f} ms "
              f"(p90 {found['first_worker_event_p90_ms']:.1f} ms), median of "
              f"{options.samples}")
    if options.json:
        options.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
