"""Platform SDK: everything a plugin imports."""

from .hookspecs import hookimpl
from .models import BeatEntry, Crontab, Every, Queue, RetryPolicy, Route, Schedule, WorkerHints
from .runtime import HostNotAvailable, data_dir, settings
from .tasks import Task, TaskSpec, task

__all__ = [
    "BeatEntry",
    "Crontab",
    "Every",
    "HostNotAvailable",
    "Queue",
    "RetryPolicy",
    "Route",
    "Schedule",
    "Task",
    "TaskSpec",
    "WorkerHints",
    "data_dir",
    "hookimpl",
    "settings",
    "task",
]
