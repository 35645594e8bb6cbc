"""One beat at a time: a lock on the broker that is released when its holder dies.

Every ``platform beat`` takes the lock before it dispatches anything; the others
stand by and take it over once the holder is gone. How the lock dies with its
holder depends on the broker:

- Redis: the key ``platform:beat:lock`` (value ``hostname:pid``), set with
  ``SET NX PX`` and renewed every third of its expiry; a holder that stops renewing
  loses it when the key expires.
- RabbitMQ: the exclusive queue ``platform.beat.lock``, which the broker deletes with
  the connection that declared it (at once when the process dies, within about one
  heartbeat when its host or network does).
- Embedded broker: ``fcntl.flock`` on ``$PLATFORM_HOME/beat.lock``, which the kernel
  releases when the process exits, however it exits.

The lock also keeps each entry's last run, so a beat that takes over continues the
schedule where the previous holder left it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from platform_core.beat.amqp_lock import LOCK_QUEUE, STATE_QUEUE, AmqpLock
from platform_core.beat.file_lock import LOCK_FILE, FileLock
from platform_core.beat.lock import UNKNOWN, BeatLock, EntryState, NoLock, identity
from platform_core.beat.redis_lock import LOCK_KEY, STATE_KEY, RedisLock
from platform_core.urls import kind

__all__ = ["LOCK_FILE", "LOCK_KEY", "LOCK_QUEUE", "STATE_KEY", "STATE_QUEUE", "UNKNOWN",
           "AmqpLock", "BeatLock", "EntryState", "FileLock", "NoLock", "RedisLock", "for_app",
           "holder", "identity"]

DEFAULT_TIMEOUT = 30.0


def for_app(app: Any, schedule_filename: str | None = None) -> BeatLock:
    """The lock for ``app``'s broker (nothing is connected yet)."""
    conf = app.conf
    timeout = float(conf.get("platform_beat_lock_timeout") or DEFAULT_TIMEOUT)
    scope = conf.get("platform_beat_scope") or ""
    broker = kind(conf.broker_url or "")
    if broker == "redis":
        return RedisLock(app, timeout, scope)
    if broker == "amqp":
        return AmqpLock(app, timeout, scope)
    if broker == "embedded":
        lock_file = Path(conf.get("platform_beat_lock_file") or LOCK_FILE)
        state_file = Path(schedule_filename or conf.beat_schedule_filename)
        return FileLock(lock_file, state_file, timeout, scope)
    return NoLock(broker, timeout)


def holder(app: Any) -> str | None:
    """``hostname:pid`` of the beat that holds ``app``'s beat lock, or ``None``.

    Connects to the broker; raises what the broker client raises when it cannot.
    """
    lock = for_app(app)
    try:
        return lock.holder()
    finally:
        lock.close()
