"""Global rate limits: one token bucket per limit in Redis, shared by every worker.

The bucket is kept as its *theoretical arrival time* (GCRA, the cell-rate form of a
token bucket): ``KEYS[1]`` holds the time, in integer microseconds, from which the
next token is free. :data:`ACQUIRE` takes a token for time ``at`` in one atomic step
and returns the time the token is for: ``at`` itself when a token is free, else the
first free slot, which it reserves. So N callers over the limit get N distinct
slots, each one emission interval (period / count) after the one before, and no
caller ever has to ask twice.

With a burst of ``b`` tokens, at most ``b - 1 + count`` tokens fall in any window of
one period; with the default burst of one (as Celery's ``rate_limit``), at most
``count``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from platform_core.stores import redis_url

if TYPE_CHECKING:
    import redis

    from platform_core.settings import Settings

KEY_PREFIX = "platform:rate:"
MICROS = 1_000_000

# ARGV: now, at (>= now), emission interval, tolerance (burst - 1 intervals); all in µs.
ACQUIRE = """
local now = tonumber(ARGV[1])
local at = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local tolerance = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(at, tat - tolerance)
local next_tat = math.max(tat, slot) + interval
local ttl = math.ceil((next_tat - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', ttl)
return string.format('%d', slot)
"""


SLACK = 0.01  # of a period, added to it before it is divided into tokens


@dataclass(frozen=True)
class Rate:
    """``count`` tokens per ``period`` seconds, at most ``burst`` at once."""

    count: int
    period: float
    burst: int = 1

    @property
    def interval_us(self) -> int:
        """Microseconds between two tokens: a period and :data:`SLACK` of it, over
        ``count``, rounded up. Tokens exactly period/count apart would put count + 1 of
        them in a closed window of one period, and a run starts a little after its
        token (the pool's dispatch), by an amount that varies; the slack keeps count + 1
        run starts out of any window of one period while those delays differ by less
        than a hundredth of it, for a rate 1% under the nominal one."""
        return -(-round(self.period * (1 + SLACK) * MICROS) // self.count)


def key_of(task_name: str) -> str:
    return KEY_PREFIX + task_name


def locate(settings: Settings) -> str | None:
    """The Redis that holds the buckets, found as the dead-letter store's: the
    dead-letter URL, else the broker, else the result backend, if it is Redis; None
    when no Redis is configured (the embedded broker, RabbitMQ with another backend)."""
    candidates = (settings.dead_letter_url, settings.broker_url, settings.result_backend)
    for secret in candidates:
        url = redis_url(secret.get_secret_value() if secret else None)
        if url:
            return url
    return None


class RateBuckets:
    def __init__(self, client: redis.Redis[bytes]) -> None:
        self.client = client
        self._acquire: Any = client.register_script(ACQUIRE)

    def acquire(self, key: str, rate: Rate, *, now: float, at: float | None = None) -> float:
        """Take a token for time ``at`` (default ``now``); return the time it is for."""
        now_us = round(now * MICROS)
        at_us = max(now_us, round(at * MICROS)) if at is not None else now_us
        slot = self._acquire(keys=[key], args=[
            now_us, at_us, rate.interval_us, (rate.burst - 1) * rate.interval_us])
        return int(slot) / MICROS


_buckets: dict[tuple[int, str], RateBuckets] = {}
_lock = threading.Lock()


def open_buckets(url: str, master_name: str | None = None) -> RateBuckets:
    """The buckets at ``url``, opened once per process (``master_name``: Sentinel's)."""
    key = (os.getpid(), url)
    with _lock:
        found = _buckets.get(key)
        if found is None:
            from platform_core.stores.redis_client import redis_client

            # bounded as the store's client: the worker's main process calls it per message
            found = _buckets[key] = RateBuckets(redis_client(
                url, master_name, socket_timeout=10, socket_connect_timeout=5))
        return found
