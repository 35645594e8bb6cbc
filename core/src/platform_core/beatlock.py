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

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from .brokers import kind

logger = logging.getLogger("platform.beat")

LOCK_KEY = "platform:beat:lock"
STATE_KEY = "platform:beat:schedule"  # hash: entry name -> its run state (JSON)
LOCK_QUEUE = "platform.beat.lock"
STATE_QUEUE = "platform.beat.state"  # holds one message: the holder and every entry's state
LOCK_FILE = "beat.lock"
DEFAULT_TIMEOUT = 30.0

UNKNOWN = "unknown"

EntryState = dict[str, Any]  # {"last_run_at": ISO 8601, "total_run_count": int}

# Redis scripts: each acts only while the caller's value is still in the lock key.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
_SAVE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('hset', KEYS[2], ARGV[2], ARGV[3])
  return 1
end
return 0
"""


def identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class BeatLock(ABC):
    """A lock at most one process holds; ``scope`` separates partial beats."""

    def __init__(self, timeout: float, scope: str = "") -> None:
        self.timeout = timeout
        self.scope = scope
        self.identity = identity()
        self.entries: dict[str, EntryState] = {}

    @property
    def lease(self) -> float:
        """Seconds after which a holder that stopped renewing may have lost the lock."""
        return self.timeout

    def named(self, base: str, sep: str) -> str:
        return f"{base}{sep}{self.scope}" if self.scope else base

    @property
    @abstractmethod
    def description(self) -> str:
        """Where the lock lives, for log lines."""

    @property
    @abstractmethod
    def freed(self) -> str:
        """When a standby may take the lock over, for log lines."""

    @abstractmethod
    def acquire(self) -> tuple[bool, str | None]:
        """Take the lock if it is free (or already ours): ``(True, None)``; else
        ``(False, holder)``, the holder being ``None`` when the lock cannot be reached."""

    @abstractmethod
    def renew(self) -> bool:
        """Extend the lock; ``False`` when it is no longer ours."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock up (clean exit)."""

    @abstractmethod
    def holder(self) -> str | None:
        """``hostname:pid`` of the holder, ``None`` when nobody holds the lock."""

    @abstractmethod
    def load_state(self) -> dict[str, EntryState]:
        """Each entry's last run, as the previous holder left it."""

    @abstractmethod
    def save_state(self, name: str, state: EntryState) -> bool:
        """Record an entry's run; ``False`` when the lock turned out not to be ours."""

    def close(self) -> None:  # noqa: B027 - most locks hold nothing to close
        """Drop connections without releasing anything."""


class RedisLock(BeatLock):
    def __init__(self, app: Any, timeout: float, scope: str = "") -> None:
        super().__init__(timeout, scope)
        self.app = app
        options = app.conf.broker_transport_options or {}
        prefix = options.get("global_keyprefix", "")
        self.key = prefix + self.named(LOCK_KEY, ":")
        self.state_key = prefix + STATE_KEY
        self._connection: Any = None
        self._client: Any = None

    @property
    def description(self) -> str:
        return f"Redis key {self.key}"

    @property
    def freed(self) -> str:
        return f"once its holder has not renewed it for {self.timeout:g}s"

    def _redis(self) -> Any:
        if self._client is None:
            import redis

            # kombu's pool carries the broker's TLS, password and socket options.
            self._connection = self.app.connection_for_write(transport_options={"max_retries": 0})
            self._client = redis.Redis(connection_pool=self._connection.default_channel.pool)
        return self._client

    def _reset(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.release()
        self._connection = self._client = None

    def _run(self, what: str, fn: Any) -> Any:
        try:
            return fn(self._redis())
        except Exception as exc:  # noqa: BLE001 - redis-py and kombu raise many kinds
            logger.warning("beat: cannot %s the beat lock (%s): %s: %s",
                           what, self.description, type(exc).__name__, exc)
            self._reset()
            raise _Unreachable from None

    def acquire(self) -> tuple[bool, str | None]:
        ttl = int(self.timeout * 1000)
        try:
            if self._run("take", lambda r: r.set(self.key, self.identity, nx=True, px=ttl)):
                return True, None
            if self._run("renew", lambda r: r.eval(_RENEW, 1, self.key, self.identity, ttl)):
                return True, None
            value = self._run("read", lambda r: r.get(self.key))
        except _Unreachable:
            return False, None
        return False, value.decode() if value else UNKNOWN

    def renew(self) -> bool:
        ttl = int(self.timeout * 1000)
        try:
            return bool(self._run("renew",
                                  lambda r: r.eval(_RENEW, 1, self.key, self.identity, ttl)))
        except _Unreachable:
            return False

    def release(self) -> None:
        with contextlib.suppress(_Unreachable):
            self._run("release", lambda r: r.eval(_RELEASE, 1, self.key, self.identity))
        self.close()

    def holder(self) -> str | None:
        value = self._redis().get(self.key)
        return value.decode() if value else None

    def load_state(self) -> dict[str, EntryState]:
        try:
            raw = self._run("read the schedule of", lambda r: r.hgetall(self.state_key))
        except _Unreachable:
            return {}
        return {k.decode(): _decode(v) for k, v in raw.items() if _decode(v)}

    def save_state(self, name: str, state: EntryState) -> bool:
        try:
            return bool(self._run("record a run under", lambda r: r.eval(
                _SAVE, 2, self.key, self.state_key, self.identity, name, json.dumps(state))))
        except _Unreachable:
            return True  # unknown; the local lease still says the lock is ours

    def close(self) -> None:
        self._reset()


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
                holder = _decode(message.body).get("holder")
                message.requeue()
                return str(holder) if holder else None
        return None

    def _take_state(self, channel: Any) -> dict[str, EntryState]:
        queue = self._state(channel)
        queue.declare()
        latest: dict[str, Any] = {}
        while (message := queue.get(no_ack=True)) is not None:
            state = _decode(message.body)
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


class FileLock(BeatLock):
    def __init__(self, path: Path, state_path: Path, timeout: float, scope: str = "") -> None:
        super().__init__(timeout, scope)
        self.path = path.with_name(self.named(path.stem, "-") + path.suffix)
        self.state_path = state_path.with_name(
            self.named(state_path.stem, "-") + state_path.suffix)
        self._fd: int | None = None

    @property
    def description(self) -> str:
        return f"file {self.path}"

    @property
    def freed(self) -> str:
        return "once its holder's process exits"

    def acquire(self) -> tuple[bool, str | None]:
        if self._fd is not None and self.renew():
            return True, None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False, self.holder() or UNKNOWN
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.identity.encode(), 0)
        self._fd = fd
        return True, None

    def renew(self) -> bool:
        # The kernel keeps the lock while the process lives; only a replaced file loses it.
        if self._fd is None:
            return False
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if current != os.fstat(self._fd).st_ino:
            self.close()
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        self.close()

    def holder(self) -> str | None:
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return os.pread(fd, 256, 0).decode(errors="replace").strip() or UNKNOWN
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def load_state(self) -> dict[str, EntryState]:
        try:
            data = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("beat: ignoring unreadable schedule state %s (%s)", self.state_path, exc)
            return {}
        entries = data.get("entries", {}) if isinstance(data, dict) else {}
        self.entries = entries if isinstance(entries, dict) else {}
        return dict(self.entries)

    def save_state(self, name: str, state: EntryState) -> bool:
        if not self.renew():
            return False
        self.entries[name] = state
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps({"holder": self.identity, "entries": self.entries}))
        os.replace(tmp, self.state_path)
        return True

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class NoLock(BeatLock):
    """For brokers the lock does not support: this beat always dispatches."""

    def __init__(self, broker: str, timeout: float) -> None:
        super().__init__(timeout)
        self.broker = broker

    @property
    def description(self) -> str:
        return f"none ({self.broker} brokers have no beat lock: run a single platform beat)"

    @property
    def freed(self) -> str:
        return "never"

    def acquire(self) -> tuple[bool, str | None]:
        return True, None

    def renew(self) -> bool:
        return True

    def release(self) -> None:
        pass

    def holder(self) -> str | None:
        return None

    def load_state(self) -> dict[str, EntryState]:
        return dict(self.entries)

    def save_state(self, name: str, state: EntryState) -> bool:
        self.entries[name] = state
        return True


class _Unreachable(Exception):
    pass


NOT_FOUND, RESOURCE_LOCKED = 404, 405  # AMQP reply codes of a refused queue.declare


def _reply_code(exc: BaseException) -> int | None:
    code = getattr(exc, "reply_code", None)
    return code if isinstance(code, int) else None


def _decode(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


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
