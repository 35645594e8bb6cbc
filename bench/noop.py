"""The task body both sides run: count completions in Redis, nothing else."""

from __future__ import annotations

import os

import redis

COUNTER = "bench:done"
_client: redis.Redis | None = None


def noop() -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    _client.incr(COUNTER)
