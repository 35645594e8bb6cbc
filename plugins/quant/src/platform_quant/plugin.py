"""The quant plugin's hook implementations (entry point ``quant``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from platform_sdk import BeatEntry, Crontab, Queue, Route, WorkerHints, hookimpl

from . import tasks
from .settings import QuantSettings


@hookimpl
def register_tasks(register: Callable[[Any], None]) -> None:
    for t in (tasks.sync_stock_list, tasks.process_data, tasks.heavy_task):
        register(t)


@hookimpl
def register_queues(register: Callable[[Queue], None]) -> None:
    register(Queue(name="quant", description="Computations."))
    register(Queue(name="quant.data", description="Data loading and processing."))


@hookimpl
def register_routes(register: Callable[[Route], None]) -> None:
    register(Route(pattern="quant.*", queue="quant"))
    register(Route(pattern="quant.sync_*", queue="quant.data"))
    register(Route(pattern="quant.process_data", queue="quant.data"))


@hookimpl
def register_beat_entries(register: Callable[[BeatEntry], None]) -> None:
    register(BeatEntry(name="quant.sync-stock-list-daily", task="quant.sync_stock_list",
                       schedule=Crontab(minute="0", hour="2")))


@hookimpl
def register_worker_hints(register: Callable[[WorkerHints], None]) -> None:
    # Numeric work fragments memory; recycle children before they grow large.
    register(WorkerHints(max_memory_per_child=512_000))


@hookimpl
def register_settings(register: Callable[[type], None]) -> None:
    register(QuantSettings)
