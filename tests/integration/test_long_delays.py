"""Countdowns and ETAs beyond the visibility timeout are held outside the broker."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kombu import Connection

from platform_core import stores
from tests.integration.reliability_plugin import SOURCE
from tests.support import PlatformEnv, wait_until

VISIBILITY = 3

# Time limits that fit the short visibility timeout (the platform refuses longer ones),
# and only the test's plugin (the bundled ones declare longer limits).
SHORT_LIMITS = {"PLATFORM_PLUGINS": "rel", "PLATFORM_TASK_TIME_LIMIT": "2.5",
                "PLATFORM_TASK_SOFT_TIME_LIMIT": "2"}

def runs(path: Path) -> list[float]:
    if not path.exists():
        return []
    return [float(line.split()[1]) for line in path.read_text().splitlines()]


def give_back_unacked(url: str) -> None:
    """What every Redis consumer does now and then (kombu's ``restore_visible``): put
    messages unacknowledged for longer than the visibility timeout back in their queue."""
    with Connection(url, transport_options={"visibility_timeout": VISIBILITY}) as conn:
        conn.default_channel.qos.restore_visible(num=1000, interval=1)


def test_countdown_and_eta_beyond_the_visibility_timeout_run_exactly_once(
    platform_env: PlatformEnv, redis_url: str, tmp_path: Path
) -> None:
    platform_env.plugins.add("rel", SOURCE)
    platform_env.set(PLATFORM_BROKER_URL=redis_url,
                     PLATFORM_VISIBILITY_TIMEOUT=str(VISIBILITY), **SHORT_LIMITS)
    worker = platform_env.worker("--plugins", "rel", "-c", "1")
    host = platform_env.host()
    later = host.app.tasks["rel.later"]
    log = tmp_path / "later.log"
    sent = time.time()
    by_countdown = later.apply_async((str(log), "countdown"), countdown=8)
    by_eta = later.apply_async((str(log), "eta"), eta=datetime.now(UTC) + timedelta(seconds=8))
    held = stores.for_app(host.app).delays.pending()
    assert sorted(item.task_id for item in held) == sorted([by_countdown.id, by_eta.id])
    assert all(item.due >= sent + 8 for item in held)

    deadline = time.monotonic() + 60
    while len(runs(log)) < 2 and time.monotonic() < deadline:
        give_back_unacked(redis_url)
        time.sleep(0.5)
    for _ in range(2 * VISIBILITY + 2):  # and for longer than one more visibility timeout
        give_back_unacked(redis_url)
        time.sleep(0.5)
    assert host.app.tasks["rel.echo"].delay("marker").get(timeout=30) == "marker"

    assert by_countdown.get(timeout=10) == "countdown"
    assert by_eta.get(timeout=10) == "eta"
    assert len(runs(log)) == 2, log.read_text()
    assert min(runs(log)) >= sent + 8  # never before the ETA
    assert stores.for_app(host.app).delays.pending() == []
    output = worker.output()
    assert f"Released delayed task rel.later[{by_countdown.id}] to queue rel" in output


def test_short_countdowns_go_straight_to_the_broker(
    platform_env: PlatformEnv, redis_url: str, tmp_path: Path
) -> None:
    platform_env.plugins.add("rel", SOURCE)
    platform_env.set(PLATFORM_BROKER_URL=redis_url)
    platform_env.worker("--plugins", "rel")
    host = platform_env.host()
    result = host.app.tasks["rel.later"].apply_async((str(tmp_path / "log"), "soon"),
                                                      countdown=1)
    assert stores.for_app(host.app).delays.pending() == []
    assert result.get(timeout=30) == "soon"


def test_held_messages_are_released_once_by_several_workers(
    platform_env: PlatformEnv, redis_url: str, tmp_path: Path
) -> None:
    platform_env.plugins.add("rel", SOURCE)
    platform_env.set(PLATFORM_BROKER_URL=redis_url,
                     PLATFORM_VISIBILITY_TIMEOUT=str(VISIBILITY), **SHORT_LIMITS)
    workers = [platform_env.worker("--plugins", "rel") for _ in range(2)]
    host = platform_env.host()
    later = host.app.tasks["rel.later"]
    log = tmp_path / "later.log"
    results = [later.apply_async((str(log), f"n{i}"), countdown=5) for i in range(20)]
    assert len(stores.for_app(host.app).delays.pending()) == 20
    assert sorted(r.get(timeout=60) for r in results) == sorted(f"n{i}" for i in range(20))
    assert host.app.tasks["rel.echo"].delay("marker").get(timeout=30) == "marker"
    assert len(runs(log)) == 20
    released = sum(w.output().count("Released delayed task rel.later") for w in workers)
    assert released == 20
    assert stores.for_app(host.app).delays.pending() == []


def test_long_countdown_on_the_embedded_broker(platform_env: PlatformEnv,
                                               tmp_path: Path) -> None:
    platform_env.plugins.add("rel", SOURCE)
    platform_env.set(PLATFORM_VISIBILITY_TIMEOUT=str(VISIBILITY), **SHORT_LIMITS)
    platform_env.worker("--plugins", "rel")
    host = platform_env.host()
    log = tmp_path / "later.log"
    result = host.app.tasks["rel.later"].apply_async((str(log), "embedded"), countdown=5)
    (held,) = stores.for_app(host.app).delays.pending()
    assert held.task_id == result.id
    assert host.app.conf.platform_dead_letter_database.startswith("sqlite:///")
    assert result.get(timeout=60) == "embedded"
    wait_until(lambda: stores.for_app(host.app).delays.pending() == [], 10, "the store to empty")
    assert len(runs(log)) == 1


def test_a_held_task_shows_where_users_look(platform_env: PlatformEnv, redis_url: str) -> None:
    """``platform result`` says until when a held task is scheduled (not "unknown id"), and
    ``platform inspect scheduled`` lists it with its due time even with no worker running;
    neither shows its arguments."""
    platform_env.plugins.add("rel", SOURCE)
    platform_env.set(PLATFORM_BROKER_URL=redis_url, **SHORT_LIMITS)
    secret = "do-not-show-7f3a"
    sent = platform_env.host().app.tasks["rel.echo"].apply_async((secret,), countdown=7200)
    (item,) = stores.for_app(platform_env.host().app).delays.pending()
    due = datetime.fromtimestamp(item.due, UTC).isoformat(timespec="seconds")

    result = platform_env.run("result", sent.id)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"SCHEDULED until {due} (held by the platform"), result.stdout
    assert "consuming `rel`" in result.stdout

    scheduled = platform_env.run("inspect", "scheduled", "--timeout", "0.5")
    assert scheduled.returncode == 0, scheduled.stderr
    assert "no worker answered" in scheduled.stderr
    listed = json.loads(scheduled.stdout)["held by the platform (delay store)"]
    assert listed == [{"eta": due, "held": True,
                       "request": {"id": sent.id, "name": "rel.echo", "queue": "rel"}}]
    assert secret not in result.stdout + scheduled.stdout + scheduled.stderr
