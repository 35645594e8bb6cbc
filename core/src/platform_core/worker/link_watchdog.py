"""Consumer bootstep: a worker whose broker link went half-open reconnects.

A NAT or a load balancer that silently drops a flow leaves both sockets open: no
error, no end of stream. The worker's main process waits on a reply that never comes,
alive and silent, while tasks pile up (Celery and kombu do not notice; see
docs/reliability.md). A thread of this step's own watches the consumer's link, because
the event loop itself may be stuck in a synchronous call on that link:

- Redis: every blocking pop (BRPOP) carries a server-side timeout, so a live server
  always answers within it. A pop unanswered for its timeout plus ``stall_timeout``
  seconds, with nothing waiting to be read, is a dead link.
- RabbitMQ: with heartbeats on, the broker sends a frame at least every half
  heartbeat. No frame for a heartbeat plus ``stall_timeout`` seconds, with nothing
  waiting to be read, is a dead link.

The step then shuts down the link's sockets (``shutdown``, never ``close``: the loop
thread owns them). Whoever waits on one gets an end of stream at once, and Celery's own
connection-loss path reconnects the consumer. Nothing is acknowledged or restored
here: Redis gives back unacknowledged messages from its unacked index, and RabbitMQ
requeues what it had delivered on the dead connection when it drops it.
"""

from __future__ import annotations

import logging
import multiprocessing
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import bootsteps

logger = logging.getLogger("platform.broker")

INTERVAL = 1.0  # seconds between two looks at the link

#: Called with the broker kind ("redis", "amqp") for each link dropped (metrics).
listeners: list[Callable[[str], None]] = []

# How many stalls the main process has found, shared with the pool children it forks:
# a child's own links to the same broker and result store (results, retries, sends
# from task bodies) went through the same NAT, so it drops them before its next task.
_stalls: Any = None
_seen = 0


def share_with_children() -> None:
    """Called by the pool before it forks its children."""
    global _stalls
    if _stalls is None:
        _stalls = multiprocessing.RawValue("L", 0)


def renew_after_stall(app: Any) -> None:
    """In a pool child, before a task: drop this process's broker and result-store
    connections if the main process found a stalled link since the last task."""
    global _seen
    stalls = _stalls
    if stalls is None or stalls.value == _seen:
        return
    _seen = stalls.value
    for name, drop in (("producer pool", _drop_producer_links),
                       ("result store", _drop_result_store_links)):
        try:
            drop(app)
        except Exception as exc:  # noqa: BLE001 - no such link (not Redis), or already gone
            logger.debug("dropping the %s's links after a stall: %s", name, type(exc).__name__)


def _drop_producer_links(app: Any) -> None:
    # As Celery itself does after a fork (``Celery._after_fork``): the next send builds a
    # new pool. The old connections are not closed here: closing talks to the broker,
    # over links that may be the frozen ones.
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


def _drop_result_store_links(app: Any) -> None:
    client = getattr(app.backend, "client", None)  # Celery's Redis result backend
    if client is not None:
        client.connection_pool.disconnect()


@dataclass(frozen=True)
class Stall:
    waited: float  # seconds the link owed an answer
    what: str  # what it owed, for the log


def _readable(sock: Any) -> bool:
    """Whether ``sock`` has data (or an end of stream) to read, without reading it."""
    poller = select.poll()  # not select(): a worker may hold descriptors past 1023
    try:
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except (OSError, ValueError):  # closed meanwhile: the loop thread saw it
        return True


def _redis_channels(connection: Any) -> list[Any]:
    # The private names, never the properties: those would build or connect from here.
    cycle = getattr(connection._transport, "cycle", None)
    return list(getattr(cycle, "_channels", ()) or ())


def redis_stall(connection: Any, stall_timeout: float, now: float,
                suspects: set[tuple[int, float]]) -> Stall | None:
    """A pop overdue on two looks in a row: kombu sets the pop and its time one after the
    other, so one look may pair a new pop with the time of an old one."""
    seen: set[tuple[int, float]] = set()
    found = None
    for channel in _redis_channels(connection):
        pending, sent = channel._in_poll, channel._brpop_sent_at
        if not pending or sent is None or sent != channel._brpop_sent_at:
            continue
        waited = now - sent
        if waited <= (channel.brpop_timeout or 0) + stall_timeout:
            continue
        sock = getattr(pending, "_sock", None)
        if sock is None or _readable(sock):
            continue
        seen.add((id(pending), sent))
        if (id(pending), sent) in suspects and found is None:
            found = Stall(waited, f"a BRPOP with a {channel.brpop_timeout:g} s timeout")
    suspects.clear()
    suspects.update(seen)
    return found


def redis_sockets(connection: Any) -> list[Any]:
    """Every socket the consumer's channels hold: the pop, pub/sub and command links."""
    found: list[Any] = []
    for channel in _redis_channels(connection):
        links = [channel._in_poll]
        for name in ("client", "subclient"):
            client = channel.__dict__.get(name)  # cached properties: never build one here
            links.append(getattr(client, "connection", None))
        for name in ("_pool", "_async_pool"):  # redis-py pools kombu made for the channel
            pool = getattr(channel, name, None)
            if pool is not None:
                links.extend([*pool._available_connections, *pool._in_use_connections])
        found.extend(link._sock for link in links if getattr(link, "_sock", None) is not None)
    return found


class _AmqpClock:
    """When the consumer's AMQP connection last handled a frame from the broker."""

    def __init__(self) -> None:
        self.frames = -1
        self.since = 0.0

    def stall(self, connection: Any, stall_timeout: float, now: float) -> Stall | None:
        link = connection._connection  # not the property, which would connect from here
        if link is None:
            return None
        heartbeat = getattr(link, "heartbeat", None) or 0
        if not heartbeat:  # without heartbeats an idle link is silent: nothing to judge
            return None
        if link.bytes_recv != self.frames:
            self.frames, self.since = link.bytes_recv, now
            return None
        waited = now - self.since
        sock = getattr(link, "sock", None)
        if waited <= heartbeat + stall_timeout or sock is None or _readable(sock):
            return None
        return Stall(waited, f"a frame (heartbeat {heartbeat:g} s)")


def _sockets(connection: Any) -> list[Any]:
    try:
        if connection.transport.driver_type == "redis":
            return redis_sockets(connection)
        # The property: the worker-heartbeat connection is established through it.
        sock = getattr(connection.connection, "sock", None)
    except Exception:  # noqa: BLE001 - a connection closed meanwhile has nothing to shut
        return []
    return [sock] if sock is not None else []


def _shut(sockets: list[Any]) -> int:
    cut = 0
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
            cut += 1
        except OSError:
            pass
    return cut


class LinkWatchdog(bootsteps.StartStopStep):  # type: ignore[misc]
    label = "Link watchdog"
    requires = ("celery.worker.consumer.connection:Connection",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.stall_timeout = float(c.app.conf.get("platform_stall_timeout") or 0)
        self.connection: Any = None
        self.others: list[Any] = []
        self.recoveries = 0
        self.last_recovery: float | None = None
        self._amqp = _AmqpClock()
        self._suspects: set[tuple[int, float]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._node = str(getattr(c, "hostname", "") or "")

    def start(self, c: Any) -> None:
        if not self.stall_timeout:
            return
        connection = c.connection
        transport = getattr(connection, "transport", None)
        if transport is None or getattr(transport, "driver_type", "") not in ("redis", "amqp"):
            return
        self._amqp = _AmqpClock()
        self._suspects = set()
        dispatcher = getattr(c, "event_dispatcher", None)  # worker heartbeats: a link of its own
        self.others = [conn for conn in (getattr(dispatcher, "connection", None),)
                       if conn is not None and conn is not connection]
        self.connection = connection
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="platform-link-watchdog",
                                            daemon=True)
            self._thread.start()

    def stop(self, c: Any) -> None:
        self.connection = None

    def shutdown(self, c: Any) -> None:
        self.connection = None
        self._stop.set()

    def info(self, c: Any) -> dict[str, Any]:
        """Shown by ``platform inspect stats`` (Celery merges bootsteps' info there)."""
        return {"platform_link": {
            "stall_timeout": self.stall_timeout,
            "stalled_link_recoveries": self.recoveries,
            "last_recovery": self.last_recovery,
        }}

    def _watch(self) -> None:
        while not self._stop.wait(INTERVAL):
            connection = self.connection
            if connection is None:
                continue
            try:
                self.check(connection, time.monotonic())
            except Exception as exc:  # noqa: BLE001 - the watchdog must outlive a bad look
                logger.debug("link watchdog: %s: %s", type(exc).__name__, exc)

    def check(self, connection: Any, now: float) -> Stall | None:
        transport = connection._transport
        if transport is None:
            return None
        driver = transport.driver_type
        if driver == "redis":
            stall = redis_stall(connection, self.stall_timeout, now, self._suspects)
        else:
            stall = self._amqp.stall(connection, self.stall_timeout, now)
        if stall is None or connection is not self.connection:
            return None
        sockets = [sock for link in (connection, *self.others) for sock in _sockets(link)]
        self.connection = None  # armed again when the consumer has reconnected
        cut = _shut(sockets)
        self.recoveries += 1
        self.last_recovery = time.time()
        if _stalls is not None:
            _stalls.value += 1
        for listener in listeners:
            listener(driver)
        logger.warning(
            "Broker link stalled: the %s broker owed %s and sent nothing for %.0f s (a NAT "
            "or load balancer that dropped the flow?); closed %d socket(s) and reconnecting. "
            "Set `stall_timeout` to change when this happens (0 turns it off).",
            driver, stall.what, stall.waited, cut)
        return stall
