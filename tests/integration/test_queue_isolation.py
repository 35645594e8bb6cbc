"""A worker consumes only the queues of the plugins it runs; nothing is lost."""

from __future__ import annotations

import json
import time

from platform_admin.tasks import print_hello
from platform_quant.tasks import heavy_task
from tests.support import PlatformEnv


def test_quant_worker_leaves_admin_work_for_an_admin_worker(broker_env: PlatformEnv) -> None:
    quant = broker_env.worker("--plugins", "quant")
    broker_env.host()
    hello = print_hello.delay()
    assert heavy_task.delay("x", rounds=10).get(timeout=30)["status"] == "completed"
    time.sleep(2)
    assert hello.state == "PENDING"
    queues = broker_env.run("inspect", "active_queues", "-d", quant.node, "--timeout", "10")
    assert queues.returncode == 0, queues.stderr
    consumed = {q["name"] for q in json.loads(queues.stdout)[quant.node]}
    assert consumed == {"quant", "quant.data"}
    broker_env.worker("--plugins", "admin")
    assert hello.get(timeout=30) == {"status": "success"}


def test_minus_q_narrows_to_named_queues(broker_env: PlatformEnv) -> None:
    """A queue's name, a glob, and a plugin's name (all its queues, as the guide's
    ``-Q admin,quant`` expects) side by side."""
    worker = broker_env.worker("-Q", "admin.email,quant,defaul?")
    queues = broker_env.run("inspect", "active_queues", "-d", worker.node, "--timeout", "10")
    assert queues.returncode == 0, queues.stderr
    assert {q["name"] for q in json.loads(queues.stdout)[worker.node]} == {
        "admin.email", "quant", "quant.data", "default"}
