"""A pool child that has finished an acks-late task records its result before it dies.

When the broker connection drops, the worker terminates its running acks-late tasks
(``worker_cancel_long_running_tasks_on_connection_loss``) because their messages will
be delivered again. A task whose body has already returned is then only storing its
result, often waiting for that same Redis to come back; killing it there loses the
record that the work was done, and the redelivered message runs the work a second
time. From the moment the body returns until ``task_postrun``, a prefork child
defers the termination signal; once the result is stored it terminates as asked,
and Celery's ``worker_deduplicate_successful_tasks`` acknowledges the redelivered
message without running it. A soft time limit reached meanwhile is dropped: it is
there to interrupt the body, and raising it in the result store would turn a run
that did its work into a failure that runs again.

Termination still comes: the result store gives up after its bounded retries, and a
hard time limit follows its SIGTERM with SIGKILL.
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import Any

from billiard.common import TERM_SIGNAL
from billiard.pool import SIG_SOFT_TIMEOUT
from celery import signals

_in_pool_child = False
_held: tuple[Any, Any] | None = None  # the handlers to restore once the result is stored
_requested = False


def _defer(signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = True


def hold() -> None:
    """Defer termination until the running task's ``task_postrun`` (prefork children only)."""
    global _held, _requested
    if not _in_pool_child or _held is not None:
        return
    _requested = False
    soft = None if SIG_SOFT_TIMEOUT is None else signal.signal(SIG_SOFT_TIMEOUT, signal.SIG_IGN)
    _held = (signal.signal(TERM_SIGNAL, _defer), soft)


def release(**_: Any) -> None:
    """Stop deferring; a termination asked for meanwhile happens now."""
    global _held
    if _held is None:
        return
    term, soft = _held
    signal.signal(TERM_SIGNAL, term)
    if SIG_SOFT_TIMEOUT is not None:
        signal.signal(SIG_SOFT_TIMEOUT, soft)
    _held = None
    if _requested:
        os.kill(os.getpid(), TERM_SIGNAL)


def _on_child_start(**_: Any) -> None:
    global _in_pool_child
    _in_pool_child = True
    signals.task_postrun.connect(release, weak=False, dispatch_uid="platform.finishing")


def install() -> None:
    """Hold termination in the pool children forked from now on (``PreforkPool`` calls
    this before it starts its children)."""
    signals.worker_process_init.connect(
        _on_child_start, weak=False, dispatch_uid="platform.finishing")
