"""The kombu envelope of the JSON transports (Redis, the embedded broker): what kombu can
handle, the unreadable envelope around what it cannot, and the message class that
never raises on either.

A transport that has checked an envelope marks it (:func:`checked`), so the message
class does not check it again; the mark is a Python object, which no JSON can carry.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from kombu.transport.virtual import Message

from platform_core.deadletter.letters import (
    MARK,
    MARK_HEADER,
    PROBLEM_HEADER,
    QUEUE_HEADER,
    UNREADABLE,
)
from platform_core.stores import jsontext
from platform_core.stores.jsontext import depth_over
from platform_core.worker.receive.gate import COMPRESSED

ENVELOPE_DEPTH = 200
_CHECKED = "x-platform-checked"
_OK = object()


def checked(payload: dict[str, Any]) -> dict[str, Any]:
    payload[_CHECKED] = _OK
    return payload


def unreadable(raw: Any, queue: str | None, problem: str) -> dict[str, Any]:
    """A valid envelope around ``raw`` (bytes, text, or JSON that is no envelope)."""
    if isinstance(raw, (bytes, bytearray)):
        data = bytes(raw)
    elif isinstance(raw, str):
        data = raw.encode("utf-8", "surrogateescape")
    else:
        data = jsontext.dumps(raw).encode("utf-8", "surrogateescape")
    return {
        "body": base64.b64encode(data).decode("ascii"),
        "content-type": UNREADABLE,
        "content-encoding": "binary",
        "headers": {PROBLEM_HEADER: problem, QUEUE_HEADER: queue, MARK_HEADER: MARK},
        "properties": {
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
            "delivery_mode": 2,
            "priority": 0,
            "delivery_info": {"exchange": "", "routing_key": queue or ""},
        },
    }


def envelope_problem(payload: Any) -> str | None:
    """What keeps ``payload`` from being a kombu envelope kombu can handle, or None.

    The delivery tag is not checked: the worker assigns its own (:func:`retag`).
    """
    if not isinstance(payload, dict):
        return f"not a message envelope: a JSON {type(payload).__name__}"
    properties = payload.get("properties")
    if not isinstance(properties, dict):
        return "not a message envelope: no properties"
    info = properties.get("delivery_info")
    if not isinstance(info, dict) or not isinstance(info.get("exchange"), str) \
            or not isinstance(info.get("routing_key"), str):
        return "not a message envelope: no delivery info with an exchange and a routing key"
    if not isinstance(payload.get("headers") or {}, dict):
        return "not a message envelope: headers are not a mapping"
    if (payload.get("headers") or {}).get("compression") is not None:
        return COMPRESSED
    for key in ("content-type", "content-encoding"):
        if not isinstance(payload.get(key), (str, type(None))):
            return f"not a message envelope: {key} is not text"
    if not isinstance(payload.get("body"), (str, type(None))):
        return "not a message envelope: the body is not text"
    if properties.get("body_encoding") not in (None, "base64"):
        return "not a message envelope: body_encoding is not base64"
    priority = properties.get("priority")
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
        return "not a message envelope: priority is not an integer"
    if depth_over(payload, ENVELOPE_DEPTH):
        # kombu writes the envelope back (unacknowledged-message bookkeeping, restore)
        # by recursion: keep it well below where that would give up
        return f"not a message envelope: nested deeper than {ENVELOPE_DEPTH} levels"
    return None


def retag(payload: dict[str, Any]) -> str:
    """Give the envelope a delivery tag of this worker's own (kept if it is restored)."""
    tag = payload["properties"]["delivery_tag"] = uuid.uuid4().hex
    return tag


def parse_problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "not a message envelope: JSON nested too deep to read"
    return f"not a message envelope: {type(exc).__name__} while reading it as JSON"


class GuardedMessage(Message):
    def __init__(self, payload: Any, channel: Any = None, **kwargs: Any) -> None:
        if isinstance(payload, dict) and payload.pop(_CHECKED, None) is _OK:
            problem = None
        else:
            problem = envelope_problem(payload)
        if problem is None:
            if payload.get("headers") is None:
                payload["headers"] = {}  # kombu's restore of an unacknowledged one needs it
            try:
                super().__init__(payload, channel=channel, **kwargs)  # type: ignore[no-untyped-call]
                self.delivery_tag = retag(payload)
                return
            except Exception as exc:  # noqa: BLE001 - whatever kombu trips on, keep the bytes
                kind = type(exc)
                problem = f"cannot decode the message body ({kind.__module__}.{kind.__name__})"
                queue = payload["properties"]["delivery_info"]["routing_key"] or None
        else:
            queue = None
        envelope = unreadable(payload, queue, problem)
        super().__init__(envelope, channel=channel, **kwargs)  # type: ignore[no-untyped-call]
