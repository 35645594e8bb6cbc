"""Declarative models a plugin hands to the host.

Every model is an immutable pydantic model, so a bad declaration fails where the
plugin builds it, and the host can compare, print and serialise them freely.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "BeatEntry",
    "Crontab",
    "Every",
    "Queue",
    "RetryPolicy",
    "Route",
    "Schedule",
    "WorkerHints",
]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\-]*$")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{what} {value!r} is not a valid name: use letters, digits and '_.:-', "
            "starting with a letter, digit or '_'"
        )
    return value


class Queue(_Model):
    """A queue a plugin declares; workers of that plugin consume it."""

    name: str
    routing_key: str | None = Field(default=None, description="Defaults to the queue name.")
    max_priority: int | None = Field(default=None, ge=1, le=255)
    message_ttl: float | None = Field(default=None, gt=0, description="Seconds (AMQP only).")
    max_length: int | None = Field(default=None, ge=1, description="Messages (AMQP only).")
    description: str = ""

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value, "queue")

    @property
    def key(self) -> str:
        return self.routing_key or self.name


class Route(_Model):
    """Send tasks whose name matches ``pattern`` (a glob, ``*`` and ``?``) to ``queue``.

    When several routes match one task, the most specific wins: an exact name beats
    any glob, and among globs the one with more literal characters wins.
    """

    pattern: str
    queue: str

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("route pattern must not be empty")
        return value

    @field_validator("queue")
    @classmethod
    def _valid_queue(cls, value: str) -> str:
        return _check_name(value, "queue")

    @property
    def is_glob(self) -> bool:
        return any(ch in self.pattern for ch in "*?[")

    @property
    def specificity(self) -> tuple[int, int]:
        literal = sum(1 for ch in self.pattern if ch not in "*?[]")
        return (0 if self.is_glob else 1, literal)


class Every(_Model):
    """Run every ``seconds`` seconds."""

    kind: Literal["every"] = "every"
    seconds: float = Field(gt=0)

    def describe(self) -> str:
        return f"every {self.seconds:g}s"


class Crontab(_Model):
    """A crontab schedule; fields take Celery's crontab syntax (``"*/15"``, ``"1-5"``)."""

    kind: Literal["crontab"] = "crontab"
    minute: str = "*"
    hour: str = "*"
    day_of_week: str = "*"
    day_of_month: str = "*"
    month_of_year: str = "*"

    if TYPE_CHECKING:  # integers are accepted and kept as text, as the validator below does
        def __init__(self, *, minute: str | int = "*", hour: str | int = "*",
                     day_of_week: str | int = "*", day_of_month: str | int = "*",
                     month_of_year: str | int = "*") -> None: ...

    @field_validator(
        "minute", "hour", "day_of_week", "day_of_month", "month_of_year", mode="before"
    )
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _celery_accepts(self) -> Crontab:
        from celery.schedules import crontab

        try:
            crontab(minute=self.minute, hour=self.hour, day_of_week=self.day_of_week,
                    day_of_month=self.day_of_month, month_of_year=self.month_of_year)
        except ValueError as exc:
            raise ValueError(f"invalid crontab {self.describe()}: {exc}") from None
        return self

    def describe(self) -> str:
        return (
            f"crontab({self.minute} {self.hour} {self.day_of_month} "
            f"{self.month_of_year} {self.day_of_week})"
        )


Schedule = Annotated[Every | Crontab, Field(discriminator="kind")]


class BeatEntry(_Model):
    """A periodic run of ``task`` on ``schedule``."""

    name: str
    task: str
    schedule: Schedule
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str | None = Field(default=None, description="Overrides the task's routing.")
    expires: float | None = Field(
        default=None, gt=0, description="Seconds after which an unstarted run is dropped."
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value, "beat entry")

    @model_validator(mode="after")
    def _json_arguments(self) -> BeatEntry:
        try:
            json.dumps([self.args, self.kwargs])
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"beat entry {self.name!r}: args and kwargs must be JSON values ({exc})"
            ) from None
        return self

    @field_validator("schedule", mode="before")
    @classmethod
    def _seconds_as_every(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return Every(seconds=float(value))
        return value


class RetryPolicy(_Model):
    """How a task retries: which errors, how often and how long to wait.

    The delay before retry ``n`` (0-based) is ``min(backoff_cap, backoff_base * 2**n)``
    whole seconds, drawn uniformly from ``[0, that]`` when ``jitter`` is on (Celery's
    full jitter). A manual ``self.retry()`` without a countdown waits ``backoff_base``.
    ``retry_on`` holds exception classes or their dotted names
    (``"builtins.ConnectionError"``, ``"smtplib.SMTPServerDisconnected"``).
    """

    name: str
    max_retries: int = Field(default=3, ge=0)
    backoff_base: int = Field(default=2, ge=1, description="Seconds.")
    backoff_cap: int = Field(default=600, ge=1, description="Seconds.")
    jitter: bool = True
    retry_on: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_name(value, "retry policy")

    @field_validator("retry_on", mode="before")
    @classmethod
    def _dotted(cls, value: Any) -> Any:
        if isinstance(value, type | str):
            value = (value,)
        return tuple(
            f"{item.__module__}.{item.__qualname__}" if isinstance(item, type) else item
            for item in value
        )

    @field_validator("retry_on")
    @classmethod
    def _importable_shape(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if "." not in item:
                raise ValueError(
                    f"retry_on entry {item!r} must be a dotted name such as "
                    f"'builtins.{item}' or the exception class itself"
                )
        return value

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> RetryPolicy:
        if self.backoff_cap < self.backoff_base:
            raise ValueError(
                f"backoff_cap ({self.backoff_cap}) is below backoff_base ({self.backoff_base})"
            )
        return self


class WorkerHints(_Model):
    """What a plugin's tasks need from the worker that runs them.

    The host combines the hints of every plugin a worker runs, taking the strictest
    value (the smallest limit), unless the operator sets the value explicitly.
    """

    max_tasks_per_child: int | None = Field(default=None, ge=1)
    max_memory_per_child: int | None = Field(default=None, ge=1, description="KiB")
    concurrency: int | None = Field(default=None, ge=1)
    prefetch_multiplier: int | None = Field(default=None, ge=1)
    pool: Literal["prefork", "threads", "solo"] | None = None
