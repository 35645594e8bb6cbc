"""Enqueue rate from one producer: plain Celery, the platform, peers and the raw limit.

Every side sends the same number of no-op tasks to Redis on loopback, each in a fresh
process (imports and the first message are not timed), and the queue is checked to
hold exactly that many messages afterwards. Sides alternate, round by round; the
report gives medians, the spread, and ratios against plain Celery's ``delay()`` loop
and against the limit: identical pre-serialized envelopes pushed with pipelined
``LPUSH``, one per command, 1,000 commands per round trip.

    python -m bench.enqueue [--tasks 20000] [--rounds 3] [--sides a,b]
"""

from __future__ import annotations

import base64
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis

from bench.throughput import REDIS, ROOT, arguments, environment, install_plugin

TIMED = "import time\n{setup}\nt = time.perf_counter()\n{send}\nprint(time.perf_counter() - t)\n"

SIDES: dict[str, tuple[str, str, str]] = {
    # side: (what it is, setup, timed send of N-1 messages to the queue "bench")
    "plain-delay": ("plain Celery, a delay() loop",
                    "from bench.plain_app import noop\nnoop.delay()",
                    "for _ in range(N): noop.delay()"),
    "plain-group": ("plain Celery, group(...).apply_async()",
                    "from celery import group\nfrom bench.plain_app import noop\nnoop.delay()",
                    "group(noop.s() for _ in range(N)).apply_async()"),
    "platform-delay": ("platform, a delay() loop",
                       "from bench.plugin import noop\nnoop.delay()",
                       "for _ in range(N): noop.delay()"),
    "platform-delay_many": ("platform, delay_many()",
                            "from bench.plugin import noop\nnoop.delay()",
                            "noop.delay_many([()] * N)"),
    "platform-group": ("platform, group(...).apply_async()",
                       "from celery import group\nfrom bench.plugin import noop\nnoop.delay()",
                       "group(noop.s() for _ in range(N)).apply_async()"),
    "platform-chunks": ("platform, chunks(calls, 100).apply_async(): one message per 100",
                        "from bench.plugin import noop\nnoop.delay()",
                        "noop.chunks([()] * N, 100).apply_async()"),
    "rq-enqueue_many": ("RQ, Queue.enqueue_many()",
                        "import redis, rq\nfrom bench.noop import noop\n"
                        "q = rq.Queue('bench', connection=redis.Redis.from_url(URL))\n"
                        "q.enqueue(noop)",
                        "q.enqueue_many([rq.Queue.prepare_data(noop) for _ in range(N)])"),
    "dramatiq-send": ("Dramatiq, a send() loop",
                      "import dramatiq\nfrom dramatiq.brokers.redis import RedisBroker\n"
                      "dramatiq.set_broker(RedisBroker(url=URL))\n"
                      "from bench.noop import noop\n"
                      "actor = dramatiq.actor(noop, queue_name='bench')\n"
                      "actor.send()",
                      "for _ in range(N): actor.send()"),
    "raw-lpush": ("the limit: identical envelopes, pipelined LPUSH",
                  "import redis\nfrom bench.plain_app import noop\nnoop.delay()\n"
                  "client = redis.Redis.from_url(URL)\nraw = client.lindex('bench', 0)",
                  "for at in range(0, N, 1000):\n"
                  "    pipe = client.pipeline(transaction=False)\n"
                  "    for _ in range(min(1000, N - at)): pipe.lpush('bench', raw)\n"
                  "    pipe.execute()"),
}
PEERS = {"rq-enqueue_many": "rq", "dramatiq-send": "dramatiq"}


def queued(client: redis.Redis, side: str) -> int:
    """Tasks waiting: messages, or for chunks the calls their starmap messages carry."""
    if side == "rq-enqueue_many":
        return int(client.llen("rq:queue:bench"))
    if side == "dramatiq-send":
        return int(client.llen("dramatiq:bench"))
    if side == "platform-chunks":
        total = 0
        for raw in client.lrange("bench", 0, -1):
            message = json.loads(raw)
            _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            total += len(kwargs["it"]) if message["headers"]["task"] == "celery.starmap" else 1
        return total
    return int(client.llen("bench"))


def one_round(side: str, env: dict[str, str], tasks: int) -> float:
    """Messages per second of one fresh producer process."""
    _, setup, send = SIDES[side]
    client = redis.Redis.from_url(REDIS)
    client.flushdb()
    code = f"N = {tasks - 1}\nURL = {REDIS!r}\n" + TIMED.format(setup=setup, send=send)
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    seconds = float(done.stdout.strip().splitlines()[-1])
    found = queued(client, side)
    if found != tasks:
        raise SystemExit(f"{side}: {found} messages queued, expected {tasks}")
    client.flushdb()
    return (tasks - 1) / seconds


def available(side: str) -> bool:
    module = PEERS.get(side)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def run(tasks: int, rounds: int, sides: list[str]) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        site, home = Path(tmp, "site"), Path(tmp, "home")
        install_plugin(site)
        env = environment(site, home)
        env["PLATFORM_PLUGINS"] = "bench,admin,quant"
        results: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(rounds):
            for side, runs in results.items():
                runs.append(one_round(side, env, tasks))
    return results


def report(results: dict[str, list[float]], tasks: int) -> dict[str, Any]:
    print(f"enqueue of {tasks} no-op tasks from one producer, Redis {REDIS}, "
          f"{len(next(iter(results.values())))} rounds, sides alternated")
    print(f"{'':22} {'tasks/s':>9} {'spread':>17} {'× plain delay()':>16} {'of the limit':>13}")
    medians = {side: statistics.median(runs) for side, runs in results.items()}
    base, limit = medians.get("plain-delay"), medians.get("raw-lpush")
    rows = {}
    for side, runs in results.items():
        median = medians[side]
        vs_plain = median / base if base else None
        vs_limit = median / limit if limit else None
        rows[side] = {"median": median, "min": min(runs), "max": max(runs),
                      "vs_plain_delay": vs_plain, "vs_limit": vs_limit, "runs": runs}
        print(f"{side:22} {median:9.0f} {min(runs):8.0f}-{max(runs):<8.0f} "
              f"{vs_plain or 0:15.2f}x {vs_limit or 0:12.2f}   ({SIDES[side][0]})")
    return rows


def main() -> None:
    args, sides = arguments(__doc__ or "", 20_000, SIDES)
    skipped = [s for s in sides if not available(s)]
    for side in skipped:
        print(f"skipping {side}: {PEERS[side]} is not installed")
    rows = report(run(args.tasks, args.rounds, [s for s in sides if s not in skipped]),
                  args.tasks)
    if args.json:
        args.json.write_text(json.dumps({"tasks": args.tasks, "sides": rows}, indent=2))


if __name__ == "__main__":
    main()
