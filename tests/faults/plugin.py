"""The platform plugin of the fault scenarios: the same bodies as the plain app.

Work that may run again after a crash declares itself idempotent, as a plugin author
would, so the platform acknowledges it only when it is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from platform_sdk import BeatEntry, Every, Queue, hookimpl, task
from tests.faults import bodies


@task(name="faults.record", queue="faults", idempotent=True)
def record(key: str) -> str:
    return bodies.record(key)


@task(name="faults.slow", queue="faults", idempotent=True)
def slow(key: str, seconds: float) -> str:
    return bodies.slow(key, seconds)


@task(name="faults.suicide", queue="faults", idempotent=True)
def suicide(key: str) -> None:
    bodies.suicide(key)


@task(name="faults.tick", queue="faults")
def tick() -> None:
    bodies.tick()


@task(name="faults.limited", queue="faults", global_rate_limit="60/m")
def limited(key: str) -> str:
    return bodies.stamp(key)


@task(name="faults.relay", queue="faults", idempotent=True)
def relay(key: str) -> str:
    """Sends ``faults.record`` from the task's own process."""
    record.delay(key)
    return key


@hookimpl
def register_tasks(register: Callable[[Any], None]) -> None:
    for t in (record, slow, suicide, tick, limited, relay):
        register(t)


@hookimpl
def register_queues(register: Callable[[Queue], None]) -> None:
    register(Queue(name="faults"))


@hookimpl
def register_beat_entries(register: Callable[[BeatEntry], None]) -> None:
    register(BeatEntry(name="faults.tick", task="faults.tick", schedule=Every(seconds=1)))
