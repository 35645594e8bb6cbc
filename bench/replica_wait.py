"""What ``redis_wait_replicas`` costs: the enqueue rate of one producer without and with
``WAIT`` for one replica after each message.

A Redis master and one replica of the bench's own run on loopback (nothing on disk);
each round is a fresh producer process sending ``--tasks`` no-op tasks with
``delay()`` (imports and the first message not timed), sides alternating. The queue
is checked to hold every message, and the replica to hold them too.

    python -m bench.replica_wait [--tasks 5000] [--rounds 3]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import redis
from tests.faults.sentinel_cluster import SentinelCluster

from bench.throughput import ROOT, arguments, environment, install_plugin

SIDES = {"no-wait": "redis_wait_replicas = 0 (default)",
         "wait-1": "redis_wait_replicas = 1 (WAIT 1 1000 after each publish)"}
CODE = ("import time\nfrom bench.plugin import noop\nnoop.delay()\n"
        "t = time.perf_counter()\nfor _ in range({n}): noop.delay()\n"
        "print(time.perf_counter() - t)\n")


def one_round(side: str, env: dict[str, str], tasks: int, servers: list[redis.Redis]
              ) -> float:
    for server in servers[:1]:
        server.flushdb()
    run_env = dict(env, PLATFORM_REDIS_WAIT_REPLICAS="1" if side == "wait-1" else "0")
    done = subprocess.run([sys.executable, "-c", CODE.format(n=tasks - 1)], env=run_env,
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    seconds = float(done.stdout.strip().splitlines()[-1])
    master, replica = servers
    if side == "wait-1":  # every message was confirmed: the replica holds them already
        assert replica.llen("bench") == tasks, replica.llen("bench")
    assert master.llen("bench") == tasks, master.llen("bench")
    return (tasks - 1) / seconds


def main() -> None:
    args, sides = arguments(__doc__ or "", 5000, SIDES)
    with tempfile.TemporaryDirectory() as tmp:
        cluster = SentinelCluster(Path(tmp, "redis"), sentinels=0)
        cluster.start()
        try:
            master_port, replica_port = cluster.data_ports
            servers = [cluster.client(master_port), cluster.client(replica_port)]
            site = Path(tmp, "site")
            install_plugin(site)
            env = environment(site, Path(tmp, "home"))
            url = f"redis://127.0.0.1:{master_port}/0"
            env.update(PLATFORM_BROKER_URL=url, BENCH_REDIS_URL=url)
            rates: dict[str, list[float]] = {side: [] for side in sides}
            for _ in range(args.rounds):
                for side in sides:
                    rates[side].append(one_round(side, env, args.tasks, servers))
        finally:
            cluster.stop()
    base = statistics.median(rates[sides[0]])
    print(f"{args.tasks} tasks per round, {args.rounds} rounds, one producer, loopback")
    for side in sides:
        median = statistics.median(rates[side])
        print(f"  {side:8} {SIDES[side]:55} {median:8.0f}/s (min {min(rates[side]):.0f}, "
              f"max {max(rates[side]):.0f}) {median / base:6.2f}x")


if __name__ == "__main__":
    main()
