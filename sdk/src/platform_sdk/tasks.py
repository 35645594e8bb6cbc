"""The ``task`` decorator: declare a Celery task before any app exists.

Like Celery's ``shared_task``, the decorated function becomes a proxy. Once the host
has built its app, the proxy's methods (``delay``, ``apply_async``, ``s``, ``si``,
``signature``, ``map``, ``starmap``, ``chunks``, ``AsyncResult``) act on the real
Celery task, which ``celery_task()`` returns for anything else. Calling the proxy
runs the function in-process, as Celery does.

``delay_many``, ``apply_many`` and :func:`send_many` send many messages in one call,
each checked, routed and traced as ``delay()`` would, written to the broker in
pipelines: see docs/fan-out.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    Literal,
    NoReturn,
    ParamSpec,
    TypeVar,
    overload,
)

from . import hosting
from .exceptions import HostNotAvailable
from .models import RetryPolicy
from .results import TaskResult

if TYPE_CHECKING:
    import celery.canvas

__all__ = ["Call", "Task", "TaskSpec", "send_many", "task"]

P = ParamSpec("P")
R = TypeVar("R")

# What a task proxy offers, as its AttributeError lists it.
OFFERED = ("name", "spec", "delay()", "apply_async()", "delay_many()", "apply_many()", "s()",
           "si()", "signature()", "map()", "starmap()", "chunks()", "AsyncResult()",
           "celery_task()")

#: One call in a bulk send: positional arguments (a tuple), keyword arguments (a mapping),
#: or both as an ``(args, kwargs)`` pair.
Call = tuple[Any, ...] | Mapping[str, Any] | tuple[Sequence[Any], Mapping[str, Any]]


def _bulk_sender(app: Any, attr: str) -> Any:
    sender = getattr(app, attr, None)
    if sender is None:
        raise HostNotAvailable(
            "the installed platform host cannot send in bulk: upgrade platform-core"
        )
    return sender


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
    global_rate_limit: str | None = None
    idempotent: bool = False
    ignore_result: bool = False
    api: bool = True
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def location(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


class Task(Generic[P, R]):
    """Proxy for the Celery task the host creates from a :class:`TaskSpec`.

    It offers what plugins and applications use a task for; ``celery_task()`` is the
    real Celery task, for anything else. Any other attribute is an ``AttributeError``
    that says so.
    """

    def __init__(self, spec: TaskSpec) -> None:
        self.spec = spec
        self.__wrapped__ = spec.fn
        self.__name__ = spec.fn.__name__
        self.__doc__ = spec.fn.__doc__
        self._bound: tuple[Any, Any] = (None, None)  # (app, its task), swapped as one

    @property
    def name(self) -> str:
        return self.spec.name

    def celery_task(self) -> celery.Task:
        """The real Celery task in the host's current app, starting the host on first use."""
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
        """Run the function in this process, as calling a Celery task does."""
        if self.spec.bind:
            return self.celery_task()(*args, **kwargs)  # type: ignore[no-any-return]
        return self.spec.fn(*args, **kwargs)  # type: ignore[no-any-return]

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> TaskResult[R]:
        """Send the task with these arguments; ``apply_async(args, kwargs)``."""
        result: TaskResult[R] = self.celery_task().apply_async(args, kwargs)
        return result

    def apply_async(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> TaskResult[R]:
        """Send the task; ``options`` are Celery's (``countdown``, ``eta``, ``expires``, ...)."""
        result: TaskResult[R] = self.celery_task().apply_async(args, kwargs, **options)
        return result

    def delay_many(self, calls: Iterable[Call], *, group: bool = False) -> Any:
        """Send one message per call; ``apply_many(calls)``."""
        return self.apply_many(calls, group=group)

    def apply_many(self, calls: Iterable[Call], *, group: bool = False, **options: Any) -> Any:
        """Send one message per call, all with the same ``options`` (``countdown``, ``eta``,
        ``queue``, ``priority``, ``expires``, as for ``apply_async``).

        Every call is checked before anything is sent: one bad call sends nothing, and
        :class:`~platform_sdk.exceptions.InvalidTaskCall` names its index. Returns the
        AsyncResults in input order (a sequence), or with ``group=True`` a
        ``GroupResult`` whose members carry the group's id. A broker failing part-way
        raises :class:`~platform_sdk.exceptions.PartiallySent`, which says which calls
        were published and can send the rest.
        """
        task = self.celery_task()
        return _bulk_sender(task.app, "send_many")(self.spec.name, calls, options, group=group)

    def s(self, *args: P.args, **kwargs: P.kwargs) -> celery.canvas.Signature:
        """A signature of the task with these arguments, for canvases."""
        return self.celery_task().s(*args, **kwargs)

    def si(self, *args: P.args, **kwargs: P.kwargs) -> celery.canvas.Signature:
        """An immutable signature: in a chain it does not receive the previous result."""
        return self.celery_task().si(*args, **kwargs)

    def signature(
        self,
        args: tuple[Any, ...] | list[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> celery.canvas.Signature:
        """A signature with these arguments and options (``countdown``, ``immutable``, ...)."""
        return self.celery_task().signature(args, kwargs, **options)

    def map(self, it: Iterable[Any]) -> celery.canvas.xmap:
        """One message that runs the task on each item of ``it``, in one worker."""
        return self.celery_task().map(it)

    def starmap(self, it: Iterable[Iterable[Any]]) -> celery.canvas.xstarmap:
        """As :meth:`map`, each item being the task's positional arguments."""
        return self.celery_task().starmap(it)

    def chunks(self, it: Iterable[Iterable[Any]], n: int) -> celery.canvas.chunks:
        """``it`` split into starmaps of ``n`` argument tuples each."""
        return self.celery_task().chunks(it, n)

    def AsyncResult(self, task_id: str, **kwargs: Any) -> TaskResult[R]:
        """The result of an earlier run of this task, by its id."""
        result: TaskResult[R] = self.celery_task().AsyncResult(task_id, **kwargs)
        return result

    if not TYPE_CHECKING:  # type checkers report unknown attributes themselves

        def __getattr__(self, attr: str) -> NoReturn:
            spec = self.__dict__.get("spec")
            if spec is None or attr.startswith("_"):
                raise AttributeError(
                    f"{type(self).__name__!r} object has no attribute {attr!r}",
                    name=attr, obj=self)
            raise AttributeError(
                f"task proxy `{spec.name}` ({spec.location}) has no attribute `{attr}`: it "
                f"offers {', '.join(OFFERED)} and calling it; for anything else of the "
                f"Celery task use `{spec.fn.__name__}.celery_task().{attr}`",
                name=attr, obj=self)

    def __repr__(self) -> str:
        return f"<platform task {self.spec.name}>"


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    bind: Literal[False] = False,
    queue: str | None = None,
    retry: str | RetryPolicy | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    rate_limit: str | None = None,
    global_rate_limit: str | None = None,
    idempotent: bool = False,
    acks_late: bool | None = None,
    ignore_result: bool = False,
    api: bool = True,
    **options: Any,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


@overload
def task(
    *,
    name: str | None = None,
    bind: Literal[True],
    queue: str | None = None,
    retry: str | RetryPolicy | None = None,
    time_limit: float | None = None,
    soft_time_limit: float | None = None,
    rate_limit: str | None = None,
    global_rate_limit: str | None = None,
    idempotent: bool = False,
    acks_late: bool | None = None,
    ignore_result: bool = False,
    api: bool = True,
    **options: Any,
) -> Callable[[Callable[Concatenate[Any, P], R]], Task[P, R]]: ...


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
    global_rate_limit: str | None = None,
    idempotent: bool = False,
    acks_late: bool | None = None,
    ignore_result: bool = False,
    api: bool = True,
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
    :param global_rate_limit: a limit shared by all workers, such as ``"100/m"``
        (``N/s``, ``N/m``, ``N/h``, or a multiple of the unit: ``"30/10s"``). A run
        over the limit is sent again for when the limit allows it; see
        docs/reliability.md#global-rate-limits.
    :param idempotent: the task may safely run twice, so the message is acknowledged
        after the run (acks-late) and redelivered if the worker dies. ``acks_late``
        is accepted as an alias.
    :param ignore_result: do not store the return value.
    :param api: offered by the platform's HTTP task API (``platform api``); ``False``
        keeps it off the API, for tasks only other tasks or beat entries send.
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
            global_rate_limit=global_rate_limit,
            idempotent=idempotent,
            ignore_result=ignore_result,
            api=api,
            options=dict(options),
        )
        return Task(spec)

    if fn is not None:
        return decorate(fn)
    return decorate


def send_many(signatures: Iterable[Any], *, group: bool = False, **options: Any) -> Any:
    """Send many signatures (``task.s(...)``) of any tasks, of any plugins, in bulk.

    Each signature keeps its own arguments and options; ``options`` apply to all of
    them. The same checks, routing and errors as :meth:`Task.apply_many`; results in
    input order.
    """
    send = _bulk_sender(hosting.current_app(), "send_signatures")
    return send(list(signatures), options, group=group)
