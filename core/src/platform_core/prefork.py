"""Celery's prefork pool with one exit hang removed.

With a transport that has no event loop (the embedded ``filesystem://`` broker),
Celery runs billiard's blocking pool. After a warm shutdown its time-limit
thread is never told to stop, and the worker then waits for it forever at
interpreter exit. Once the children have finished and been joined, nothing is
left for that thread to police, so it is stopped there.
"""

from __future__ import annotations

from celery.concurrency.prefork import TaskPool


class PreforkPool(TaskPool):  # type: ignore[misc]
    def on_stop(self) -> None:
        pool = self._pool
        super().on_stop()
        handler = getattr(pool, "_timeout_handler", None)
        if handler is not None:
            handler.terminate()
