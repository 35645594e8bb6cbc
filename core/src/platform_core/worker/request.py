"""The worker's request (``Task.Request``): bounded redelivery and dead letters for failures.

- A malformed message of a known task (missing id, a body that is not
  ``[args, kwargs, embed]``) raises :class:`InvalidTaskError`, which the consumer
  dead-letters, instead of an error that stops the worker.
- An idempotent (acks-late) task whose pool process died is requeued, as in Celery,
  until it has been delivered ``1 + max_redeliveries`` times; then the message goes
  to the dead-letter store with the reason (``worker lost: exit signal 9 (SIGKILL)``)
  and is acknowledged.
- A task that is not idempotent and lost its process, or that ran out of retries,
  fails as in Celery and a copy of its message goes to the dead-letter store.
"""

from __future__ import annotations

import logging
from typing import Any

from billiard.einfo import ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery import signals
from celery.exceptions import (
    Ignore,
    InvalidTaskError,
    MaxRetriesExceededError,
    Reject,
    Retry,
    Terminated,
)
from celery.worker.request import Request
from celery.worker.state import task_ready
from kombu.utils.encoding import safe_repr

from platform_core import stores
from platform_core.deadletter import redelivery
from platform_core.deadletter.letters import try_dead_letter
from platform_core.worker.task import EXHAUSTED, RAISED, describe

logger = logging.getLogger("platform.deadletter")


def _raised(exc_info: Any) -> tuple[str, bool] | None:
    """What the task's process recorded about the error (:data:`.task.RAISED`)."""
    found = getattr(exc_info, RAISED, None)
    if isinstance(found, tuple) and len(found) == 2 and isinstance(found[0], str):
        return found[0], bool(found[1])
    return None


def _unwrap(exc: BaseException) -> BaseException:
    if isinstance(exc, ExceptionWithTraceback):
        inner: BaseException = exc.exc
        return inner
    return exc


class PlatformRequest(Request):  # type: ignore[misc]
    #: Set by ``on_failure`` for a lost process: whether the message went back to its queue.
    requeued_after_loss = False

    def __init__(self, message: Any, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(message, *args, **kwargs)
        except InvalidTaskError:
            raise
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidTaskError(
                f"malformed task message ({type(exc).__name__}: {exc})"
            ) from None

    def send_event(self, type: str, **fields: Any) -> None:
        if "result" in fields:
            fields["result"] = "(not shown)"  # results may hold secrets, as arguments do
        super().send_event(type, **fields)

    def _lost(self, exc: BaseException) -> BaseException | None:
        if isinstance(exc, WorkerLostError):
            found: BaseException = exc  # billiard is untyped
            return found
        if isinstance(exc, (SystemExit, KeyboardInterrupt)) and not (
            self._already_cancelled or self._already_revoked
        ):
            return _unwrap(self._worker_lost_info(exc).exception)
        return None

    def _count_key(self) -> str:
        return redelivery.count_key(self.id, self.request_dict.get("retries"))

    def _deliveries(self) -> int:
        if not redelivery.is_redelivered(self.message):
            return 1
        return 1 + stores.for_app(self.app).deliveries.get(self._count_key())

    def on_failure(self, exc_info: Any, send_failed_event: bool = True,
                   return_ok: bool = False) -> Any:
        exc = _unwrap(exc_info.exception)
        lost = self._lost(exc)
        if lost is not None and self.task.acks_late and self.task.reject_on_worker_lost:
            if not self._give_up(lost, exc_info):
                self.requeued_after_loss = True
                super().on_failure(exc_info, send_failed_event, return_ok)  # requeued
            return None
        super().on_failure(exc_info, send_failed_event, return_ok)
        raised = _raised(exc_info)
        if lost is not None:
            try_dead_letter(self.app, self.message,
                            f"{redelivery.loss(lost)}; not redelivered: the task is not "
                            "idempotent")
        elif self._retries_exhausted(exc, raised):
            retries = self.request_dict.get("retries") or 0
            what = raised[0] if raised is not None else describe(exc)
            try_dead_letter(self.app, self.message,
                            f"retries exhausted after {retries} retries: {what}",
                            deliveries=self._safe_deliveries())
        return None

    def _safe_deliveries(self) -> int:
        try:
            return self._deliveries()
        except Exception:  # noqa: BLE001 - the count is informative only
            return 1

    def _give_up(self, lost: BaseException, exc_info: Any) -> bool:
        """Dead-letter and acknowledge a lost task at its last delivery; False: requeue."""
        try:
            deliveries = self._deliveries()
        except Exception as exc:  # noqa: BLE001 - cannot count: requeue, as Celery does
            logger.warning("Cannot count the deliveries of task %s[%s]: %s: %s",
                           self.name, self.id, type(exc).__name__, exc)
            return False
        if deliveries <= redelivery.limit(self.app):
            return False
        stored = getattr(self, "_success_was_stored", None)
        if stored is not None and stored():
            return False  # it finished before its process died; Celery acknowledges it
        reason = redelivery.loss(lost)
        if try_dead_letter(self.app, self.message, reason, deliveries=deliveries) is None:
            return False
        task_ready(self)
        self.acknowledge()
        try:
            stores.for_app(self.app).deliveries.forget(self._count_key())
        except Exception:
            logger.debug("cannot forget the delivery count of %s", self.id, exc_info=True)
        self.task.backend.mark_as_failure(self.id, lost, request=self._context,
                                          store_result=self.store_errors)
        self.task.request_stack.push(self._context)
        try:
            signals.task_failure.send(sender=self.task, task_id=self.id, exception=lost,
                                      args=self.args, kwargs=self.kwargs,
                                      traceback=exc_info.traceback, einfo=exc_info)
        finally:
            self.task.request_stack.pop()
        self.send_event("task-failed", exception=safe_repr(lost), traceback=exc_info.traceback)
        return True

    def _retries_exhausted(self, exc: BaseException, raised: tuple[str, bool] | None) -> bool:
        if isinstance(exc, (Retry, Ignore, Reject, Terminated)):
            return False
        if raised is not None:  # what the task's process saw
            return raised[1]
        if getattr(exc, EXHAUSTED, False) or isinstance(exc, MaxRetriesExceededError):
            return True
        # The mark is lost when the error could not be pickled back from the pool.
        task = self.task
        retries = self.request_dict.get("retries") or 0
        autoretry = tuple(getattr(task, "autoretry_for", ()) or ())
        return bool(autoretry) and task.max_retries is not None \
            and retries >= task.max_retries and isinstance(exc, autoretry)
