"""The one choke point every delivered task message passes, on every transport.

The worker's task consumer is a :class:`TaskGate`. kombu hands it each message
(on AMQP still the raw frame, on Redis and the embedded broker an envelope the
guarded transports made sure can be read); the gate

1. turns it into a kombu message and checks it against the strict model of
   Celery's task protocol 2 (:mod:`.protocol`): anything that does not validate
   is dead-lettered with the field and the expected type, and acknowledged;
2. hands a valid message to Celery (strategy, request, the pool);
3. catches anything raised on the way: the message is dead-lettered with the
   exception's type and the code location (never its text, which may quote a
   value), acknowledged, and the worker goes on consuming.

So no message shape can stop a worker, and none is put back on its queue to
stop the next one. A message whose dead letter cannot be stored (the store is
down) stays unacknowledged and is delivered again later, as any other message.
:func:`guard_requests` extends step 3 to requests Celery applies later (after
an ETA, a rate limit).
"""

from __future__ import annotations

import contextlib
import logging
import os
import traceback
from collections.abc import Callable
from typing import Any

from celery.worker.state import task_ready
from kombu.messaging import Consumer

from platform_core.deadletter.letters import (
    UNREADABLE,
    is_unreadable,
    try_dead_letter,
    unreadable_problem,
)
from platform_core.worker.receive.protocol import Limits, message_problem

logger = logging.getLogger("platform.receive")


def limits_for(app: Any) -> Limits:
    return Limits.for_payload(int(app.conf.get("platform_max_payload_bytes") or 1_048_576))


def where(exc: BaseException) -> str:
    """``celery/worker/strategy.py:155 in task_message_handler``: the innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "an unknown place"
    frame = frames[-1]
    parts = frame.filename.replace(os.sep, "/").split("/site-packages/")[-1].split("/")
    return f"{'/'.join(parts[-3:])}:{frame.lineno} in {frame.name}"


def crash_reason(exc: BaseException) -> str:
    return (f"the worker could not handle the message: {type(exc).__name__} at {where(exc)} "
            "(valid in form, but Celery could not take it)")


def problem(message: Any, limits: Limits) -> str | None:
    """Why a kombu message is not a task message the worker can take, or None."""
    if message.content_type == UNREADABLE:
        return unreadable_problem(message) if is_unreadable(message) else FOREIGN
    # decode() caches the payload: Celery's request reads the same one
    return message_problem(message.headers, message.properties, message.content_type,
                           message.content_encoding, message.body, message.decode, limits)


def acknowledge(message: Any) -> None:
    try:
        if getattr(message, "acknowledged", False):
            return
        if hasattr(message, "ack"):
            message.ack()
        else:  # a raw AMQP frame that never became a kombu message
            message.channel.basic_ack(message.delivery_info["delivery_tag"])
    except Exception as exc:  # noqa: BLE001 - nothing more can be done for this message
        logger.error("Cannot acknowledge a dead-lettered message: %s at %s",
                     type(exc).__name__, where(exc))


HANDLED = "_platform_dead_lettered"


def mark_handled(message: Any) -> None:
    with contextlib.suppress(Exception):  # a message object that takes no attributes
        setattr(message, HANDLED, True)


def refuse(app: Any, message: Any, reason: str) -> None:
    """Dead-letter and acknowledge; on a store failure leave it unacknowledged. A message
    already dead-lettered (and acknowledged) on the way is not stored twice."""
    if getattr(message, HANDLED, False):
        acknowledge(message)
        return
    if try_dead_letter(app, message, reason) is not None:
        mark_handled(message)
        acknowledge(message)


FOREIGN = ("unreadable queue item, marked by another worker process (restored after it "
           "stopped) or by a producer; its bytes are kept raw")
COMPRESSED = "compressed message: the platform never compresses, and refuses to inflate"


def _uncompressed(frame: Any) -> bool:
    """Drop an AMQP frame's ``compression`` header before kombu inflates the body (a small
    frame can inflate to any size); whether it had one."""
    headers = getattr(frame, "properties", {}).get("application_headers")
    if isinstance(headers, dict) and headers.get("compression") is not None:
        del headers["compression"]
        return True
    return False


class TaskGate(Consumer):
    """kombu's consumer for the worker's task queues, with the gate in its callback."""

    app: Any = None
    limits: Limits = Limits.for_payload(1_048_576)

    def _receive_callback(self, message: Any) -> Any:
        if self.on_message is None:
            return super()._receive_callback(message)  # type: ignore[no-untyped-call]
        try:
            m2p = getattr(self.channel, "message_to_python", None)
            if m2p is not None:
                compressed = _uncompressed(message)
                message = m2p(message)
                if compressed:
                    refuse(self.app, message, COMPRESSED)
                    return None
            if self.accept is not None:
                message.accept = self.accept
            if message.errors:
                return message._reraise_error(self.on_decode_error)
            found = problem(message, self.limits)
            if found is not None:
                refuse(self.app, message, found)
                return None
            return self.on_message(message)
        except Exception as exc:  # noqa: BLE001 - the last-resort guard: nothing gets past
            refuse(self.app, message, crash_reason(exc))
            return None


def guard_requests(app: Any, handle: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap the consumer's ``on_task_request``: a request the pool cannot take is
    dead-lettered and acknowledged instead of raising into the timer or the loop."""

    def on_task_request(request: Any) -> Any:
        try:
            return handle(request)
        except Exception as exc:  # noqa: BLE001 - the last-resort guard for later applies
            with contextlib.suppress(Exception):  # not reserved yet
                task_ready(request)
            if try_dead_letter(app, request.message, crash_reason(exc)) is not None \
                    and not request.acknowledged:
                request.acknowledge()
            return None

    return on_task_request
