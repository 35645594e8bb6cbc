"""``TaskResult[R]``: what the type checker sees of the result of ``delay()``.

At run time ``delay()`` and ``apply_async()`` return Celery's own ``AsyncResult``,
unchanged. Celery ships no type information, so without this every ``.get()`` would be
``Any``; as a protocol generic in the task's return type, ``add.delay(1, 2).get()`` is
an ``int`` to the type checker, and every other attribute of Celery's result stays
available (as ``Any``).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

__all__ = ["TaskResult"]

R_co = TypeVar("R_co", covariant=True)


class TaskResult(Protocol[R_co]):
    """Celery's ``AsyncResult`` of a task returning ``R_co``, for type annotations only."""

    @property
    def id(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def info(self) -> Any: ...

    def get(self, timeout: float | None = None, propagate: bool = True,
            interval: float = 0.5, **options: Any) -> R_co:
        """Wait for the task and return its value, or raise its error."""
        ...

    def ready(self) -> bool: ...

    def successful(self) -> bool: ...

    def failed(self) -> bool: ...

    def forget(self) -> None: ...

    def revoke(self, connection: Any = None, terminate: bool = False, signal: Any = None,
               wait: bool = False, timeout: float | None = None) -> None: ...

    def __getattr__(self, name: str) -> Any: ...
