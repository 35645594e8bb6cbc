"""Global rate limits: one bucket in Redis for all workers; runs over the limit are sent
again for later, none lost, none run twice."""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from platform_core.stores.rate_buckets import MICROS, Rate, RateBuckets
from tests.support import PlatformEnv, redis_db_url

REDIS_URL = os.environ.get("PLATFORM_TEST_REDIS_URL", "redis://127.0.0.1:6379")

LIMITED = '''
import os, time
from platform_sdk import Queue, hookimpl, task

@task(name="lim.hit", queue="lim", global_rate_limit="4/s", bind=True)
def hit(self, log, n):
    with open(log, "a") as f:
        f.write(f"{n} {time.time()} {os.getpid()} {self.request.retries}\\n")
    return n

@task(name="lim.retrying", queue="lim", global_rate_limit="4/s", bind=True,
       max_retries=1)
def retrying(self, log, n):
    with open(log, "a") as f:
        f.write(f"{n} {time.time()} {os.getpid()} {self.request.retries}\\n")
    if self.request.retries == 0:
        raise self.retry(countdown=0.2)
    return n

@hookimpl
def register_tasks(register):
    register(hit)
    register(retrying)

@hookimpl
def register_queues(register):
    register(Queue(name="lim"))
'''


def read_runs(log: Path) -> list[tuple[int, float, int, int]]:
    if not log.exists():
        return []
    rows = []
    for line in log.read_text().splitlines():
        n, at, pid, retries = line.split()
        rows.append((int(n), float(at), int(pid), int(retries)))
    return rows


def busiest(times: list[float], window: float) -> int:
    """The most times in any half-open window ``[t, t + window)``."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_three_workers_share_one_limit_and_lose_nothing(
        platform_env: PlatformEnv, redis_url: str, tmp_path: Path) -> None:
    platform_env.plugins.add("lim", LIMITED)
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_PLUGINS="lim")
    workers = [platform_env.worker("--plugins", "lim", "-c", "2", "-n", f"lim{i}@%h")
               for i in range(3)]
    host = platform_env.host()
    log = tmp_path / "runs.log"
    total = 24
    results = [host.app.tasks["lim.hit"].delay(str(log), n) for n in range(total)]
    assert sorted(r.get(timeout=90) for r in results) == list(range(total))

    runs = read_runs(log)
    assert sorted(n for n, *_ in runs) == list(range(total))  # each exactly once
    assert {retries for *_, retries in runs} == {0}  # a deferral is no retry
    times = [at for _, at, _, _ in runs]
    # Tokens are 0.25 s apart; a run starts a few milliseconds after its token, so the
    # window is one period less half an interval, for that dispatch latency.
    assert busiest(times, 1.0 - 0.125) <= 4
    assert max(times) - min(times) >= (total - 1) * 0.25 - 0.125
    assert len({pid for _, _, pid, _ in runs}) > 1  # more than one worker ran them
    output = "".join(w.output() for w in workers)
    assert "is over its global rate limit (4 per 1s): sent again" in output
    assert str(log) not in output  # deferrals log no arguments


@pytest.fixture
def limited(platform_env: PlatformEnv, redis_url: str) -> Any:
    """The host of a worker (two processes) running the limited plugin."""
    platform_env.plugins.add("lim", LIMITED)
    platform_env.set(PLATFORM_BROKER_URL=redis_url, PLATFORM_PLUGINS="lim")
    platform_env.worker("--plugins", "lim", "-c", "2")
    return platform_env.host()


def test_a_retry_takes_a_token_again_and_keeps_its_count(limited: Any, tmp_path: Path) -> None:
    host = limited
    log = tmp_path / "runs.log"
    results = [host.app.tasks["lim.retrying"].delay(str(log), n) for n in range(6)]
    assert sorted(r.get(timeout=60) for r in results) == list(range(6))
    runs = read_runs(log)
    assert Counter(retries for *_, retries in runs) == {0: 6, 1: 6}
    assert busiest([at for _, at, _, _ in runs], 1.0 - 0.125) <= 4


def test_a_countdown_takes_its_token_for_its_eta(limited: Any, tmp_path: Path) -> None:
    host = limited
    log = tmp_path / "runs.log"
    sent = time.time()
    results = [host.app.tasks["lim.hit"].apply_async((str(log), n), countdown=1)
               for n in range(8)]
    assert sorted(r.get(timeout=60) for r in results) == list(range(8))
    times = [at for _, at, _, _ in read_runs(log)]
    assert min(times) >= sent + 1
    assert busiest(times, 1.0 - 0.125) <= 4


# The bucket script alone, against the real Redis: whatever the order and timing of the
# requests, the tokens it grants never put more than burst - 1 + count in one period.

_client = redis.Redis.from_url(redis_db_url(REDIS_URL, "master"))
_counter = itertools.count()


@settings(max_examples=60, deadline=None)
@given(count=st.integers(1, 8), period_ms=st.integers(1, 5000), burst=st.integers(1, 4),
       steps=st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 3000)),
                      min_size=1, max_size=60))
def test_no_period_ever_holds_more_tokens_than_the_limit(
        count: int, period_ms: int, burst: int, steps: list[tuple[int, int]]) -> None:
    buckets = RateBuckets(_client)
    rate = Rate(count, period_ms / 1000, burst)
    key = f"platform:rate:test:{uuid.uuid4().hex}:{next(_counter)}"
    now = 1_700_000_000.0
    slots = []
    try:
        for advance_ms, ahead_ms in steps:
            now += advance_ms / 1000
            at = now + ahead_ms / 1000
            slot = buckets.acquire(key, rate, now=now, at=at)
            assert slot >= at - 1 / MICROS  # never before it was asked for
            slots.append(round(slot * MICROS))
    finally:
        _client.delete(key)
    assert len(set(slots)) == len(slots) or burst > 1  # distinct slots without a burst
    period_us = round(rate.period * MICROS)
    ordered = sorted(slots)
    start = 0
    for end, t in enumerate(ordered):
        while ordered[start] < t - period_us:  # a closed window: the slack keeps it to count
            start += 1
        assert end - start + 1 <= burst - 1 + count


@pytest.mark.parametrize("burst", [1, 3])
def test_a_fresh_bucket_grants_its_burst_at_once(burst: int) -> None:
    buckets = RateBuckets(_client)
    key = f"platform:rate:test:{uuid.uuid4().hex}"
    try:
        slots = [buckets.acquire(key, Rate(2, 1.0, burst), now=100.0) for _ in range(burst + 2)]
        ttl = _client.pttl(key)
    finally:
        _client.delete(key)
    assert slots[:burst] == [100.0] * burst
    assert slots[burst:] == [100.505, 101.01]  # half a period apart, and the 1% slack
    assert 0 < ttl <= 2525 + 1000  # the key goes once its tokens are all back (with slack)
