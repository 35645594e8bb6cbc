"""Celery's prefork pool with billiard's exit hangs removed.

With a transport that has no event loop (kombu's virtual transports other than Redis
and the embedded broker, which registers with the loop), Celery runs billiard's
blocking pool, which can hang a worker at interpreter exit after a warm shutdown that
has already joined every child:

- its time-limit thread is never told to stop, and the exit finalizer waits for it;
- the exit finalizer takes the task queue's read lock, which a child killed by the
  same signal (a process-group SIGTERM, as ``timeout`` or systemd send) may hold.

Once the children have finished and been joined there is nothing left for either
to do, so the thread is stopped and the finalizer cancelled.

Its children also get the finishing window (:mod:`.finishing`).
"""

from __future__ import annotations

from celery.concurrency.prefork import TaskPool

from platform_core.worker import finishing, link_watchdog


class PreforkPool(TaskPool):  # type: ignore[misc]
    def on_start(self) -> None:
        finishing.install()  # its children finish storing a result before they stop
        link_watchdog.share_with_children()
        super().on_start()

    def on_stop(self) -> None:
        pool = self._pool
        super().on_stop()
        if pool is None:
            return
        handler = getattr(pool, "_timeout_handler", None)
        if handler is not None:
            handler.terminate()
        finalizer = getattr(pool, "_terminate", None)
        if finalizer is not None and getattr(pool, "threads", False):
            finalizer.cancel()
