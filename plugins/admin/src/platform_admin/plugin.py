"""The admin plugin's hook implementations (entry point ``admin``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from platform_sdk import BeatEntry, Crontab, Every, Queue, Route, hookimpl

from . import tasks
from .settings import AdminSettings


@hookimpl
def register_tasks(register: Callable[[Any], None]) -> None:
    for t in (tasks.print_hello, tasks.send_email, tasks.weekly_report):
        register(t)


@hookimpl
def register_queues(register: Callable[[Queue], None]) -> None:
    register(Queue(name="default", description="Tasks no route claims."))
    register(Queue(name="admin", description="Housekeeping and reports."))
    register(Queue(name="admin.email", description="Outgoing mail."))


@hookimpl
def register_routes(register: Callable[[Route], None]) -> None:
    register(Route(pattern="admin.*", queue="admin"))
    register(Route(pattern="admin.send_email", queue="admin.email"))


@hookimpl
def register_beat_entries(register: Callable[[BeatEntry], None]) -> None:
    register(BeatEntry(name="admin.hello-every-30s", task="admin.print_hello",
                       schedule=Every(seconds=30), expires=30))
    register(BeatEntry(name="admin.weekly-report", task="admin.weekly_report",
                       schedule=Crontab(minute="0", hour="8", day_of_week="1")))


@hookimpl
def register_settings(register: Callable[[type], None]) -> None:
    register(AdminSettings)
