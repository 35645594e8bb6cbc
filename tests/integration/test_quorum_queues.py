"""Quorum queues on RabbitMQ (``queue_type = "quorum"``), through a node restart.

The node is the test's own (tests.rabbitmq_node): the machine's RabbitMQ is shared.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rabbitmq_node import OwnedRabbitMQ
from tests.support import PlatformEnv, wait_until

pytestmark = pytest.mark.slow

PLUGIN = '''
from platform_sdk import Queue, hookimpl, task

@task(name="q.record", queue="q.work")
def record(path: str, key: str) -> str:
    with open(path, "a") as fh:
        fh.write(key + "\\n")
    return key

@hookimpl
def register_tasks(register):
    register(record)

@hookimpl
def register_queues(register):
    register(Queue(name="q.work"))
'''


@pytest.fixture
def node(tmp_path: Path) -> Iterator[OwnedRabbitMQ]:
    found = OwnedRabbitMQ(tmp_path / "rabbitmq")
    found.start()
    yield found
    found.stop()


def ran(path: Path) -> Counter[str]:
    return Counter(path.read_text().split()) if path.exists() else Counter()


def test_quorum_queues_keep_every_task_through_a_node_restart(
        platform_env: PlatformEnv, node: OwnedRabbitMQ, tmp_path: Path) -> None:
    platform_env.plugins.add("q", PLUGIN, distribution="platform-q")
    platform_env.set(PLATFORM_BROKER_URL=node.url, PLATFORM_PLUGINS="q",
                     PLATFORM_QUEUE_TYPE="quorum")
    log = tmp_path / "ran.log"
    host = platform_env.host()
    record = host.app.tasks["q.record"]

    before = [f"before-{n}" for n in range(10)]
    for key in before:  # sent with no worker: they wait in the queue through the restart
        record.delay(str(log), key)
    later = record.apply_async((str(log), "countdown"), countdown=3)
    assert "q.work\tquorum" in node.ctl("list_queues", "name", "type", "--quiet")

    node.restart()
    platform_env.worker("--plugins", "q", "-c", "2")
    after = [f"after-{n}" for n in range(10)]
    results = [record.delay(str(log), key) for key in after]
    assert sorted(r.get(timeout=60) for r in results) == sorted(after)
    assert later.get(timeout=60) == "countdown"

    wait_until(lambda: set(ran(log)) >= {*before, *after, "countdown"}, 60,
               "every task sent before and after the restart")
    counts = ran(log)
    assert set(counts) == {*before, *after, "countdown"}
    assert max(counts.values()) == 1, counts


def test_a_queue_with_a_priority_is_refused_for_quorum(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("qp", PLUGIN.replace('Queue(name="q.work")',
                                                  'Queue(name="q.work", max_priority=9)'),
                             distribution="platform-qp")
    platform_env.set(PLATFORM_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
                     PLATFORM_QUEUE_TYPE="quorum")
    result = platform_env.run("plugins", "list")
    output = result.stdout + result.stderr
    assert "declares queue `q.work` with max_priority=9, which quorum queues" in output
    assert "PLATFORM_QUEUE_TYPE=classic" in output


def test_quorum_queues_on_another_broker_are_refused(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_BROKER_URL="redis://127.0.0.1:6379/1", PLATFORM_QUEUE_TYPE="quorum")
    result = platform_env.run("plugins", "list")
    assert result.returncode != 0
    assert "setting `queue_type` is `quorum`, which only RabbitMQ offers, and the broker is " \
           "redis" in result.stdout + result.stderr
