"""Base of every platform task: the worker-side reliability hooks (see :mod:`.request`)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from celery import Task, states
from celery.exceptions import MaxRetriesExceededError, Retry
from celery.utils.serialization import UnpickleableExceptionWrapper

from platform_core.worker import finishing, link_watchdog

logger = logging.getLogger("platform.tasks")

#: Set on the error ``retry`` raises when no retry is left (read by the worker's request).
EXHAUSTED = "_platform_retries_exhausted"

#: Set on the ``ExceptionInfo`` a failed run hands back to the worker's main process:
#: ``(description, retries exhausted)`` of the error as the task raised it. An error that
#: cannot be pickled crosses from a pool process as a stand-in (Celery turns
#: ``urllib.error.HTTPError`` into ``OSError()``), without its class, message or mark.
RAISED = "platform_raised"

#: Runs a task's body inside its run span; set when tracing is on
#: (:func:`platform_core.telemetry.tracing.traced_run`).
traced_run: Callable[[Task, tuple[Any, ...], dict[str, Any]], Any] | None = None


def describe(exc: BaseException) -> str:
    """``HTTPError: HTTP Error 503: Service Unavailable``: class and message, never the
    task's arguments (which ``MaxRetriesExceededError``'s message holds, so it has none)."""
    name = type(exc).__name__
    if isinstance(exc, MaxRetriesExceededError):
        return name
    try:
        message = str(exc)
    except Exception as error:  # noqa: BLE001 - any broken __str__
        message = f"(its message cannot be shown: {type(error).__name__})"
    return f"{name}: {message}" if message else name


def _as_raised(exc: BaseException) -> BaseException:
    """The error being handled when ``exc`` is the stand-in Celery made of it: an instance
    of one of its base classes, or a wrapper naming its class."""
    raised = sys.exc_info()[1]
    if raised is None or raised is exc:
        return exc
    if isinstance(raised, type(exc)) or (isinstance(exc, UnpickleableExceptionWrapper)
                                         and exc.exc_cls_name == type(raised).__name__):
        return raised
    return exc


_warned_success: set[str] = set()


def _warn_own_success(name: str) -> None:
    """A task that stores SUCCESS itself loses its return value: every result store keeps
    the first SUCCESS it is given, so the value the task returns is dropped and callers
    get the meta instead."""
    if name in _warned_success:
        return
    _warned_success.add(name)
    logger.warning(
        "Task %s set its own state to SUCCESS with update_state(): the result store keeps "
        "the first SUCCESS, so the value the task returns is discarded and callers get that "
        "meta instead. Return the final value from the task (it becomes the SUCCESS "
        "result), and report progress with update_state(state='PROGRESS', meta=...)", name)


class ReliableTask(Task):  # type: ignore[misc]
    Request = "platform_core.worker.request:PlatformRequest"
    Strategy = "platform_core.worker.strategy:bounded"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.request.called_directly:
            return super().__call__(*args, **kwargs)
        # Run by the worker, which already pushed this run's request (as Celery's
        # tracer does for tasks without a ``__call__`` of their own).
        link_watchdog.renew_after_stall(self.app)
        result = self.run(*args, **kwargs) if traced_run is None else \
            traced_run(self, args, kwargs)
        if self.acks_late:
            finishing.hold()
        return result

    def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any,
                   einfo: Any) -> None:
        """Record the error as raised on what goes back to the worker (see :data:`RAISED`).
        Celery calls this in the process that ran the task, while it handles the error,
        with the stand-in it will send."""
        super().on_failure(exc, task_id, args, kwargs, einfo)
        raised = _as_raised(exc)
        exhausted = bool(getattr(raised, EXHAUSTED, False)) or \
            isinstance(raised, MaxRetriesExceededError)
        with contextlib.suppress(AttributeError, TypeError):
            setattr(einfo, RAISED, (describe(raised), exhausted))

    def update_state(self, task_id: str | None = None, state: str | None = None,
                     meta: Any = None, **kwargs: Any) -> None:
        """Celery's ``update_state``; setting the running task's own state to SUCCESS is
        warned about once per task and process (see :func:`_warn_own_success`)."""
        if state == states.SUCCESS and not self.request.called_directly and \
                task_id in (None, self.request.id):
            _warn_own_success(self.name)
        super().update_state(task_id, state, meta, **kwargs)

    def retry(self, args: Any = None, kwargs: Any = None, exc: BaseException | None = None,
              throw: bool = True, eta: Any = None, countdown: float | None = None,
              max_retries: int | None = None, **options: Any) -> Any:
        """Celery's ``retry``; the error it raises when no retry is left is marked, so the
        worker can dead-letter the message (autoretry policies call this too)."""
        request = self.request
        most = self.max_retries if max_retries is None else max_retries
        exhausted = not request.called_directly and most is not None and request.retries >= most
        try:
            return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries,
                                 **options)
        except Retry:
            raise
        except BaseException as error:
            if exhausted:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(error, EXHAUSTED, True)
            raise
