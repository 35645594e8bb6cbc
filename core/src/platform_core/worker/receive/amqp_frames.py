"""RabbitMQ: a content header py-amqp cannot decode marks its message unreadable.

py-amqp decodes a message's properties (its headers among them) while it reads
frames, before kombu or the gate see the message, and it decodes nested tables by
recursion: a header nested a few hundred levels deep raises ``RecursionError`` in
the worker's event loop, the connection drops, RabbitMQ redelivers the message and
the next worker dies the same way. The guarded frame handler catches any error
while a content header is decoded and feeds py-amqp a header of its own instead:
the same body size, content type :data:`~platform_core.deadletter.letters.UNREADABLE` and the
problem in a header. The body still arrives; the gate dead-letters the message
with its body and acknowledges it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from amqp.basic_message import Message
from amqp.exceptions import UnexpectedFrame
from amqp.method_framing import frame_handler
from kombu.transport import pyamqp

from platform_core.deadletter.letters import MARK, MARK_HEADER, PROBLEM_HEADER, UNREADABLE

CONTENT_HEADER = 2
_HEAD = struct.Struct(">HHQ")  # class id, weight (0), body size


def replacement_header(buf: bytes, problem: str) -> bytes:
    class_id, _, body_size = _HEAD.unpack_from(buf, 0)
    marker = Message(content_type=UNREADABLE, content_encoding="binary",
                     application_headers={PROBLEM_HEADER: problem, MARK_HEADER: MARK})
    properties: bytes = marker._serialize_properties()
    return _HEAD.pack(class_id, 0, body_size) + properties


def problem_of(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "not a message envelope: its AMQP headers nest too deep to read"
    return (f"not a message envelope: its AMQP properties cannot be read "
            f"({type(exc).__module__}.{type(exc).__name__})")


def guarded_frame_handler(connection: Any, callback: Callable[..., Any],
                          **kwargs: Any) -> Callable[[Any], Any]:
    inner = frame_handler(connection, callback, **kwargs)

    def on_frame(frame: Any) -> Any:
        frame_type, channel, buf = frame
        if frame_type != CONTENT_HEADER:
            return inner(frame)
        try:
            return inner(frame)
        except UnexpectedFrame:
            raise
        except Exception as exc:  # noqa: BLE001 - any undecodable header, same answer
            try:
                substitute = replacement_header(bytes(buf), problem_of(exc))
            except struct.error:
                raise exc from None
            return inner((frame_type, channel, substitute))

    return on_frame


class GuardedAMQPConnection(pyamqp.Connection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("frame_handler", guarded_frame_handler)
        super().__init__(*args, **kwargs)


class GuardedPyAMQPTransport(pyamqp.Transport):
    Connection = GuardedAMQPConnection


class GuardedPyAMQPSSLTransport(pyamqp.SSLTransport):
    Connection = GuardedAMQPConnection
