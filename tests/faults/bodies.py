"""Task bodies the plain Celery app and the platform plugin both run.

Every effect is recorded in a ledger Redis (``FAULTS_LEDGER_URL``), not the broker's,
so a scenario counts how many times each piece of work really completed, whichever
process ran it, even while the broker is down.
"""

from __future__ import annotations

import os
import signal
import time

import redis

_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["FAULTS_LEDGER_URL"])
    return _client


def record(key: str) -> str:
    client().incr(f"done:{key}")
    return key


def slow(key: str, seconds: float) -> str:
    client().set(f"pid:{key}", os.getpid())
    client().incr(f"started:{key}")
    time.sleep(seconds)
    client().incr(f"done:{key}")
    return key


def suicide(key: str) -> None:
    client().incr(f"attempts:{key}")
    os.kill(os.getpid(), signal.SIGKILL)


def tick() -> None:
    client().rpush("ticks", time.time())


def stamp(key: str) -> str:
    """A rate-limited run: when it started, and that it completed."""
    client().rpush("stamps", time.time())
    client().incr(f"done:{key}")
    return key
