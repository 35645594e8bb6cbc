"""One task's status as the HTTP API shows it, from the result store and the platform's
own stores.

The result store keeps the latest state of a task only, without its name (Celery stores
a task's name with its arguments, or neither): the name, plugin and queue are given
when the task was submitted through this process, or is held for a long delay, or is
a dead letter.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from platform_core.host import Host

#: The name of the status route, for ``request.url_for(STATUS_ROUTE, task_id=...)``.
STATUS_ROUTE = "platform_task_status"
READY = frozenset({"SUCCESS", "FAILURE", "REVOKED"})  # celery.states.READY_STATES


class Place(NamedTuple):
    """Where a registered task comes from and goes to."""

    plugin: str
    queue: str


class Submitted:
    """Task id -> task name, for the last ``size`` tasks this process submitted."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._names: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, task_id: str, name: str) -> None:
        with self._lock:
            self._names[task_id] = name
            if len(self._names) > self.size:
                self._names.popitem(last=False)

    def get(self, task_id: str) -> str | None:
        with self._lock:
            return self._names.get(task_id)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _error(info: Any, traceback: str | None, tracebacks: bool) -> dict[str, Any]:
    if isinstance(info, dict):  # a result store that kept the error as data
        error = {"type": str(info.get("exc_type", "Exception")),
                 "message": str(info.get("exc_message", ""))}
    else:
        error = {"type": type(info).__name__, "message": str(info)}
    if tracebacks and traceback:
        error["traceback"] = traceback
    return error


def read(host: Host, task_id: str, *, submitted: Submitted, places: dict[str, Place],
         tracebacks: bool = False, look_further: bool = True) -> dict[str, Any]:
    """The task's status; ``places`` are the registered tasks' plugins and queues, and
    ``look_further`` also searches the delay and dead-letter stores for a PENDING task
    (slower: each store is read)."""
    meta = host.app.backend.get_task_meta(task_id)
    state = str(meta.get("status") or "PENDING")
    info = meta.get("result")
    status: dict[str, Any] = {"id": task_id, "state": state, "ready": state in READY,
                              "task": submitted.get(task_id), "progress": None,
                              "result": None, "error": None}
    if state == "SUCCESS":
        status["result"] = info
    elif state in ("FAILURE", "REVOKED", "RETRY"):
        status["error"] = _error(info, meta.get("traceback"), tracebacks)
    elif state != "PENDING" and isinstance(info, dict):
        status["progress"] = info  # PROGRESS or another state the task reported
    elif state == "PENDING" and look_further:
        _look_further(host, task_id, status)
    place = places.get(status["task"] or "")
    status["plugin"], status["queue"] = place if place else (None, None)
    return status


def _look_further(host: Host, task_id: str, status: dict[str, Any]) -> None:
    from platform_core.ops.task_diagnosis import kept

    held, letter = kept(host.app, task_id)
    if held is not None:
        status.update(state="SCHEDULED", task=status["task"] or held.task,
                      scheduled_until=_iso(held.due))
    elif letter is not None:
        status.update(state="DEAD_LETTERED", ready=True, task=status["task"] or letter.task,
                      dead_letter={"id": letter.id, "reason": letter.reason})


def event_id(status: dict[str, Any]) -> str:
    """The same id for the same state and data: what ``Last-Event-ID`` resumes from."""
    seen = {k: status.get(k) for k in ("state", "progress", "result", "error",
                                        "scheduled_until", "dead_letter")}
    text = json.dumps(seen, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
