"""The embedded broker's transport (kombu's ``filesystem://``), guarded.

One file per message in the queue folder, named ``<ms>_<uuid>.<queue>.msg``; a
consumer takes the oldest file of its queue. kombu writes a message file in place,
so a consumer polling at the wrong moment takes an empty or half-written file, and
it opens whatever carries a message file's name: a directory or an unreadable file
raises and stops the worker, and a FIFO blocks it for good. Here:

- messages are written atomically: to ``.<name>.part`` in the same folder (a name no
  reader takes), flushed to disk, then renamed to ``<name>``;
- an entry that is not a regular file (directory, FIFO, socket, device, any symbolic
  link), or that cannot be opened or read, is moved to the quarantine folder (the
  ``quarantine_folder`` transport option, by default ``quarantine`` next to the queue
  folder) and reported in one log line, without ever being opened blocking;
- a regular file that is not a JSON envelope is delivered as unreadable, so the
  worker's consumer moves it to the dead-letter store.

The worker connects through
:class:`~platform_core.worker.receive.transports.GuardedConnection`, which picks
:class:`GuardedFilesystemTransport` for ``filesystem://`` URLs; the envelope checks and
the message class are :mod:`.envelope`'s, shared with the Redis transport.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
import uuid
from collections import deque
from queue import Empty
from time import monotonic, sleep
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property

from platform_core.worker.receive.envelope import (
    GuardedMessage,
    checked,
    envelope_problem,
    parse_problem,
    unreadable,
)

logger = logging.getLogger("platform.receive")

#: Ending of a message file still being written (after a leading dot); no reader takes it.
PARTIAL = ".part"

_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

_NOT_OURS = ("delete it, and find what put it there: only the broker writes to the queue "
             "folder")
_UNREADABLE = ("repair the file (owner, mode, disk), then move it back to the queue folder "
               "to deliver it")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_atomically(path: str, data: bytes) -> None:
    """Create ``path`` holding ``data``; a reader sees it whole or not at all."""
    folder, name = os.path.split(path)
    partial = os.path.join(folder, f".{name}{PARTIAL}")
    fd = os.open(partial, _WRITE, 0o666)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise


def put_many(folder: str, queue: str, payloads: list[str]) -> None:
    """Write many message files of ``queue`` in one pass: each to its ``.part`` file, all
    flushed to disk with one ``sync``, then each renamed into place, in order (the names
    sort as the payloads do). An ``OSError`` carries ``written``: how many of
    ``payloads`` (the first ones) are in place."""
    stamp = round(monotonic() * 1000)
    batch = uuid.uuid4().hex
    names = [f"{stamp}_{batch}-{i:09d}.{queue}.msg" for i in range(len(payloads))]
    partials = [os.path.join(folder, f".{name}{PARTIAL}") for name in names]
    written = 0
    try:
        for partial, payload in zip(partials, payloads, strict=True):
            fd = os.open(partial, _WRITE, 0o666)
            try:
                _write_all(fd, str_to_bytes(payload))
            finally:
                os.close(fd)
        os.sync()
        for partial, name in zip(partials, names, strict=True):
            os.replace(partial, os.path.join(folder, name))
            written += 1
    except OSError as exc:
        for partial in partials[written:]:
            with contextlib.suppress(OSError):
                os.unlink(partial)
        exc.written = written  # type: ignore[attr-defined]
        raise


def _mode_kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _kind(path: str, entry: os.stat_result) -> str:
    """What ``path`` is, from its ``lstat``; a link's target is stat-ed, never opened."""
    if not stat.S_ISLNK(entry.st_mode):
        return _mode_kind(entry.st_mode)
    try:
        target = os.stat(path)
    except OSError:
        return "a symbolic link that leads nowhere"
    return f"a symbolic link to {_mode_kind(target.st_mode)}"


def _error(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


class GuardedFilesystemChannel(filesystem.Channel):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.Message = GuardedMessage
        #: Names that could not be moved aside: skipped, reported once.
        self._stuck: set[str] = set()
        #: Per queue, the names of its files from the last listing not yet taken, oldest
        #: first. Names sort by sending time, so files written since are newer than these.
        self._listed: dict[str, deque[str]] = {}
        self._listed_at = float("-inf")
        self._relist_after = 0.0

    @cached_property
    def quarantine_folder(self) -> str:
        configured = self.transport_options.get("quarantine_folder")
        if configured:
            return str(configured)
        queue_folder = os.path.abspath(self.data_folder_in)
        return os.path.join(os.path.dirname(queue_folder), "quarantine")

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """kombu's ``_put`` (same file name), written atomically. (kombu's own classes
        disagree on the name of the second argument, hence the ignore.)"""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, name)
        try:
            write_atomically(path, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(
                f"cannot write a message file for queue {queue!r} in {self.data_folder_out!r} "
                f"({_error(exc)}); check that the folder exists and that this process may "
                "write to it"
            ) from exc

    def _get(self, queue: str, timeout: Any = None) -> Any:
        """The oldest message file of ``queue``, taken and parsed; a file that is not a
        JSON envelope comes back as unreadable instead of raising. (Only this delivers
        the transport's messages, so the transport needs no delivery guard.)"""
        pending = self._listed.get(queue)
        if not pending and self._may_list():
            self._list()
            pending = self._listed.get(queue)
        while pending:
            name = pending.popleft()
            payload = self._take(queue, name)
            if payload is None:
                continue
            try:
                parsed = loads(bytes_to_str(payload))
            except Exception as exc:  # noqa: BLE001 - kombu's reader raises all kinds
                # the parser's text may quote the file: name the error's type only
                return unreadable(payload, queue, parse_problem(exc))
            problem = envelope_problem(parsed)
            return checked(parsed) if problem is None else unreadable(payload, queue, problem)
        raise Empty()

    def _may_list(self) -> bool:
        """Whether to look at the folder again: not more often than ten times as long as
        the last look took, so a queue with nothing waiting does not list a folder full
        of another queue's files at every poll."""
        return monotonic() - self._listed_at >= self._relist_after

    def _list(self) -> None:
        """One look at the folder: every queue's file names, oldest first."""
        started = monotonic()
        listed: dict[str, deque[str]] = {}
        for name in sorted(os.listdir(self.data_folder_in)):
            queue, dot, ending = name.partition(".")[2].rpartition(".")
            if dot and ending == "msg" and name not in self._stuck:
                listed.setdefault(queue, deque()).append(name)
        self._listed = listed
        self._listed_at = monotonic()
        self._relist_after = min(1.0, 10 * (self._listed_at - started))

    def _take(self, queue: str, name: str) -> bytes | None:
        """The bytes of message file ``name``, now removed from the queue folder (moved to
        the processed folder with ``store_processed``). None when there is nothing to
        deliver: another consumer took it, a writer still holds it, or it was set aside.

        The file is read before it is claimed: two consumers may both read it, and only
        the one whose removal succeeds delivers it. Reading through the open descriptor
        is unaffected by the file being renamed or removed meanwhile."""
        path = os.path.join(self.data_folder_in, name)
        try:
            entry = os.lstat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(entry.st_mode):
            self._set_aside(queue, name, f"it is {_kind(path, entry)}, not a message file",
                            _NOT_OURS)
            return None
        try:
            fd = os.open(path, _READ)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._set_aside(queue, name, f"it cannot be opened ({_error(exc)})", _UNREADABLE)
            return None
        try:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):  # replaced after the lstat
                self._set_aside(queue, name,
                                f"it is {_mode_kind(opened.st_mode)}, not a message file",
                                _NOT_OURS)
                return None
            try:
                # Writers that do not write atomically (kombu's own) hold an exclusive
                # lock while writing: leave the file for a later poll.
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return None
            try:
                payload = _read_all(fd)
            except OSError as exc:
                self._set_aside(queue, name, f"reading it failed ({_error(exc)})", _UNREADABLE)
                return None
        finally:
            os.close(fd)
        try:
            if self.store_processed:
                shutil.move(path, self.processed_folder)
            else:
                os.remove(path)
        except FileNotFoundError:
            return None  # another consumer read it too and claimed it first
        except OSError as exc:
            self._set_aside(queue, name,
                            f"it cannot be removed from the queue folder ({_error(exc)})",
                            "let this worker write to the queue folder")
            return None
        return payload

    def _set_aside(self, queue: str, name: str, problem: str, fix: str) -> None:
        """Move entry ``name`` of the queue folder to the quarantine folder and say so."""
        folder = self.data_folder_in
        source = os.path.join(folder, name)
        target = os.path.join(self.quarantine_folder, name)
        try:
            os.makedirs(self.quarantine_folder, exist_ok=True)
            if os.path.lexists(target):
                target = f"{target}.{uuid.uuid4().hex[:8]}"
            os.rename(source, target)
        except FileNotFoundError:
            return  # another consumer moved it first
        except OSError as exc:
            self._stuck.add(name)
            logger.error(
                "Embedded broker: skipping %s in the folder of queue %s (%s) until the worker "
                "restarts: %s, and it cannot be moved to %s (%s). Fix: %s",
                name, queue, folder, problem, self.quarantine_folder, _error(exc), fix,
            )
            return
        logger.error(
            "Embedded broker: moved %s out of the folder of queue %s (%s) to %s: %s; "
            "nothing was delivered from it. Fix: %s",
            name, queue, folder, target, problem, fix,
        )


#: The shortest wait between two looks at the queue folder, after a message was taken.
BUSY_POLL = 0.002
#: ``drain_events`` returns (as a timeout) after at most this long, so a loop that drains
#: without an event loop (``platform inspect``, a producer waiting for a reply) sees a
#: shutdown request within it instead of after Celery's 2 s drain.
DRAIN_SLICE = 0.25
#: Messages delivered in one look from the worker's event loop, so that a long queue
#: does not keep the loop from its pool's results and timers.
PER_LOOK = 64


class GuardedFilesystemTransport(filesystem.Transport):
    """The guarded channel, polled adaptively, from the worker's event loop.

    kombu polls a virtual transport at a fixed interval and sleeps it after every empty
    look, including each time the worker's prefetch window is full: with two pool
    processes and short tasks, the worker slept more than it worked. Here the wait
    starts at :data:`BUSY_POLL` after a message and doubles after each empty look up to
    the configured ``polling_interval``, so a busy queue is drained without pauses and
    an idle one is looked at as often as configured.

    The transport says it is asynchronous, so a worker runs Celery's event loop and its
    asynchronous prefork pool, as on Redis and RabbitMQ, instead of the blocking pool
    with its supervisor and timer threads (each sleeping up to a second at shutdown).
    The loop looks at the folder on a timer, and at once when a full prefetch window
    opens again (an acknowledgement, seen at the loop's next tick).
    """

    Channel = GuardedFilesystemChannel
    implements = filesystem.Transport.implements.extend(asynchronous=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._wait = BUSY_POLL
        self._loop: Any = None
        self._due = 0.0
        self._timer_at: float | None = None
        self._window_full = False

    def drain_events(  # type: ignore[override]  # kombu's own takes timeout the same way
        self, connection: Any, timeout: float | None = None
    ) -> None:
        start = monotonic()
        limit = DRAIN_SLICE if timeout is None else min(timeout, DRAIN_SLICE)
        ceiling = self.polling_interval or BUSY_POLL
        cycle = self.cycle
        assert cycle is not None  # set up with the transport's first channel
        while True:
            try:
                cycle.get(self._deliver, timeout=timeout)
            except Empty:
                if timeout is not None and monotonic() - start >= limit:
                    raise TimeoutError() from None
                sleep(self._wait)
                self._wait = min(self._wait * 2, ceiling)
            else:
                self._wait = BUSY_POLL
                return

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        if self._loop is loop:
            return
        self._loop = loop
        loop.on_tick.add(self._on_tick)
        self._look()

    def close_connection(self, connection: Any) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.on_tick.discard(self._on_tick)
        super().close_connection(connection)  # type: ignore[no-untyped-call]

    def _blocked(self) -> bool:
        """Whether a consuming channel's prefetch window is full."""
        return any(channel._consumers and not channel.qos.can_consume()
                   for channel in self.channels)

    def _on_tick(self) -> None:
        if self._loop is None:
            return
        if monotonic() >= self._due or (self._window_full and not self._blocked()):
            self._look()

    def _on_timer(self) -> None:
        self._timer_at = None
        self._on_tick()

    def _look(self) -> None:
        """Deliver what may be taken now, then set when to look again."""
        cycle = self.cycle
        delivered = 0
        if cycle is not None:
            try:
                while delivered < PER_LOOK:
                    cycle.get(self._deliver, timeout=0)
                    delivered += 1
            except Empty:
                pass
        ceiling = self.polling_interval or BUSY_POLL
        self._wait = BUSY_POLL if delivered else min(self._wait * 2, ceiling)
        self._window_full = self._blocked()
        now = monotonic()
        self._due = now + self._wait
        loop = self._loop
        if loop is not None and (self._timer_at is None or self._timer_at > self._due):
            self._timer_at = self._due
            loop.call_later(self._wait, self._on_timer)
