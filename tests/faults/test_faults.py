"""Fault injection against real worker processes: nothing lost, nothing run twice.

Every scenario ends with each piece of work completed exactly once or in the
dead-letter store with a reason, and with the workers still serving. The same
scenarios run against plain Celery in ``python -m bench.faults``, which prints both
sides as a table.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.faults import half_open, scenarios
from tests.faults.harness import MAX_REDELIVERIES, Lab
from tests.faults.scenarios import _wait_quietly

pytestmark = [pytest.mark.slow, pytest.mark.faults]


def test_sigkill_of_a_pool_child_redelivers_the_task(lab: Lab) -> None:
    outcome = scenarios.child_sigkill(lab)
    assert outcome.exactly_once and outcome.serving, outcome.summary()


def test_sigkill_of_the_whole_worker_redelivers_after_the_visibility_timeout(lab: Lab) -> None:
    outcome = scenarios.worker_sigkill(lab)
    assert outcome.exactly_once and outcome.serving, outcome.summary()


def test_a_task_that_always_kills_its_process_ends_in_the_dead_letter_store(lab: Lab) -> None:
    outcome = scenarios.poison_task(lab)
    assert len(outcome.dead_lettered) == 1 and outcome.serving, outcome.summary()
    assert "worker lost" in outcome.dead_lettered[0], outcome.summary()
    ran = int(next(n for n in outcome.notes if n.startswith("ran "))[4:-1])
    assert ran == 1 + MAX_REDELIVERIES, outcome.summary()  # redelivered, but bounded


def test_a_broker_restart_loses_nothing(lab: Lab) -> None:
    outcome = scenarios.redis_restart(lab)
    assert outcome.exactly_once and outcome.serving, outcome.summary()


def test_garbage_lands_in_the_dead_letter_store_and_the_worker_keeps_serving(lab: Lab) -> None:
    outcome = scenarios.garbage(lab)
    assert len(outcome.dead_lettered) == 4 and outcome.serving, outcome.summary()
    assert "args not logged" in outcome.notes, outcome.summary()


def test_an_unknown_task_is_dead_lettered_without_logging_its_args(lab: Lab) -> None:
    outcome = scenarios.unknown_task(lab)
    assert len(outcome.dead_lettered) == 1 and outcome.serving, outcome.summary()
    assert "args not logged" in outcome.notes, outcome.summary()


def test_a_countdown_past_the_visibility_timeout_runs_once(lab: Lab) -> None:
    outcome = scenarios.long_countdown(lab)
    assert outcome.exactly_once and outcome.serving, outcome.summary()


def test_two_beats_dispatch_each_period_once(lab: Lab) -> None:
    outcome = scenarios.two_beats(lab)
    assert outcome.exactly_once and outcome.completed >= 6, outcome.summary()


def test_a_plugin_that_raises_on_import_does_not_stop_the_others(lab: Lab) -> None:
    outcome = scenarios.broken_plugin(lab)
    assert outcome.serving and "broken plugin reported" in outcome.notes, outcome.summary()


def test_warm_shutdown_with_tasks_in_flight_loses_nothing(lab: Lab) -> None:
    outcome = scenarios.warm_shutdown(lab)
    assert outcome.exactly_once and outcome.serving, outcome.summary()


def test_a_half_open_redis_link_is_noticed_and_the_worker_reconnects(lab: Lab) -> None:
    seen: dict[str, Any] = {}

    def ask(lab: Lab) -> None:
        node = seen["node"] = lab.env.processes[-1].node
        answer = lab.env.run("inspect", "stats", "-d", node, "--timeout", "10")
        assert answer.returncode == 0, answer.stderr
        seen["link"] = json.loads(answer.stdout)[node]["platform_link"]
        report = lab.env.run("doctor", "--json", "--timeout", "10", timeout=120)
        seen["findings"] = [f for f in json.loads(report.stdout)["findings"]
                            if f["check"] == "broker links"]
        # pool processes that dropped their links after the stall still send tasks
        keys = [f"relayed-{n}" for n in range(4)]
        for key in keys:
            lab.send("faults.relay", key)
        seen["relayed"] = _wait_quietly(lambda: all(lab.count(f"done:{k}") for k in keys), 30)

    outcome = half_open.redis_half_open(lab, then=ask)
    assert outcome.exactly_once and outcome.serving, outcome.summary()
    assert f"{half_open.TASKS} results stored" in outcome.notes, outcome.summary()
    assert lab.logs().count("Broker link stalled: the redis broker owed a BRPOP") == 1

    assert seen["relayed"], "a task sent from a pool process after the stall never ran"
    link, found = seen["link"], seen["findings"]
    assert link["stalled_link_recoveries"] == 1 and link["stall_timeout"] == 10, link
    assert [(f["severity"], f["culprit"]) for f in found] == [("warning", seen["node"])]
    assert "reconnected, 1 time(s)" in found[0]["problem"] and "NAT" in found[0]["fix"]


def test_a_half_open_rabbitmq_link_is_noticed_and_nothing_is_lost(lab: Lab,
                                                                 amqp_url: str) -> None:
    outcome = half_open.rabbitmq_half_open(lab)
    assert outcome.exactly_once and outcome.serving, outcome.summary()
    assert f"{half_open.TASKS} results stored" in outcome.notes, outcome.summary()
    assert "Broker link stalled: the amqp broker owed a frame" in lab.logs()
