"""The beat lock on RabbitMQ: an exclusive queue, deleted with its holder's connection."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

from platform_core.beat.lock import UNKNOWN, BeatLock, EntryState, decode

logger = logging.getLogger("platform.beat")

LOCK_QUEUE = "platform.beat.lock"
STATE_QUEUE = "platform.beat.state"  # holds one message: the holder and every entry's state
NOT_FOUND, RESOURCE_LOCKED = 404, 405  # AMQP reply codes of a refused queue.declare


def _reply_code(exc: BaseException) -> int | None:
    code = getattr(exc, "reply_code", None)
    return code if isinstance(code, int) else None


class AmqpLock(BeatLock):
    def __init__(self, app: Any, timeout: float, scope: str = "") -> None:
        super().__init__(timeout, scope)
        self.app = app
        self.queue = self.named(LOCK_QUEUE, ".")
        self.state_queue = self.named(STATE_QUEUE, ".")
        self._connection: Any = None
        self._channel: Any = None

    @property
    def description(self) -> str:
        return f"RabbitMQ exclusive queue {self.queue}"

    @property
    def freed(self) -> str:
        return ("once its holder's connection closes (at its exit, or after "
                f"{self.timeout:g}s without heartbeats)")

    @property
    def lease(self) -> float:
        # RabbitMQ may have negotiated a shorter heartbeat than asked for.
        negotiated = getattr(getattr(self._connection, "connection", None), "heartbeat", None)
        if isinstance(negotiated, int | float) and negotiated > 0:
            return min(self.timeout, float(negotiated))
        return self.timeout

    def _connect(self) -> Any:
        # The broker deletes the exclusive queue once it misses this connection's heartbeats.
        connection = self.app.connection_for_write(
            heartbeat=self.timeout, transport_options={"max_retries": 0})
        connection.ensure_connection(max_retries=0)
        return connection

    def _state(self, channel: Any) -> Any:
        from kombu.entity import Queue

        return Queue(self.state_queue, durable=True, auto_delete=False, max_length=1,
                     channel=channel)

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.release()
        self._connection = self._channel = None

    def acquire(self) -> tuple[bool, str | None]:
        try:
            connection = self._connection or self._connect()
            channel = connection.channel()
            try:
                channel.queue_declare(queue=self.queue, exclusive=True, durable=False,
                                      auto_delete=False)
            except Exception as exc:
                if _reply_code(exc) != RESOURCE_LOCKED:
                    raise
                seen = self._peek_holder(connection)
                with contextlib.suppress(Exception):
                    connection.release()
                return False, seen or UNKNOWN
            self._connection, self._channel = connection, channel
            self.entries = self._take_state(channel)
            self._publish(channel)
            return True, None
        except Exception as exc:  # noqa: BLE001 - amqp and kombu raise many kinds
            logger.warning("beat: cannot take the beat lock (%s): %s: %s",
                           self.description, type(exc).__name__, exc)
            self._drop()
            return False, None

    def renew(self) -> bool:
        if self._channel is None:
            return False
        try:
            self._channel.queue_declare(queue=self.queue, passive=True)
            self._connection.heartbeat_check()
        except Exception as exc:  # noqa: BLE001
            logger.warning("beat: lost the connection that holds the beat lock (%s): %s: %s",
                           self.description, type(exc).__name__, exc)
            self._drop()
            return False
        return True

    def release(self) -> None:
        if self._channel is not None:
            with contextlib.suppress(Exception):
                self._channel.queue_delete(queue=self.queue)
        self._drop()

    def holder(self) -> str | None:
        with self.app.connection_for_write(transport_options={"max_retries": 0}) as connection:
            connection.ensure_connection(max_retries=0)
            try:
                connection.channel().queue_declare(queue=self.queue, passive=True)
            except Exception as exc:
                if _reply_code(exc) == NOT_FOUND:
                    return None
                if _reply_code(exc) == RESOURCE_LOCKED:
                    return self._peek_holder(connection) or UNKNOWN
                raise
            return self.identity  # passive declare succeeds only on the owning connection

    def _peek_holder(self, connection: Any) -> str | None:
        """The holder named in the state message, left in place for the holder."""
        with contextlib.suppress(Exception):
            message = self._state(connection.channel()).get(no_ack=False)
            if message is not None:
                holder = decode(message.body).get("holder")
                message.requeue()
                return str(holder) if holder else None
        return None

    def _take_state(self, channel: Any) -> dict[str, EntryState]:
        queue = self._state(channel)
        queue.declare()
        latest: dict[str, Any] = {}
        while (message := queue.get(no_ack=True)) is not None:
            state = decode(message.body)
            if state.get("saved_at", 0) >= latest.get("saved_at", 0):
                latest = state
        entries = latest.get("entries", {})
        return entries if isinstance(entries, dict) else {}

    def _publish(self, channel: Any) -> None:
        from kombu.messaging import Producer

        body = {"holder": self.identity, "saved_at": time.time(), "entries": self.entries}
        Producer(channel).publish(body, exchange="", routing_key=self.state_queue,
                                  serializer="json", delivery_mode=2,
                                  declare=[self._state(channel)])

    def load_state(self) -> dict[str, EntryState]:
        return dict(self.entries)

    def save_state(self, name: str, state: EntryState) -> bool:
        self.entries[name] = state
        if self._channel is None:
            return False
        try:
            self._publish(self._channel)
        except Exception as exc:  # noqa: BLE001
            logger.warning("beat: cannot record a run under the beat lock (%s): %s: %s",
                           self.description, type(exc).__name__, exc)
            self._drop()
            return False
        return True

    def close(self) -> None:
        self._drop()
