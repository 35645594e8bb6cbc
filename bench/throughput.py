"""Worker throughput and enqueue rate: plain Celery vs the platform, same run, same tasks.

All sides: Redis on loopback (broker and result store), two prefork children,
JSON, a no-op task that increments a Redis counter and stores its result. Runs
alternate between the sides and the medians are compared; the report gives
platform / plain ratios. Besides tasks per second it reports the CPU time the
worker (main process and pool children, from /proc) spent per task while
draining, which varies less than throughput on a shared machine. The traced
sides export every span to an OTLP/HTTP sink in this process, so tracing's cost
includes encoding and sending.

    python -m bench.throughput [--tasks 5000] [--rounds 3] [--broker amqp://...]

With ``--broker`` the sides consume from that broker instead (results still in Redis).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import redis

from bench.otlp_sink import start_sink
from platform_core.redaction import redact

ROOT = Path(__file__).resolve().parent.parent
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def install_plugin(site: Path) -> None:
    info = site / "platform_bench-0.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: platform-bench\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text("[platform.plugins]\nbench = bench.plugin\n")


def environment(site: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_")}
    env.update(BENCH_REDIS_URL=REDIS, PLATFORM_BROKER_URL=REDIS, PLATFORM_HOME=str(home),
               PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    return env


SIDES = {
    "plain": "plain Celery 5, defaults",
    "platform": "platform, same tuning as plain (no child recycling)",
    "platform-defaults": "platform defaults (1 GiB memory ceiling, quant's 500 MiB hint, "
                         "one task per process: no prefetch on Redis)",
    "plain-traced": "plain Celery + contrib instrumentation, OTLP export",
    "platform-traced": "platform, same tuning, PLATFORM_TRACING=otlp",
}
TRACED = {"plain-traced", "platform-traced"}
UNLIMITED = ["--max-tasks-per-child", str(10**9), "--max-memory-per-child", str(10**9)]


def start_worker(side: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    node = f"{side}-{uuid.uuid4().hex[:6]}@%h"
    common = ["-n", node, "-c", "2", "-Q", "bench", "--without-gossip", "--without-mingle",
              "--without-heartbeat", "-l", "WARNING"]
    if side.startswith("plain"):
        module = "bench.plain_traced_app" if side in TRACED else "bench.plain_app"
        cmd = [sys.executable, "-m", "celery", "-A", module, "worker",
               "-P", "prefork", "--prefetch-multiplier", "4", *common]
    else:
        # An explicit multiplier turns prefetching on, as in plain Celery.
        tuning = [*UNLIMITED, "--prefetch-multiplier", "4"] if side == "platform" else []
        cmd = [sys.executable, "-m", "platform_core", "worker", *tuning, *common]
    with log.open("wb") as fh:
        return subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=ROOT)


def producer(side: str, env: dict[str, str], tasks: int) -> float:
    """Enqueue ``tasks`` with .delay() in a fresh process; return seconds spent enqueuing."""
    if side == "plain":
        setup = "from bench.plain_app import noop"
    elif side == "plain-traced":
        setup = ("from bench.plain_traced_app import noop, init_celery_tracing\n"
                 "init_celery_tracing()")
    else:
        setup = "from bench.plugin import noop; noop.celery_task()"
    code = (f"import time\n{setup}\nnoop.delay()\nt=time.perf_counter()\n"
            f"for _ in range({tasks - 1}): noop.delay()\nprint(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT,
                         capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time (user + system) so far of a process and of its live children."""
    def of(p: int) -> float:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    children = []
    for thread in Path(f"/proc/{pid}/task").iterdir():
        children += Path(thread, "children").read_text().split()
    return of(pid), sum(of(int(c)) for c in children)


Round = tuple[float, float, float, float]  # drain/s, enqueue/s, main and children µs/task


def fresh_queue(broker: str) -> None:
    """Delete the bench queue and exchange: plain Celery and the platform declare them
    with different arguments, which RabbitMQ refuses to redeclare."""
    from kombu import Connection

    with Connection(broker) as conn:
        channel = conn.channel()
        for delete in (channel.queue_delete, channel.exchange_delete):
            with contextlib.suppress(Exception):
                delete("bench")
            channel = conn.channel()  # a refused delete closes the channel


def one_round(side: str, env: dict[str, str], tasks: int, logs: Path) -> Round:
    if "BENCH_BROKER_URL" in env:
        fresh_queue(env["BENCH_BROKER_URL"])
    if side in TRACED:
        env = {**env, "PLATFORM_TRACING": "otlp"}
    else:
        env = {k: v for k, v in env.items() if k != "PLATFORM_TRACING"}
    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    enqueue = producer(side, env, tasks)
    worker = start_worker(side, env, logs / f"{side}.log")
    try:
        deadline = time.monotonic() + 120
        while int(client.get("bench:done") or 0) < 1:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"{side} worker did not start:\n"
                                 + (logs / f"{side}.log").read_text()[-3000:])
            time.sleep(0.005)
        cpu_start = cpu_seconds(worker.pid)
        start, first = time.perf_counter(), int(client.get("bench:done") or 0)
        while (done := int(client.get("bench:done") or 0)) < tasks:
            if time.monotonic() > deadline:
                raise SystemExit(f"{side}: only {done}/{tasks} tasks ran")
            time.sleep(0.005)
        drain = (tasks - first) / (time.perf_counter() - start)
        cpu_end = cpu_seconds(worker.pid)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    per_task = [(b - a) / (tasks - first) * 1e6 for a, b in zip(cpu_start, cpu_end, strict=True)]
    return drain, (tasks - 1) / enqueue, per_task[0], per_task[1]


def arguments(doc: str, tasks: int, known: Iterable[str],
              broker: bool = False) -> tuple[argparse.Namespace, list[str]]:
    """A bench's command line: --tasks, --rounds, --sides (checked against ``known``), --json,
    and with ``broker`` --broker."""
    known = list(known)
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if broker:
        parser.add_argument("--broker", help="consume from this broker instead of Redis")
    parser.add_argument("--tasks", type=int, default=tasks)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sides", default=",".join(known),
                        help=f"comma-separated subset of {', '.join(known)}")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    sides = [s for s in args.sides.split(",") if s]
    unknown = [s for s in sides if s not in known]
    if unknown:
        parser.error(f"unknown sides {', '.join(unknown)}; choose from {', '.join(known)}")
    return args, sides


def main() -> None:
    args, sides = arguments(__doc__ or "", 5000, SIDES, broker=True)
    with tempfile.TemporaryDirectory() as tmp:
        site, home, logs = Path(tmp, "site"), Path(tmp, "home"), Path(tmp, "logs")
        logs.mkdir()
        install_plugin(site)
        env = environment(site, home)
        env["PLATFORM_PLUGINS"] = "bench,admin,quant"  # the bundled plugins loaded alongside
        if args.broker:
            env.update(BENCH_BROKER_URL=args.broker, PLATFORM_BROKER_URL=args.broker,
                       PLATFORM_RESULT_BACKEND=REDIS)
        # the traced sides export every span over OTLP/HTTP to a sink in this process
        env.update(OTEL_EXPORTER_OTLP_ENDPOINT=start_sink(),
                   OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf")
        results: dict[str, list[Round]] = {side: [] for side in sides}
        for _ in range(args.rounds):
            for side, runs in results.items():
                runs.append(one_round(side, env, args.tasks, logs))
    where = f"broker {redact(args.broker)}, results in Redis" if args.broker else f"Redis {REDIS}"
    print(f"{args.tasks} no-op tasks, {args.rounds} rounds each, {where}, 2 prefork children")
    print(f"{'':18} {'worker tasks/s':>16} {'enqueue tasks/s':>16} "
          f"{'worker CPU µs/task (main + children)':>38}")
    medians = {}
    for side, runs in results.items():
        drain, enqueue, main_cpu, child_cpu = (statistics.median(r[i] for r in runs)
                                               for i in range(4))
        medians[side] = (drain, enqueue, main_cpu + child_cpu)
        print(f"{side:18} {drain:16.0f} {enqueue:16.0f} "
              f"{main_cpu + child_cpu:15.0f} ({main_cpu:.0f} + {child_cpu:.0f})   runs: "
              + ", ".join(f"{r[0]:.0f}/{r[1]:.0f}" for r in runs) + f"   ({SIDES[side]})")
    ratios = {}
    for side, base in (("platform", "plain"), ("platform-defaults", "plain"),
                       ("platform-traced", "plain"), ("platform-traced", "platform"),
                       ("plain-traced", "plain"), ("platform-traced", "plain-traced")):
        if side not in medians or base not in medians:
            continue
        drain, enqueue, cpu = medians[side]
        base_drain, base_enqueue, base_cpu = medians[base]
        ratios[f"{side}/{base}"] = {"worker": drain / base_drain, "enqueue": enqueue / base_enqueue,
                                    "cpu_per_task": cpu / base_cpu}
        print(f"ratio {side}/{base}: worker {drain / base_drain:.3f}, "
              f"enqueue {enqueue / base_enqueue:.3f}, worker CPU per task {cpu / base_cpu:.3f}")
    if args.json:
        args.json.write_text(json.dumps({
            "tasks": args.tasks,
            "broker": "redis" if not args.broker else args.broker.partition(":")[0],
            "sides": {side: {"drain": m[0], "enqueue": m[1], "cpu_us_per_task": m[2],
                             "runs": results[side]} for side, m in medians.items()},
            "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
