"""A task's status changes as a stream, for Server-Sent Events.

On a Redis result store every stored state is also published on the task's key
(Celery's Redis backend does it for ``AsyncResult.get``); one subscriber thread per
process holds one pub/sub connection for every open stream and wakes the streams whose
task changed. Other stores have no push, so their streams read the state every
``poll`` seconds (0.1 s). Either way each stream reads the stored state again every
``recheck`` seconds, so a missed message (a reconnect of the pub/sub connection) delays
an update but never loses the end of a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from platform_core.web.status import event_id

if TYPE_CHECKING:
    from platform_core.host import Host

logger = logging.getLogger("platform.api")

Wake = Callable[[], None]


class Subscriber:
    """One Redis pub/sub connection shared by every stream of this process."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._waiters: dict[str, set[Wake]] = {}
        self._changes: list[tuple[str, str, threading.Event]] = []
        self._thread: threading.Thread | None = None
        self._pending = threading.Event()  # a subscribe or unsubscribe waits to be applied

    def subscribe(self, channel: str, wake: Wake) -> threading.Event:
        """Call ``wake`` (from the subscriber's thread) whenever ``channel`` has a message;
        the returned event is set once the subscription is in place."""
        done = threading.Event()
        with self._lock:
            self._waiters.setdefault(channel, set()).add(wake)
            self._changes.append(("subscribe", channel, done))
            self._pending.set()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="platform-api-pubsub",
                                                daemon=True)
                self._thread.start()
        return done

    def unsubscribe(self, channel: str, wake: Wake) -> None:
        with self._lock:
            waiters = self._waiters.get(channel)
            if waiters is not None:
                waiters.discard(wake)
                if not waiters:
                    del self._waiters[channel]
                    self._changes.append(("unsubscribe", channel, threading.Event()))
                    self._pending.set()

    def _apply(self, pubsub: Any) -> None:
        with self._lock:
            changes, self._changes = self._changes, []
            self._pending.clear()
        for verb, channel, done in changes:
            getattr(pubsub, verb)(channel)
            done.set()

    def _run(self) -> None:
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                with self._lock:  # after a reconnect: every channel still wanted
                    wanted = list(self._waiters)
                if wanted:
                    pubsub.subscribe(*wanted)
                while True:
                    self._apply(pubsub)
                    if not pubsub.subscribed:
                        self._pending.wait()  # nothing to read until a stream subscribes
                        continue
                    # short, so a new stream's subscription waits at most this long
                    message = pubsub.get_message(timeout=0.01)
                    if message and message.get("type") == "message":
                        channel = message["channel"]
                        channel = channel.decode() if isinstance(channel, bytes) else channel
                        with self._lock:
                            waiters = list(self._waiters.get(channel, ()))
                        for wake in waiters:
                            wake()
            except Exception as exc:  # noqa: BLE001 - reconnect; the streams recheck meanwhile
                logger.warning("task event subscription lost (%s: %s); reconnecting",
                               type(exc).__name__, exc)
                time.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    pubsub.close()


def subscriber_for(host: Host) -> Subscriber | None:
    """A pub/sub subscriber of the host's result store, or None where it has no push."""
    backend = host.app.backend
    client = getattr(backend, "client", None)
    if client is None or not callable(getattr(client, "pubsub", None)) \
            or not hasattr(backend, "get_key_for_task"):
        return None
    return Subscriber(client)


async def changes(read: Callable[[], dict[str, Any]], *, host: Host,
                  subscriber: Subscriber | None, task_id: str,
                  last_event_id: str | None, poll: float = 0.1,
                  recheck: float = 2.0) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``(event id, status)`` each time the task's status changes, until it is ready.

    A status whose id is ``last_event_id`` (the client saw it before reconnecting) is
    not sent again.
    """
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def wake() -> None:
        loop.call_soon_threadsafe(changed.set)

    channel = ""
    subscribed: threading.Event | None = None
    if subscriber is not None:
        channel = host.app.backend.get_key_for_task(task_id).decode()
        subscribed = subscriber.subscribe(channel, wake)
    interval = recheck if subscriber is not None else poll
    last = last_event_id
    try:
        while True:
            changed.clear()
            status = await anyio.to_thread.run_sync(read)
            current = event_id(status)
            if current != last:
                last = current
                yield current, status
            if status["ready"]:
                return
            if subscribed is not None:
                # The first state is sent at once; once the subscription is in place the
                # state is read again, so nothing stored in between is missed.
                await anyio.to_thread.run_sync(subscribed.wait, 5.0)
                subscribed = None
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), interval)
    finally:
        if subscriber is not None:
            subscriber.unsubscribe(channel, wake)
