"""Checks of `platform doctor` that need no worker: broker down, visibility timeout."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from platform_core import diagnosis
from tests.support import PlatformEnv, output_of

LONG = """
from platform_sdk import Queue, hookimpl, task

@task(name="slow.crunch", queue="slow", time_limit=7200, soft_time_limit=7000, idempotent=True)
def crunch():
    return 1

@task(name="slow.report", queue="slow", time_limit=5400)
def report():
    return 1

@task(name="slow.quick", queue="slow", time_limit=3000)
def quick():
    return 1

@hookimpl
def register_tasks(register):
    register(crunch)
    register(report)
    register(quick)

@hookimpl
def register_queues(register):
    register(Queue(name="slow"))
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def test_broker_down_is_reported_and_stops_the_checks(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_BROKER_URL=f"redis://:s3cret@127.0.0.1:{closed_port()}/0")
    result = platform_env.run("doctor", "--json", timeout=60)
    assert result.returncode == 1, output_of(result)
    report = json.loads(result.stdout)
    assert report["healthy"] is False
    (finding,) = report["findings"]
    assert finding["check"] == "broker"
    assert finding["severity"] == "error"
    assert "cannot reach the broker" in finding["problem"]
    assert "Connection refused" in finding["problem"]
    assert finding["culprit"].startswith("broker redis://:***@127.0.0.1:")
    assert "PLATFORM_BROKER_URL" in finding["fix"]
    assert "s3cret" not in result.stdout + result.stderr


def test_broker_that_never_answers_is_reported(platform_env: PlatformEnv,
                                               silent_server: int) -> None:
    platform_env.set(PLATFORM_BROKER_URL=f"redis://127.0.0.1:{silent_server}/0")
    result = platform_env.run("doctor", "--timeout", "0.5", timeout=60)
    assert result.returncode == 1, output_of(result)
    assert "cannot reach the broker" in result.stdout
    assert "Timeout" in result.stdout
    assert "1 error(s), 0 warning(s)" in result.stdout


def test_doctor_with_invalid_configuration_exits_2(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_PLUGINS="nosuch")
    result = platform_env.run("doctor", timeout=60)
    assert result.returncode == 2, output_of(result)
    assert "plugin `nosuch` was requested" in result.stderr


# --- visibility timeout ------------------------------------------------------------------


@pytest.fixture
def slow(platform_env: PlatformEnv) -> PlatformEnv:
    platform_env.plugins.add("slow", LONG, distribution="platform-slow", version="2.0")
    # Redis is never contacted: the check reads configuration only.
    return platform_env.set(PLATFORM_PLUGINS="slow",
                            PLATFORM_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0")


def test_time_limit_longer_than_the_visibility_timeout(slow: PlatformEnv) -> None:
    host = slow.host()
    assert diagnosis.visibility_timeout(host) == 3600
    found = {f.culprit: f for f in diagnosis.check_visibility_timeout(host)}
    assert set(found) == {"task `slow.crunch` of plugin `slow` (platform-slow 2.0)",
                          "task `slow.report` of plugin `slow` (platform-slow 2.0)"}
    late = found["task `slow.crunch` of plugin `slow` (platform-slow 2.0)"]
    assert late.severity == "error"
    assert late.problem.startswith(
        "task `slow.crunch` may run 7200s (hard time limit), longer than the broker's "
        "visibility timeout of 3600s; it acknowledges late")
    assert late.fix == ("raise PLATFORM_VISIBILITY_TIMEOUT above 7200 (e.g. 7800), or lower "
                        "the task's time_limit below 3600")
    early = found["task `slow.report` of plugin `slow` (platform-slow 2.0)"]
    assert early.severity == "warning"
    assert "delivered again to another worker" in early.problem


def test_a_longer_visibility_timeout_clears_the_finding(slow: PlatformEnv) -> None:
    host = slow.host()
    host.app.conf.broker_transport_options = {"visibility_timeout": 7300}
    assert diagnosis.visibility_timeout(host) == 7300
    assert diagnosis.check_visibility_timeout(host) == []


def test_visibility_timeout_setting_is_read_when_present(slow: PlatformEnv) -> None:
    host = slow.host()
    settings = host.settings.model_copy()
    object.__setattr__(settings, "visibility_timeout", 9000)
    host.settings = settings
    assert diagnosis.visibility_timeout(host) == 9000
    assert diagnosis.check_visibility_timeout(host) == []


def test_no_visibility_timeout_on_the_embedded_broker(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("slow", LONG, distribution="platform-slow", version="2.0")
    host = platform_env.set(PLATFORM_PLUGINS="slow").host()
    assert diagnosis.check_visibility_timeout(host) == []


# --- bounded calls -----------------------------------------------------------------------


def test_run_bounded_gives_up_on_a_call_that_never_returns() -> None:
    never = threading.Event()
    assert diagnosis.run_bounded(never.wait, 0.2) == (False, None)
    never.set()
    assert diagnosis.run_bounded(lambda: 42, 10) == (True, 42)


def test_run_bounded_and_together_raise_the_call_error() -> None:
    def fail() -> None:
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        diagnosis.run_bounded(fail, 10)
    with pytest.raises(ValueError, match="broken"):
        diagnosis.together(lambda: 1, fail)
    assert diagnosis.together(lambda: 1, lambda: "two") == [1, "two"]
