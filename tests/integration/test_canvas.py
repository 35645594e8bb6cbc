"""Canvases complete on workers that run only their plugin, none of which consumes `default`.

Real Redis, real ``platform worker --plugins NAME`` processes. ``abacus`` and ``tally``
each have one queue of their own; no enabled plugin declares ``default``, so a message
Celery would route there by name (``celery.starmap`` for chunks, ``celery.chord_unlock``
for a chord with a chain body) would wait for ever.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import chain, chord, group
from celery.exceptions import ChordError
from celery.result import result_from_tuple

from platform_core import host as host_module
from platform_core.host import Host
from tests.canvas_plugins import write_plugins
from tests.conftest import REDIS_URL
from tests.support import PlatformEnv, PluginFactory, redis_db_url, wait_until

WAIT = 30.0


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[PlatformEnv]:
    """One `--plugins abacus` and one `--plugins tally` worker for the whole module."""
    root = tmp_path_factory.mktemp("canvas")
    url = redis_db_url(REDIS_URL, worker_id)
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    env = PlatformEnv(home=root / "home", logs=root / "logs", plugins=PluginFactory(root / "site"))
    write_plugins(env.plugins)
    env.vars.update(PLATFORM_BROKER_URL=url, PLATFORM_PLUGINS="abacus,tally")
    try:
        env.worker("--plugins", "abacus")
        env.worker("--plugins", "tally")
        yield env
    finally:
        env.close()


@pytest.fixture
def producer(workers: PlatformEnv) -> Iterator[Host]:
    """An application process: every enabled plugin, no worker."""
    yield workers.host()
    host_module.reset()


def tasks(host: Host) -> Any:
    class Tasks:
        def __getattr__(self, name: str) -> Any:
            return host.app.tasks[f"abacus.{name}"]

    return Tasks()


def test_chain(producer: Host) -> None:
    t = tasks(producer)
    assert chain(t.add.s(1, 2), t.add.s(3), t.double.s()).delay().get(timeout=WAIT) == 12


def test_group(producer: Host) -> None:
    t = tasks(producer)
    assert group(t.add.s(i, i) for i in range(4)).delay().get(timeout=WAIT) == [0, 2, 4, 6]


def test_chord(producer: Host) -> None:
    t = tasks(producer)
    assert chord([t.add.s(i, i) for i in range(4)], t.total.s()).delay().get(timeout=WAIT) == 12


def test_chunks(producer: Host) -> None:
    t = tasks(producer)
    result = t.add.chunks(zip(range(5), range(5), strict=True), 2).delay()
    assert result.get(timeout=WAIT) == [[0, 2], [4, 6], [8]]


def test_map(producer: Host) -> None:
    assert tasks(producer).double.map([1, 2, 3]).delay().get(timeout=WAIT) == [2, 4, 6]


def test_starmap(producer: Host) -> None:
    assert tasks(producer).add.starmap([(1, 2), (3, 4)]).delay().get(timeout=WAIT) == [3, 7]


def test_chunks_inside_a_chord(producer: Host) -> None:
    t = tasks(producer)
    header = t.add.chunks([(1, 1), (2, 2), (3, 3)], 2).group()
    assert chord(header, t.grand_total.s()).delay().get(timeout=WAIT) == 12


def test_replace_with_a_group(producer: Host) -> None:
    """`celery.accumulate` goes to the queue of the task that replaced itself."""
    assert tasks(producer).spread.delay(3).get(timeout=WAIT) == [0, 2, 4]


def test_chord_across_two_plugins(producer: Host) -> None:
    """The body is sent by an abacus worker, which does not know tally's routes."""
    t = tasks(producer)
    count = producer.app.tasks["tally.count"]
    result = chord([t.add.s(i, 1) for i in range(3)], count.s()).delay()
    assert result.get(timeout=WAIT) == {"n": 3, "sum": 6}


def test_chain_across_two_plugins_with_chunks(producer: Host) -> None:
    """Steps sent by a tally worker: an abacus starmap it cannot route by name."""
    t = tasks(producer)
    count = producer.app.tasks["tally.count"]
    result = chain(count.si([1, 2]), t.add.chunks([(1, 2), (3, 4)], 1)).delay()
    # As in Celery, a chain that ends in chunks returns the chunks' group result.
    chunked = result_from_tuple(result.get(timeout=WAIT), producer.app)
    assert chunked.get(timeout=WAIT) == [[3], [7]]


def test_a_failing_link_fails_the_chain_and_stops_it(producer: Host) -> None:
    """The chain's result raises the failing link's error; the links after it never run
    and are marked failed with that error."""
    t = tasks(producer)
    result = chain(t.add.s(1, 1), t.divide.s(0), t.double.s()).delay()
    with pytest.raises(ZeroDivisionError):
        result.get(timeout=WAIT)
    assert result.state == "FAILURE"
    assert result.parent.state == "FAILURE"
    assert result.parent.parent.get(timeout=WAIT) == 2


def test_a_failing_member_of_a_group(producer: Host) -> None:
    t = tasks(producer)
    result = group(t.divide.s(4, 2), t.divide.s(1, 0), t.divide.s(9, 3)).delay()
    with pytest.raises(ZeroDivisionError):
        result.get(timeout=WAIT)
    values = result.get(timeout=WAIT, propagate=False)
    assert values[0] == 2.0 and values[2] == 3.0
    assert isinstance(values[1], ZeroDivisionError)
    assert [r.state for r in result.results] == ["SUCCESS", "FAILURE", "SUCCESS"]


def test_a_failing_header_fails_the_chord_and_names_the_part(producer: Host) -> None:
    """`get()` raises the part's own error (Celery checks the header first); the body
    never runs and is stored as a ChordError naming the failed part."""
    t = tasks(producer)
    result = chord([t.divide.s(4, 2), t.divide.s(1, 0)], t.total.s()).delay()
    with pytest.raises(ZeroDivisionError):
        result.get(timeout=WAIT)
    wait_until(lambda: result.state != "PENDING", WAIT, "the chord body to be marked")
    assert result.state == "FAILURE"
    assert isinstance(result.info, ChordError)
    failed = result.parent.results[1].id
    assert str(result.info) == f"Dependency {failed} raised ZeroDivisionError('division by zero')"


def test_chord_with_a_chain_body_on_the_embedded_broker(platform_env: PlatformEnv) -> None:
    """SQLite results cannot join natively: Celery sends `celery.chord_unlock`, routed
    by the body's name (`celery.chain`) to `default`, which nobody consumes here."""
    write_plugins(platform_env.plugins)
    platform_env.set(PLATFORM_PLUGINS="abacus,tally")
    platform_env.worker("--plugins", "abacus")
    t = tasks(platform_env.host())
    body = chain(t.total.s(), t.double.s())
    result = chord([t.add.s(i, i) for i in range(3)], body).delay()
    assert result.get(timeout=WAIT) == 12
