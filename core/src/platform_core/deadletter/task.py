"""Base of every platform task: the worker-side reliability hooks (see :mod:`.request`)."""

from __future__ import annotations

import contextlib
from typing import Any

from celery import Task
from celery.exceptions import Retry

from .. import finishing

#: Set on the error ``retry`` raises when no retry is left (read by the worker's request).
EXHAUSTED = "_platform_retries_exhausted"


class ReliableTask(Task):  # type: ignore[misc]
    Request = "platform_core.deadletter.request:PlatformRequest"
    Strategy = "platform_core.deadletter.strategy:bounded"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.request.called_directly:
            return super().__call__(*args, **kwargs)
        # Run by the worker, which already pushed this run's request (as Celery's
        # tracer does for tasks without a ``__call__`` of their own).
        result = self.run(*args, **kwargs)
        if self.acks_late:
            finishing.hold()
        return result

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
