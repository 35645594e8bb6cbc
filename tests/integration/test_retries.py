"""Retry policies become real retries with exponential backoff in a worker."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.support import PlatformEnv

FLAKY = '''
import json, time
from pathlib import Path
from platform_sdk import Queue, RetryPolicy, hookimpl, task

FAST = RetryPolicy(name="fast", max_retries={retries}, backoff_base=1, backoff_cap=8,
                   jitter=False, retry_on=(ConnectionError,))

def _attempt(log):
    path = Path(log)
    with path.open("a") as fh:
        fh.write(json.dumps(time.time()) + "\\n")
    return len(path.read_text().splitlines())

@task(name="flaky.connect", retry=FAST)
def connect(log: str, failures: int) -> dict:
    attempt = _attempt(log)
    if attempt <= failures:
        raise ConnectionError(f"attempt {{attempt}} refused")
    return {{"attempts": attempt}}

@task(name="flaky.manual", bind=True, retry="fast")
def manual(self, log: str, failures: int) -> dict:
    attempt = _attempt(log)
    if attempt <= failures:
        raise self.retry(exc=ValueError(f"attempt {{attempt}} bad"))
    return {{"attempts": attempt, "retries": self.request.retries}}

@hookimpl
def register_tasks(register):
    register(connect)
    register(manual)

@hookimpl
def register_queues(register):
    register(Queue(name="flaky"))

@hookimpl
def register_routes(register):
    from platform_sdk import Route
    register(Route(pattern="flaky.*", queue="flaky"))

@hookimpl
def register_retry_policies(register):
    register(FAST)
'''


@pytest.fixture
def flaky_env(platform_env: PlatformEnv, redis_url: str) -> PlatformEnv:
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    platform_env.plugins.add("flaky", FLAKY.format(retries=3))
    platform_env.worker("--plugins", "flaky")
    return platform_env


def gaps(log: Path) -> list[float]:
    times = [json.loads(line) for line in log.read_text().splitlines()]
    return [b - a for a, b in itertools.pairwise(times)]


def test_autoretry_backs_off_exponentially_then_succeeds(flaky_env: PlatformEnv,
                                                         tmp_path: Path) -> None:
    host = flaky_env.host()
    log = tmp_path / "attempts.log"
    result = host.app.tasks["flaky.connect"].delay(str(log), 2)
    assert result.get(timeout=60) == {"attempts": 3}
    first, second = gaps(log)
    assert 1.0 <= first < 1.9, first      # backoff_base * 2**0
    assert 2.0 <= second < 2.9, second    # backoff_base * 2**1


def test_exhausted_retries_end_in_failure_with_the_error(flaky_env: PlatformEnv,
                                                         tmp_path: Path) -> None:
    host = flaky_env.host()
    log = tmp_path / "attempts.log"
    result = host.app.tasks["flaky.connect"].delay(str(log), 100)
    with pytest.raises(ConnectionError, match="attempt 4 refused"):
        result.get(timeout=60)
    assert result.state == "FAILURE"
    assert len(log.read_text().splitlines()) == 4  # the run and max_retries=3 retries


def test_manual_retry_waits_the_policy_base_delay(flaky_env: PlatformEnv,
                                                  tmp_path: Path) -> None:
    host = flaky_env.host()
    log = tmp_path / "attempts.log"
    value = host.app.tasks["flaky.manual"].delay(str(log), 1).get(timeout=60)
    assert value == {"attempts": 2, "retries": 1}
    (gap,) = gaps(log)
    assert 1.0 <= gap < 1.9, gap
