"""Transports that hand unreadable queue items to the worker instead of crashing it.

kombu's Redis and filesystem transports parse each queue item as a JSON envelope
(``{"body", "headers", "properties", ...}``) before any consumer sees it. Bytes that
are not JSON, JSON that is not an envelope, or a body that cannot be decoded raise
inside the transport, and the worker stops ("Unrecoverable error") or reconnects
forever. These subclasses turn such an item into a well-formed envelope of content
type :data:`~platform_core.deadletter.letters.UNREADABLE` that carries the original
bytes; the worker's task consumer (:class:`~.gate.TaskGate`) then moves it to the
dead-letter store and acknowledges it. Every message also gets a delivery tag of the
worker's own: the
broker's unacknowledged-message bookkeeping is keyed by it, and a producer's tag
may be unusable (a mapping) or shared by copies of one message.

The app uses them through :class:`GuardedAMQP` (``amqp_cls``), whose connections
pick the guarded subclass of the transport the broker URL names; URLs, ``as_uri()``
and every other transport are unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from queue import Empty
from typing import Any

from celery.app.amqp import AMQP
from kombu.connection import Connection, ConnectionPool, PooledConnection
from kombu.transport import filesystem, pyamqp, redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

from platform_core.broker.replication import WaitsForReplicas
from platform_core.worker.receive.amqp_frames import (
    GuardedPyAMQPSSLTransport,
    GuardedPyAMQPTransport,
)
from platform_core.worker.receive.envelope import (
    GuardedMessage,
    checked,
    envelope_problem,
    parse_problem,
    unreadable,
)
from platform_core.worker.receive.filesystem import GuardedFilesystemTransport
from platform_core.worker.receive.gate import TaskGate, limits_for, where

logger = logging.getLogger("platform.receive")


def _decodes(item: Any) -> bool:
    try:
        loads(bytes_to_str(item))
    except Exception:  # noqa: BLE001 - kombu's reader raises all kinds (typed-JSON markers)
        return False
    return True


def _parse_failure(channel: Any, exc: Exception) -> bool:
    """Whether ``exc`` came from reading a queue item (not from the connection)."""
    return not isinstance(exc, channel.connection.connection_errors)


class _DeliverGuard:
    def _deliver(self, message: Any, queue: str) -> Any:
        problem = envelope_problem(message)
        message = checked(message) if problem is None else unreadable(message, queue, problem)
        return super()._deliver(message, queue)  # type: ignore[misc]


class _RedisChannelGuard:
    """Keeps the item BRPOP/RPOP returned, so an item kombu cannot parse is not lost."""

    Message = GuardedMessage
    _brpopped: Any = None
    _rpopped: Any = None
    _getting = False
    _plain_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        # kombu makes a client per acknowledgement, and each copies redis-py's ~200
        # response callbacks: half of the main process's time per task went there. A
        # client is thread-safe (each command takes a connection from the pool), so the
        # plain one is made once per pool. Only the ones that pop are watched: the
        # asynchronous client (BRPOP) and the one ``_get`` asks for (RPOP), made anew.
        if not asynchronous and not self._getting:
            pool = self.pool  # type: ignore[attr-defined]
            cached = self._plain_client
            if cached is not None and cached.connection_pool is pool:
                return cached
            self._plain_client = super()._create_client(False)  # type: ignore[misc]
            return self._plain_client
        client = super()._create_client(asynchronous)  # type: ignore[misc]
        callbacks = client.response_callbacks
        if asynchronous:
            client.set_response_callback("BRPOP", self._keep("_brpopped", callbacks.get("BRPOP")))
        if self._getting:
            client.set_response_callback("RPOP", self._keep("_rpopped", callbacks.get("RPOP")))
        return client

    def _keep(self, attr: str, inner: Callable[..., Any] | None) -> Callable[..., Any]:
        def keep(response: Any, **options: Any) -> Any:
            value = inner(response, **options) if inner is not None else response
            setattr(self, attr, value)
            return value

        return keep

    def _brpop_read(self, **options: Any) -> Any:
        self._brpopped = None
        try:
            return super()._brpop_read(**options)  # type: ignore[misc]
        except Exception as exc:
            popped, self._brpopped = self._brpopped, None
            if not _parse_failure(self, exc) or not popped or _decodes(popped[1]):
                raise
            key = bytes_to_str(popped[0])
            prefix = getattr(self, "global_keyprefix", "") or ""
            if prefix and key.startswith(prefix):
                key = key[len(prefix):]
            queue = key.rsplit(self.sep, 1)[0]  # type: ignore[attr-defined]
            problem = parse_problem(exc)
            self.connection._deliver(unreadable(popped[1], queue, problem), queue)  # type: ignore[attr-defined]
            return True

    def _receive_one(self, c: Any) -> Any:
        """A broadcast (fanout: remote control, events) kombu cannot read is dropped with a
        warning, as kombu itself drops some, instead of stopping every worker subscribed
        (kombu's reader raises more than the errors it catches)."""
        try:
            return super()._receive_one(c)  # type: ignore[misc]
        except Empty:
            raise
        except Exception as exc:
            if not _parse_failure(self, exc):
                raise
            logger.warning("Dropped a broadcast message that cannot be read: %s at %s",
                           type(exc).__name__, where(exc))
            raise Empty() from None

    def close(self) -> None:
        """kombu's ``close``, which first reads the answer to an outstanding BRPOP. If
        the broker is gone that read raises and kombu leaves the channel half closed;
        the worker's second close then builds a client on a transport already torn
        down and stops with an ``AttributeError``. Nothing came back, so go on closing:
        the unacknowledged messages stay in Redis for the visibility sweep."""
        if self._in_poll:  # type: ignore[attr-defined]
            try:
                self._brpop_read()
            except Empty:
                pass
            except self.connection.connection_errors:  # type: ignore[attr-defined]
                pass
        super().close()  # type: ignore[misc]

    def _get(self, queue: str, timeout: Any = None) -> Any:
        self._rpopped = None
        self._getting = True
        try:
            payload = super()._get(queue)  # type: ignore[misc]
        except Exception as exc:
            item, self._rpopped = self._rpopped, None
            if not _parse_failure(self, exc) or item is None or _decodes(item):
                raise
            return unreadable(item, queue, parse_problem(exc))
        finally:
            self._getting = False
        problem = envelope_problem(payload)
        return checked(payload) if problem is None else unreadable(payload, queue, problem)


class GuardedRedisChannel(_RedisChannelGuard, WaitsForReplicas, redis.Channel):
    pass


class GuardedSentinelChannel(_RedisChannelGuard, WaitsForReplicas, redis.SentinelChannel):
    pass


class GuardedRedisTransport(_DeliverGuard, redis.Transport):
    Channel = GuardedRedisChannel


class GuardedSentinelTransport(_DeliverGuard, redis.SentinelTransport):
    Channel = GuardedSentinelChannel


GUARDED: dict[type, type] = {
    pyamqp.Transport: GuardedPyAMQPTransport,
    pyamqp.SSLTransport: GuardedPyAMQPSSLTransport,
    redis.Transport: GuardedRedisTransport,
    redis.SentinelTransport: GuardedSentinelTransport,
    filesystem.Transport: GuardedFilesystemTransport,
}


class GuardedConnection(Connection):
    def get_transport_cls(self) -> Any:
        cls = super().get_transport_cls()  # type: ignore[no-untyped-call]
        return GUARDED.get(cls, cls)

    def Pool(self, limit: int | None = None, **kwargs: Any) -> GuardedConnectionPool:
        """The pool Celery's producers take connections from (``app.pool``)."""
        return GuardedConnectionPool(self, limit=limit, **kwargs)  # type: ignore[no-untyped-call]


class GuardedPooledConnection(PooledConnection, GuardedConnection):
    """A pool's connection, with the guarded transports.

    kombu's pool builds its connections as :class:`~kombu.connection.PooledConnection`
    whatever the class of the connection it was made from, so without this every
    producer (``delay()``, ``apply_async``, retries, beat) would publish through the
    plain transport: on the embedded broker, a message file written in place, which a
    worker polling at that moment reads half-written.
    """


class GuardedConnectionPool(ConnectionPool):
    def new(self) -> GuardedPooledConnection:
        info = dict(self.connection._info(resolve=False))
        return GuardedPooledConnection(self, **info)  # type: ignore[no-untyped-call]


class GuardedAMQP(AMQP):  # type: ignore[misc]
    Connection = GuardedConnection

    def TaskConsumer(self, channel: Any, queues: Any = None, accept: Any = None,
                     **kw: Any) -> TaskGate:
        """Celery's task consumer, with the gate in its message callback."""
        if accept is None:
            accept = self.app.conf.accept_content
        gate = TaskGate(channel, accept=accept,  # type: ignore[no-untyped-call]
                        queues=queues or list(self.queues.consume_from.values()), **kw)
        gate.app = self.app
        gate.limits = limits_for(self.app)
        return gate
