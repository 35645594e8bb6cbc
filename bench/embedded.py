"""The embedded broker against Redis: start to ready, draining, idle shutdown.

For each broker: N no-op tasks are sent in bulk, then two ``platform worker`` processes
(the platform's default tuning) start; the report gives the first worker's time from
spawn to "ready", the rate at which the two drain the queue, and the time from SIGTERM
to exit once they are idle. Sides alternate; medians and the spread are reported.

    python -m bench.embedded [--tasks 2000] [--rounds 3] [--src DIR]

``--src`` runs the embedded side once more with the core and SDK of another checkout
(``DIR/core/src``, ``DIR/sdk/src``) first on the path: a before/after in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

from bench.throughput import ROOT, install_plugin

COUNTER_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/12")


def wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.005)


def one_round(side: str, tasks: int, src: Path | None) -> tuple[float, float, float]:
    counter = redis.Redis.from_url(COUNTER_URL)
    counter.flushdb()
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp, "site")
        install_plugin(site)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")}
        paths = [str(site), str(ROOT)]
        if src is not None:
            paths[:0] = [str(src / "core" / "src"), str(src / "sdk" / "src")]
        env.update(PLATFORM_HOME=str(Path(tmp, "home")), PLATFORM_PLUGINS="bench",
                   BENCH_REDIS_URL=COUNTER_URL, PYTHONPATH=os.pathsep.join(paths))
        if side == "redis":
            redis.Redis.from_url(BROKER_URL).flushdb()
            env["PLATFORM_BROKER_URL"] = BROKER_URL
        send = ("from bench.plugin import noop\n"
                f"for _ in range({tasks}): noop.delay()\n")
        subprocess.run([sys.executable, "-c", send], env=env, cwd=ROOT, check=True)
        logs = [Path(tmp, f"worker-{i}.log") for i in range(2)]
        started = time.perf_counter()
        workers = []
        for log in logs:
            with log.open("wb") as fh:
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "platform_core", "worker", "-Q", "bench",
                     "-n", f"w{uuid.uuid4().hex[:6]}@%h", "--without-gossip",
                     "--without-mingle", "--without-heartbeat"],
                    env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT,
                    start_new_session=True))
        try:
            wait(lambda: b" ready." in logs[0].read_bytes(), 120, f"{side} worker ready")
            ready = time.perf_counter() - started
            wait(lambda: all(b" ready." in log.read_bytes() for log in logs), 120, "both ready")
            first = int(counter.get("bench:done") or 0)
            began = time.perf_counter()
            wait(lambda: int(counter.get("bench:done") or 0) >= tasks, 900, f"{tasks} runs")
            drain = (tasks - first) / (time.perf_counter() - began)
            time.sleep(1.0)  # idle
            stopping = time.perf_counter()
            for worker in workers:
                os.killpg(worker.pid, signal.SIGTERM)
            for worker in workers:
                worker.wait(60)
            idle_exit = time.perf_counter() - stopping
        finally:
            for worker in workers:
                if worker.poll() is None:
                    os.killpg(worker.pid, signal.SIGKILL)
    return ready, drain, idle_exit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--src", type=Path, help="another checkout to compare with")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    sides: dict[str, tuple[str, Path | None]] = {"embedded": ("embedded", None),
                                                 "redis": ("redis", None)}
    if args.src:
        sides["embedded-before"] = ("embedded", args.src.resolve())
    results: dict[str, list[tuple[float, float, float]]] = {s: [] for s in sides}
    for _ in range(args.rounds):
        for name, (side, src) in sides.items():
            results[name].append(one_round(side, args.tasks, src))
    print(f"two workers (platform defaults), {args.tasks} no-op tasks, {args.rounds} rounds")
    print(f"{'':16} {'ready s':>8} {'drain tasks/s':>14} {'idle exit s':>12}   runs")
    rows = {}
    for name, runs in results.items():
        ready, drain, idle = (statistics.median(r[i] for r in runs) for i in range(3))
        rows[name] = {"ready": ready, "drain": drain, "idle_exit": idle, "runs": runs}
        print(f"{name:16} {ready:8.2f} {drain:14.0f} {idle:12.2f}   "
              + ", ".join(f"{r[0]:.2f}/{r[1]:.0f}/{r[2]:.2f}" for r in runs))
    if "embedded-before" in rows:
        before, after = rows["embedded-before"], rows["embedded"]
        print(f"embedded now / before: ready {after['ready'] / before['ready']:.2f}, drain "
              f"{after['drain'] / before['drain']:.2f}, idle exit "
              f"{after['idle_exit'] / before['idle_exit']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"tasks": args.tasks, "sides": rows}, indent=2))


if __name__ == "__main__":
    main()
