"""Fault injection against real worker processes: nothing lost, nothing run twice.

Every scenario ends with each piece of work completed exactly once or in the
dead-letter store with a reason, and with the workers still serving. The same
scenarios run against plain Celery in ``python -m bench.faults``, which prints both
sides as a table.
"""

from __future__ import annotations

import pytest

from tests.faults import scenarios
from tests.faults.harness import MAX_REDELIVERIES, Lab

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
