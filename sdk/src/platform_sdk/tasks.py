"""The ``task`` decorator: declare a Celery task before any app exists.

Like Celery's ``shared_task``, the decorated function becomes a proxy; once the
host has built its app, ``.delay``, ``.apply_async``, ``.s``/``.si``/``.signature``,
``.AsyncResult`` and everything else a Celery task offers are forwarded to the
real task. Calling the proxy runs the function in-process, as Celery does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, overload

from . import hosting
from .models import RetryPolicy

__all__ = ["Task", "TaskSpec", "task"]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class TaskSpec:
    """Everything the host needs to turn a function into a Celery task."""

    name: str
    fn: Callable[..., Any]
    bind: bool = False
    queue: str | None = None
    retry: str | RetryPolicy | None = None
    time_limit: float | None = None
    soft_time_limit: float | None = None
    rate_limit: str | None = None
    idempotent: bool = False
    ignore_result: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


class Task(Generic[P, R]):
    """Proxy for the Celery task the host creates from a :class:`TaskSpec`."""

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.__wrapped__ = spec.fn
        self.__name__ = spec.fn.__name__
        self.__doc__ = spec.fn.__doc__
        self._bound: tuple[Any, Any] = (None, None)  # (app, its task), swapped as one

    @property
    def name(self) -> str:
        return self.spec.name

    def celery_task(self) -> Any:
        """The real Celery task in the host's current app."""
        app = hosting.current_app()
        bound_app, bound_task = self._bound
        if app is bound_app:
            return bound_task
        try:
            real = app.tasks[self.spec.name]
        except KeyError:
            raise LookupError(
                f"task {self.spec.name!r} ({self.spec.location}) is not registered in the "
                "running platform: enable the plugin that provides it "
                "(PLATFORM_PLUGINS / --plugins) and check that its register_tasks hook "
                "registers it"
            ) from None
        self._bound = (app, real)
        return real

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.spec.bind:
            return self.celery_task()(*args, **kwargs)  # type: ignore[no-any-return]
        return self.spec.fn(*args, **kwargs)  # type: ignore[no-any-return]

    def delay(self, *args: Any, **kwargs: Any) -> Any:
        return self.celery_task().apply_async(args, kwargs)

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        return self.celery_task().apply_async(args, kwargs, **options)

    def s(self, *args: Any, **kwargs: Any) -> Any:
        return self.celery_task().s(*args, **kwargs)

    def si(self, *args: Any, **kwargs: Any) -> Any:
        return self.celery_task().si(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.celery_task(), attr)

    def __repr__(self) -> str:
        return f"<platform task {self.spec.name}>"


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    bind: bool = False,
    queue: str | None = None,
    retry: str | RetryPolicy | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    rate_limit: str | None = None,
    idempotent: bool = False,
    acks_late: bool | None = None,
    ignore_result: bool = False,
    **options: Any,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    bind: bool = False,
    queue: str | None = None,
    retry: str | RetryPolicy | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    rate_limit: str | None = None,
    idempotent: bool = False,
    acks_late: bool | None = None,
    ignore_result: bool = False,
    **options: Any,
) -> Any:
    """Declare a task. Register it with the host from the ``register_tasks`` hook.

    :param name: the task's name, ``<plugin>.<something>`` (the host refuses names
        outside the plugin's namespace); defaults to ``module.function``.
    :param bind: pass the Celery task instance as the first argument (``self``),
        for ``self.update_state(...)``, ``self.retry(...)`` and ``self.request``.
    :param queue: the queue this task goes to, overriding routes.
    :param retry: a retry policy by name (``"default"``, ``"network"`` or one a
        plugin registers) or an inline :class:`RetryPolicy`.
    :param time_limit: hard limit in seconds; the process running the task is killed.
    :param soft_time_limit: seconds until ``SoftTimeLimitExceeded`` is raised in the task.
    :param rate_limit: Celery rate limit per worker, such as ``"10/m"``.
    :param idempotent: the task may safely run twice, so the message is acknowledged
        after the run (acks-late) and redelivered if the worker dies. ``acks_late``
        is accepted as an alias.
    :param ignore_result: do not store the return value.
    :param options: other Celery task options the host allows (``max_retries``,
        ``default_retry_delay``, ``autoretry_for``, ``priority``, ...); they win over
        the retry policy.

    Annotated parameters are validated with pydantic where the task is sent and
    again where it runs; a bad call raises
    :class:`platform_sdk.exceptions.InvalidTaskCall`.
    """
    if acks_late is not None:
        idempotent = idempotent or acks_late

    def decorate(func: Callable[..., Any]) -> Task[Any, Any]:
        if isinstance(func, Task):
            raise TypeError(f"@task was applied twice to {func.spec.location}")
        spec = TaskSpec(
            name=name or f"{func.__module__}.{func.__name__}",
            fn=func,
            bind=bind,
            queue=queue,
            retry=retry,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            rate_limit=rate_limit,
            idempotent=idempotent,
            ignore_result=ignore_result,
            options=dict(options),
        )
        return Task(spec)

    if fn is not None:
        return decorate(fn)
    return decorate
