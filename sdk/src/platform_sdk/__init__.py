"""Platform SDK: everything a plugin imports.

Each name is imported from its module on first use, so importing one module of the
SDK (the host imports :mod:`platform_sdk.exceptions` to start its command line)
loads only that module, and importing the SDK loads no Celery.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .exceptions import (
        HostNotAvailable,
        Ignore,
        InvalidTaskCall,
        PartiallySent,
        PayloadTooLarge,
        Reject,
        Retry,
        SoftTimeLimitExceeded,
        StartupError,
    )
    from .hookspecs import hookimpl
    from .models import BeatEntry, Crontab, Every, Queue, RetryPolicy, Route, Schedule, WorkerHints
    from .results import TaskResult
    from .runtime import data_dir, settings
    from .tasks import Task, TaskSpec, send_many, task

__all__ = [
    "BeatEntry",
    "Crontab",
    "Every",
    "HostNotAvailable",
    "Ignore",
    "InvalidTaskCall",
    "PartiallySent",
    "PayloadTooLarge",
    "Queue",
    "Reject",
    "Retry",
    "RetryPolicy",
    "Route",
    "Schedule",
    "SoftTimeLimitExceeded",
    "StartupError",
    "Task",
    "TaskResult",
    "TaskSpec",
    "WorkerHints",
    "data_dir",
    "hookimpl",
    "send_many",
    "settings",
    "task",
]

_MODULE_OF = {
    **dict.fromkeys(("HostNotAvailable", "Ignore", "InvalidTaskCall", "PartiallySent",
                     "PayloadTooLarge", "Reject", "Retry", "SoftTimeLimitExceeded",
                     "StartupError"), "exceptions"),
    "hookimpl": "hookspecs",
    **dict.fromkeys(("BeatEntry", "Crontab", "Every", "Queue", "RetryPolicy", "Route",
                     "Schedule", "WorkerHints"), "models"),
    **dict.fromkeys(("data_dir", "settings"), "runtime"),
    "TaskResult": "results",
    **dict.fromkeys(("Task", "TaskSpec", "send_many", "task"), "tasks"),
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}", name=name)
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
