"""The hello plugin's hook implementations (entry point ``hello``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from platform_sdk import BeatEntry, Every, Queue, RetryPolicy, Route, WorkerHints, hookimpl

from . import tasks
from .settings import HelloSettings


@hookimpl
def register_tasks(register: Callable[[Any], None]) -> None:
    for t in (tasks.greet, tasks.count, tasks.sign_guestbook, tasks.fetch_status):
        register(t)


@hookimpl
def register_queues(register: Callable[[Queue], None]) -> None:
    register(Queue(name="hello", description="Quick greetings."))
    register(Queue(name="hello.slow", description="Counting and network calls."))


@hookimpl
def register_routes(register: Callable[[Route], None]) -> None:
    register(Route(pattern="hello.*", queue="hello"))
    register(Route(pattern="hello.count", queue="hello.slow"))


@hookimpl
def register_beat_entries(register: Callable[[BeatEntry], None]) -> None:
    register(BeatEntry(name="hello.greet-world", task="hello.greet", args=("World",),
                       schedule=Every(seconds=60), expires=60))


@hookimpl
def register_retry_policies(register: Callable[[RetryPolicy], None]) -> None:
    register(RetryPolicy(
        name="hello.patient",
        max_retries=6,
        backoff_base=5,
        backoff_cap=120,
        retry_on=("urllib.error.URLError", "builtins.TimeoutError"),
    ))


@hookimpl
def register_worker_hints(register: Callable[[WorkerHints], None]) -> None:
    # hello.count sleeps between steps: prefetch one message per child at a time.
    register(WorkerHints(prefetch_multiplier=1, max_tasks_per_child=500))


@hookimpl
def register_settings(register: Callable[[type[BaseModel]], None]) -> None:
    register(HelloSettings)
