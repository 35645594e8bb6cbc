"""The same no-op task as a platform plugin (installed for the run through an entry point)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import noop as body
from platform_sdk import Queue, hookimpl, task


@task(name="bench.noop", queue="bench")
def noop() -> None:
    body.noop()


@hookimpl
def register_tasks(register: Callable[[Any], None]) -> None:
    register(noop)


@hookimpl
def register_queues(register: Callable[[Queue], None]) -> None:
    register(Queue(name="bench"))
