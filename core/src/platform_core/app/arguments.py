"""A task's arguments, checked as they are sent and validated as they arrive.

:class:`EnqueueChecks` runs in the caller's process, from the app's ``send_task``
(which ``delay``, ``apply_async``, signatures, ``send_task`` by name, retries,
beat and ``platform send`` all go through), so a bad call fails where it is made:

- the arguments must fit the task's signature (see :mod:`platform_core.checks.signatures`);
  a task this process does not know (sent by name only) is not checked;
- the message is JSON: another ``serializer`` is refused;
- the serialized arguments must not exceed ``max_payload_bytes``;
- the message's ``argsrepr`` / ``kwargsrepr`` (what Celery's logs, events and
  monitoring show instead of the arguments) describe only the arguments' types,
  unless the caller set them.

In the worker, :func:`validating` wraps each task's function so it receives its
arguments validated back into their annotated types.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from kombu.utils.json import JSONEncoder

from platform_core.checks.signatures import CallSpec
from platform_sdk.exceptions import InvalidTaskCall, PayloadTooLarge

JSON = "json"


def shape(args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[str, str]:
    """``argsrepr`` and ``kwargsrepr`` that show types, never values."""
    if not args and not kwargs:
        return "()", "{}"
    argsrepr = "(" + ", ".join(f"<{type(a).__name__}>" for a in args) + ("," if len(args) == 1
                                                                          else "") + ")"
    kwargsrepr = "{" + ", ".join(f"{k!r}: <{type(v).__name__}>" for k, v in kwargs.items()) + "}"
    return argsrepr, kwargsrepr


class Prepared(NamedTuple):
    """One call, checked: its arguments to send and their JSON, as the message carries it."""

    args: list[Any]
    kwargs: dict[str, Any]
    args_json: str
    kwargs_json: str


_json = JSONEncoder()  # kombu's encoder, as its ``dumps`` uses it; one instance, reentrant


class EnqueueChecks:
    def __init__(self, calls: Mapping[str, CallSpec], max_payload_bytes: int) -> None:
        self.calls = dict(calls)
        self.max_payload_bytes = max_payload_bytes

    def __call__(self, name: str, args: Sequence[Any] | None, kwargs: Mapping[str, Any] | None,
                 options: dict[str, Any]) -> tuple[Sequence[Any], Mapping[str, Any]]:
        """Check one message; return the arguments to send. ``options`` may be updated."""
        if "argsrepr" not in options or "kwargsrepr" not in options:
            argsrepr, kwargsrepr = shape(args or (), kwargs or {})
            options.setdefault("argsrepr", argsrepr)
            options.setdefault("kwargsrepr", kwargsrepr)
        refuse_serializer(name, options.get("serializer"))
        prepared = self.prepare(name, args, kwargs)
        return prepared.args, prepared.kwargs

    def prepare(self, name: str, args: Sequence[Any] | None,
                kwargs: Mapping[str, Any] | None) -> Prepared:
        """The arguments fitted to the task's signature, as JSON within the payload cap."""
        call = self.calls.get(name)
        if call is not None:
            args, kwargs = call.for_message(args, kwargs)
        args, kwargs = list(args or ()), dict(kwargs or {})
        try:
            args_json = _json.encode(args) if args else "[]"
            kwargs_json = _json.encode(kwargs) if kwargs else "{}"
        except (TypeError, ValueError) as exc:
            raise InvalidTaskCall(
                f"task `{name}`: its arguments cannot be sent as JSON ({exc}); pass JSON values "
                "(or annotate the parameter with a type pydantic turns into JSON)",
                task=name,
            ) from None
        size = len(args_json) + len(kwargs_json) + 4  # [args, kwargs]; ASCII: chars are bytes
        if size > self.max_payload_bytes:
            raise PayloadTooLarge(
                f"task `{name}`: its arguments are {size:,} bytes as JSON, over the limit of "
                f"{self.max_payload_bytes:,} (max_payload_bytes, PLATFORM_MAX_PAYLOAD_BYTES); "
                "pass a reference to the data (a path, a key, a URL) instead of the data",
                task=name, size=size, limit=self.max_payload_bytes,
            )
        return Prepared(args, kwargs, args_json, kwargs_json)


def refuse_serializer(name: str, serializer: Any) -> None:
    if serializer is not None and serializer != JSON:
        raise InvalidTaskCall(
            f"task `{name}`: serializer {serializer!r} is refused; the platform sends and "
            "accepts JSON only, so drop the serializer option",
            task=name,
        )


def validating(fn: Callable[..., Any], call: CallSpec, *, bind: bool) -> Callable[..., Any]:
    """``fn`` receiving its arguments validated into their annotated types.

    Returns ``fn`` itself when no parameter is annotated: nothing to check.
    """
    if not call.checks_anything:
        return fn

    if bind:
        def run_bound(task: Any, *args: Any, **kwargs: Any) -> Any:
            args_, kwargs_ = call.for_call(args, kwargs)
            return fn(task, *args_, **kwargs_)

        return functools.update_wrapper(run_bound, fn)

    def run(*args: Any, **kwargs: Any) -> Any:
        args_, kwargs_ = call.for_call(args, kwargs)
        return fn(*args_, **kwargs_)

    return functools.update_wrapper(run, fn)
