"""Platform SDK: everything a plugin imports."""

from typing import TYPE_CHECKING, Any

from . import exceptions
from .exceptions import HostNotAvailable, InvalidTaskCall, PayloadTooLarge
from .hookspecs import hookimpl
from .models import BeatEntry, Crontab, Every, Queue, RetryPolicy, Route, Schedule, WorkerHints
from .runtime import data_dir, settings
from .tasks import Task, TaskSpec, task

if TYPE_CHECKING:
    from .exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded

__all__ = [
    "BeatEntry",
    "Crontab",
    "Every",
    "HostNotAvailable",
    "Ignore",
    "InvalidTaskCall",
    "PayloadTooLarge",
    "Queue",
    "Reject",
    "Retry",
    "RetryPolicy",
    "Route",
    "Schedule",
    "SoftTimeLimitExceeded",
    "Task",
    "TaskSpec",
    "WorkerHints",
    "data_dir",
    "hookimpl",
    "settings",
    "task",
]


def __getattr__(name: str) -> Any:
    """Celery's exceptions, imported on first use: importing the SDK loads no Celery."""
    if name in exceptions.CELERY_EXCEPTIONS:
        value = getattr(exceptions, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}", name=name)
