"""When a countdown or ETA is held outside the broker, and what is held (no broker needed)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from platform_core.app.hold import due_time, horizon
from platform_core.stores import open_store
from tests.support import PlatformEnv


def test_horizon_leaves_a_margin_below_the_visibility_timeout() -> None:
    assert horizon(3600) == 3300  # the margin is capped at five minutes
    assert horizon(600) == 540
    assert horizon(3) == pytest.approx(2.7)


def test_due_time() -> None:
    now = time.time()
    assert due_time(None, None) is None
    assert due_time(60, None) == pytest.approx(now + 60, abs=1)
    eta = datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert due_time(None, eta) == eta.timestamp()
    assert due_time(None, eta.replace(tzinfo=None)) == eta.timestamp()  # naive: UTC
    assert due_time(None, "2030-01-01T13:00:00+01:00") == eta.timestamp()
    assert due_time(5, eta) == pytest.approx(now + 5, abs=1)  # a countdown wins, as in Celery


def test_a_long_countdown_is_held_with_the_message_celery_built(
    platform_env: PlatformEnv,
) -> None:
    host = platform_env.host()
    task = host.app.tasks["admin.send_email"]
    result = task.apply_async(("a@example.com", "Subject", "Body"), countdown=7200,
                              priority=3)
    soon = host.app.tasks["admin.print_hello"].apply_async(countdown=1)
    store = open_store(host.app.conf.platform_dead_letter_database)
    (held,) = store.delays.pending()
    assert held.task_id == result.id != soon.id
    assert held.due == pytest.approx(time.time() + 7200, abs=5)
    message = held.message
    assert (message.queue, message.exchange, message.routing_key) == (
        "admin.email", "", "admin.email")
    assert message.headers["task"] == "admin.send_email"
    assert message.headers["eta"].startswith(
        (datetime.now(UTC) + timedelta(seconds=7200)).strftime("%Y-%m-%dT%H"))
    assert message.content_type == "application/json"
    assert message.properties["priority"] == 3
    assert message.properties["correlation_id"] == result.id
    assert message.body.startswith('[["a@example.com", "Subject", "Body"], {}')
