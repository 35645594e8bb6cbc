"""The calls of a bulk send, read and checked, every one before anything is sent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from platform_core.app.arguments import EnqueueChecks, Prepared, refuse_serializer, shape
from platform_sdk.exceptions import InvalidTaskCall, PayloadTooLarge

#: Options that name one message and cannot be shared by many.
PER_MESSAGE = ("task_id", "argsrepr", "kwargsrepr", "producer", "connection", "link",
               "link_error", "chord", "chain", "group_id", "group_index")

FORMS = ("a tuple of positional arguments, a mapping of keyword arguments, or an "
         "(args, kwargs) pair")


def read(call: Any) -> tuple[Sequence[Any], Mapping[str, Any]] | None:
    """``(args, kwargs)`` of one call, or None when it has none of the accepted forms."""
    if isinstance(call, tuple | list):  # the common case first
        if (len(call) == 2 and isinstance(call[0], tuple | list)
                and isinstance(call[1], Mapping)):
            return call[0], call[1]
        return call, {}
    if isinstance(call, Mapping):
        return (), call
    return None


def _at(exc: InvalidTaskCall, index: int, total: int) -> InvalidTaskCall:
    message = f"call {index} of {total}: {exc}; nothing was sent"
    if isinstance(exc, PayloadTooLarge):
        found: InvalidTaskCall = PayloadTooLarge(message, task=exc.task, size=exc.size,
                                                 limit=exc.limit)
    else:
        found = InvalidTaskCall(message, task=exc.task, problems=exc.problems)
    found.index = index  # type: ignore[attr-defined]
    found.reason = str(exc)  # type: ignore[attr-defined]  # without the position
    return found


class Checked:
    """One call ready to send: its arguments, their JSON and the shape logs show."""

    __slots__ = ("args", "args_json", "argsrepr", "kwargs", "kwargs_json", "kwargsrepr")

    def __init__(self, prepared: Prepared, argsrepr: str, kwargsrepr: str) -> None:
        self.args, self.kwargs = prepared.args, prepared.kwargs
        self.args_json, self.kwargs_json = prepared.args_json, prepared.kwargs_json
        self.argsrepr, self.kwargsrepr = argsrepr, kwargsrepr


def check(checks: EnqueueChecks, name: str, calls: Iterable[Any],
          options: Mapping[str, Any]) -> list[Checked]:
    """Every call checked as ``delay()`` checks one; the first bad one raises, naming its
    index, and nothing is sent."""
    calls = calls if isinstance(calls, Sequence) else list(calls)
    refuse_serializer(name, options.get("serializer"))
    shared = sorted(k for k in PER_MESSAGE if k in options)
    if shared:
        raise InvalidTaskCall(
            f"task `{name}`: {', '.join(shared)} cannot be shared by many messages; send "
            "those calls one by one with apply_async, or build a canvas",
            task=name,
        )
    total = len(calls)
    out: list[Checked] = []
    append = out.append
    prepare = checks.prepare
    for index, call in enumerate(calls):
        read_ = read(call)
        if read_ is None:
            raise _at(InvalidTaskCall(
                f"task `{name}`: a call is a {type(call).__name__}; pass {FORMS} (one "
                "argument x is the tuple (x,))", task=name), index, total)
        args, kwargs = read_
        try:
            prepared = prepare(name, args, kwargs)
        except InvalidTaskCall as exc:
            raise _at(exc, index, total) from None
        argsrepr, kwargsrepr = shape(args, kwargs)  # as delay() shows them: types given
        append(Checked(prepared, argsrepr, kwargsrepr))
    return out
