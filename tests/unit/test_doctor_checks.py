"""Checks of `platform doctor` that need no worker: broker down, visibility timeout."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from platform_core.ops import diagnosis
from tests.support import PlatformEnv, output_of


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
