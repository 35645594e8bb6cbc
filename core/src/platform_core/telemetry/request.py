"""The worker's request class with telemetry: main-process records of every attempt.

It extends the platform's request (bounded redelivery, dead letters) and is used in
its place when tracing or metrics are on.

Runs in the worker's main process, which sees each attempt start (``on_accepted``) and
end (the child's result, its exception, a hard time limit, a lost child) whatever the
pool, so metrics and the spans of runs whose child died are recorded here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from celery.exceptions import Retry, TimeLimitExceeded
from celery.worker import state as worker_state

from platform_core.telemetry import metrics, tracing
from platform_core.telemetry.attributes import queue_of
from platform_core.telemetry.headers import eta_timestamp, sent_at
from platform_core.worker.request import PlatformRequest, _unwrap


def _wrap_success(on_success: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(on_success)
    def recorded(self: TelemetryRequest, failed__retval__runtime: Any, **kwargs: Any) -> Any:
        failed, _, runtime = failed__retval__runtime
        if not failed:
            self._finished("SUCCESS", runtime)
        return on_success(self, failed__retval__runtime, **kwargs)

    return recorded


class TelemetryRequest(PlatformRequest):
    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Celery's strategy builds a subclass per task whose on_success replaces ours.
        super().__init_subclass__(**kwargs)
        if "on_success" in cls.__dict__:
            cls.on_success = _wrap_success(cls.__dict__["on_success"])

    def _labels(self) -> dict[str, str]:
        return {
            "task": self.name,
            "plugin": getattr(self.task, "plugin", "") or "",
            "queue": queue_of(self.delivery_info, tracing.state.queues) or "",
        }

    def _finished(self, outcome: str, runtime: float | None = None) -> None:
        found = metrics.instruments()
        if found is None:
            return
        labels = self._labels()
        if runtime is None and self.time_start:
            runtime = max(time.time() - self.time_start, 0.0)
        if runtime is not None:
            found.duration.record(runtime, {**labels, "state": outcome})
        found.outcomes.add(1, {**labels, "state": outcome})

    def on_accepted(self, pid: int, time_accepted: float) -> None:
        super().on_accepted(pid, time_accepted)
        found = metrics.instruments()
        if found is None:
            return
        labels = self._labels()
        if self.delivery_info.get("redelivered"):
            found.redeliveries.add(1, labels)
        headers = self.request_dict
        due = sent_at(headers)
        eta = eta_timestamp(headers.get("eta"))
        if eta is not None:
            due = max(due or eta, eta)
        if due is not None and self.time_start:
            found.queue_wait.record(max(self.time_start - due, 0.0), labels)

    def on_retry(self, exc_info: Any) -> None:
        self._finished("RETRY")
        found = metrics.instruments()
        if found is not None:
            found.retries.add(1, self._labels())
        super().on_retry(exc_info)

    def on_timeout(self, soft: bool, timeout: float) -> None:
        super().on_timeout(soft, timeout)
        if soft or worker_state.should_terminate:
            return
        self._finished("TIMEOUT")
        tracing.record_lost_run(self, TimeLimitExceeded(timeout), requeued=False)

    def on_failure(self, exc_info: Any, send_failed_event: bool = True,
                   return_ok: bool = False) -> None:
        exc = _unwrap(exc_info.exception)
        lost = self._lost(exc)
        try:
            super().on_failure(exc_info, send_failed_event=send_failed_event,
                               return_ok=return_ok)
        finally:
            if isinstance(exc, TimeLimitExceeded):
                pass  # billiard reports it here, then to on_timeout, which records it
            elif lost is not None:
                self._finished("LOST")
                # not requeued: PlatformRequest.on_failure dead-lettered it
                tracing.record_lost_run(self, lost, requeued=self.requeued_after_loss,
                                        dead_lettered=not self.requeued_after_loss)
            elif not isinstance(exc, Retry):
                self._finished("FAILURE")
