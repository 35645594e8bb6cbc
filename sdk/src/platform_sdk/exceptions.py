"""Exceptions a task may raise or catch, and the ones the platform raises.

Plugins and application code need only the SDK to catch them; each is also exported
by :mod:`platform_sdk`. Celery's own (``Ignore``, ``Reject``, ``Retry``,
``SoftTimeLimitExceeded``) are re-exported as they are, imported on first use so that
importing the SDK loads no Celery.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery.exceptions import Ignore, Reject, Retry, SoftTimeLimitExceeded

__all__ = [
    "HostNotAvailable",
    "Ignore",
    "InvalidTaskCall",
    "PartiallySent",
    "PayloadTooLarge",
    "Reject",
    "Retry",
    "SoftTimeLimitExceeded",
    "StartupError",
]

CELERY_EXCEPTIONS = ("Ignore", "Reject", "Retry", "SoftTimeLimitExceeded")


def __getattr__(name: str) -> Any:
    if name in CELERY_EXCEPTIONS:
        from celery import exceptions

        value = getattr(exceptions, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}", name=name)


class HostNotAvailable(RuntimeError):
    """No platform host is installed or it failed to start."""


class StartupError(Exception):
    """The platform refused to start: its start-up checks found problems.

    Raised where a host starts: ``platform worker``, an application's first
    ``task.delay()``, :func:`platform_sdk.testing.platform`. ``problems`` lists every
    problem found, each naming its culprit (plugin, distribution, task, queue, entry)
    and the fix; the message shows them all.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        if len(self.problems) == 1:
            super().__init__(f"the platform cannot start: {self.problems[0]}")
            return
        head = f"the platform cannot start: {len(self.problems)} problems"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))

    def __reduce__(self) -> tuple[type[StartupError], tuple[list[str]]]:
        # Made again from the problems, not from the message (pickle, copy).
        return type(self), (self.problems,)


class InvalidTaskCall(TypeError, ValueError):
    """A task was called with arguments its signature does not accept.

    Raised where the task is enqueued (``delay``, ``apply_async``, a signature's
    ``apply_async``, ``send_task`` by name, ``platform send``), before anything is
    sent; and in the worker, for a message whose arguments do not fit the task. The
    message names the task, each offending parameter and what it expects, never the
    values passed. It is both a ``TypeError`` (as Python's own wrong-call errors)
    and a ``ValueError`` (as pydantic's validation errors).
    """

    def __init__(self, message: str, *, task: str = "", problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.task = task
        self.problems = problems


class PayloadTooLarge(InvalidTaskCall):
    """The serialized arguments are larger than ``max_payload_bytes``."""

    def __init__(self, message: str, *, task: str = "", size: int = 0, limit: int = 0) -> None:
        super().__init__(message, task=task)
        self.size = size
        self.limit = limit


class PartiallySent(RuntimeError):
    """A bulk send (``delay_many``, ``apply_many``, ``send_many``) failed part-way.

    Every item is in exactly one of three lists of input indices:

    - ``published``: the broker has it (Redis answered the write, RabbitMQ confirmed it,
      the embedded broker's file is in place); ``results`` are their AsyncResults;
    - ``unsent``: it was never written, or the broker refused it; sending it again cannot
      run it twice;
    - ``in_doubt``: it was being written when the connection failed, so the broker may or
      may not have it (at most one pipeline or one unconfirmed window).

    :meth:`resend` sends the unsent items again (``in_doubt=True``: those too), with the
    same task ids, in one call. The message names the task and the counts, never the
    arguments.
    """

    def __init__(self, message: str, *, task: str, published: Sequence[int],
                 unsent: Sequence[int], in_doubt: Sequence[int] = (),
                 results: Sequence[Any] = (),
                 resend: Callable[[Sequence[int]], Any] | None = None) -> None:
        super().__init__(message)
        self.task = task
        self.published = list(published)
        self.unsent = list(unsent)
        self.in_doubt = list(in_doubt)
        self.results = list(results)
        self._resend = resend

    def resend(self, *, in_doubt: bool = False) -> Any:
        """Send the unsent items (and with ``in_doubt=True`` the doubtful ones) again,
        keeping their task ids; returns their AsyncResults in input order."""
        if self._resend is None:
            raise RuntimeError("this error was copied from another process: send the "
                               "unsent calls again with apply_many")
        indices = sorted([*self.unsent, *(self.in_doubt if in_doubt else ())])
        return self._resend(indices)

    def __reduce__(self) -> Any:
        return _partially_sent, (str(self), self.task, self.published, self.unsent,
                                 self.in_doubt)


def _partially_sent(message: str, task: str, published: list[int], unsent: list[int],
                    in_doubt: list[int]) -> PartiallySent:
    return PartiallySent(message, task=task, published=published, unsent=unsent,
                         in_doubt=in_doubt)
