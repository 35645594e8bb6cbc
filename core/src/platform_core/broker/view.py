"""Read what sits in the broker: queue depths, stray queues, one task's message.

Only reads. Redis and the embedded filesystem broker can be looked into (lists and
message files); AMQP offers queue depths only, since a message cannot be read there
without taking it off the queue.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Queues of Celery's own machinery, never of tasks.
_INTERNAL_SUFFIXES = (".pidbox",)
_INTERNAL_PREFIXES = ("celeryev.",)
# How many messages a search reads at most, so a huge backlog cannot stall a check.
SEARCH_LIMIT = 200_000
_CHUNK = 500


def is_internal(queue: str) -> bool:
    return queue.endswith(_INTERNAL_SUFFIXES) or queue.startswith(_INTERNAL_PREFIXES)


@dataclass(frozen=True)
class Located:
    """Where a task's message was found in the broker."""

    queue: str
    task: str | None
    ahead: int | None = None  # messages a consumer takes before this one
    eta: str | None = None
    unacked_since: float | None = None  # Redis: delivered to a worker at this time
    restore_after: float | None = None  # seconds between delivery and redelivery


def _headers(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes | str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    if not isinstance(raw, dict):
        return {}
    headers = raw.get("headers")
    return headers if isinstance(headers, dict) else {}


class BrokerView:
    """A read-only view of one broker connection (a ``kombu.Connection``)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.kind: str = connection.transport.driver_type
        self._channel: Any = None

    @property
    def channel(self) -> Any:
        if self._channel is None:
            self._channel = self.connection.channel()
        return self._channel

    def close(self) -> None:
        if self._channel is not None:
            with contextlib.suppress(Exception):  # a broken channel may fail to close
                self._channel.close()
            self._channel = None

    @property
    def searchable(self) -> bool:
        """Whether messages can be read without consuming them."""
        return self.kind in ("redis", "filesystem")

    def depth(self, queue: str) -> int:
        """Messages waiting in ``queue`` (all priority levels); 0 if it does not exist."""
        try:
            _, count, _ = self.channel.queue_declare(queue=queue, passive=True)
        except self.connection.channel_errors:
            self.close()  # AMQP closes the channel on a passive declare of a missing queue
            return 0
        return int(count)

    # --- queues that hold messages -------------------------------------------------------

    def queues(self) -> set[str] | None:
        """Every task queue the broker knows about; None where that cannot be listed."""
        if self.kind == "redis":
            return self._redis_queues()
        if self.kind == "filesystem":
            return {q for q, _ in self._files()}
        return None

    def _redis_queues(self) -> set[str]:
        channel = self.channel
        client = channel.client
        prefix = channel.global_keyprefix or ""
        pattern = channel.keyprefix_queue.replace("%s", "*")
        found: set[str] = set()
        for key in client.scan_iter(match=pattern, count=_CHUNK):
            name = key.decode() if isinstance(key, bytes) else key
            for member in client.smembers(name.removeprefix(prefix)):
                text = member.decode() if isinstance(member, bytes) else member
                queue = text.split(channel.sep)[-1]
                if queue and not is_internal(queue):
                    found.add(queue)
        return found

    def _files(self) -> Iterator[tuple[str, str]]:
        """(queue, path) of every message file, oldest first (the order consumers take)."""
        folder = self.connection.transport_options.get("data_folder_in", "data_in")
        try:
            names = sorted(os.listdir(folder))
        except FileNotFoundError:
            return
        for name in names:
            if not name.endswith(".msg"):
                continue
            queue = name.partition(".")[2].removesuffix(".msg")
            if queue and not is_internal(queue):
                yield queue, os.path.join(folder, name)

    # --- what the messages are ------------------------------------------------------------

    def task_names(self, queue: str, limit: int = 1000) -> Counter[str]:
        """Task names of the next ``limit`` messages in ``queue``."""
        names: Counter[str] = Counter()
        for headers in self._peek(queue, limit):
            names[str(headers.get("task") or "?")] += 1
        return names

    def _peek(self, queue: str, limit: int) -> Iterator[dict[str, Any]]:
        if self.kind == "redis":
            for _, _, raw in self._redis_messages(queue, limit):
                yield _headers(raw)
        elif self.kind == "filesystem":
            taken = 0
            for q, path in self._files():
                if q != queue:
                    continue
                if taken >= limit:
                    return
                taken += 1
                yield _headers(_read(path))

    def _redis_messages(self, queue: str, limit: int) -> Iterator[tuple[int, int, bytes]]:
        """(priority step, index from the consuming end, raw message) in consumption order."""
        channel = self.channel
        client = channel.client
        seen = 0
        for pri in channel.priority_steps:
            key = channel._q_for_pri(queue, pri)
            end = -1
            while seen < limit:
                # Producers LPUSH and consumers RPOP: the next message out is the last one.
                chunk = client.lrange(key, end - _CHUNK + 1, end)
                if not chunk:
                    break
                for offset, raw in enumerate(reversed(chunk)):
                    yield pri, -end - 1 + offset, raw
                    seen += 1
                if len(chunk) < _CHUNK:
                    break
                end -= _CHUNK

    # --- one task's message ---------------------------------------------------------------

    def find(self, task_id: str, queues: Iterable[str]) -> Located | None:
        """The waiting message of ``task_id`` in one of ``queues``, if any."""
        needle = task_id.encode()
        if self.kind == "redis":
            for queue in queues:
                messages = self._redis_messages(queue, SEARCH_LIMIT)
                for ahead, (_, _, raw) in enumerate(messages):
                    if needle in raw:
                        headers = _headers(raw)
                        if headers.get("id") == task_id:
                            return Located(queue, headers.get("task"), ahead, headers.get("eta"))
        elif self.kind == "filesystem":
            wanted = set(queues)
            ahead_in: Counter[str] = Counter()
            for queue, path in self._files():
                if queue not in wanted:
                    continue
                raw = _read(path)
                if needle in raw:
                    headers = _headers(raw)
                    if headers.get("id") == task_id:
                        return Located(queue, headers.get("task"), ahead_in[queue],
                                       headers.get("eta"))
                ahead_in[queue] += 1
        return None

    def unacked(self) -> list[tuple[str, str, str]] | None:
        """Redis: (delivery tag, exchange, routing key) of every message delivered to a
        worker and not acknowledged (ETA tasks waiting in a worker included); None on
        other brokers, which do not list them."""
        if self.kind != "redis":
            return None
        channel = self.channel
        found = []
        for tag, value in channel.client.hscan_iter(channel.unacked_key, count=_CHUNK):
            try:
                _raw, exchange, routing_key = json.loads(value)
            except ValueError:
                continue
            name = tag.decode() if isinstance(tag, bytes) else str(tag)
            found.append((name, str(exchange or ""), str(routing_key or "")))
        return found

    def find_unacked(self, task_id: str) -> Located | None:
        """Redis: the message of ``task_id`` delivered to a worker but not acknowledged."""
        if self.kind != "redis":
            return None
        channel = self.channel
        client = channel.client
        needle = task_id.encode()
        for tag, value in client.hscan_iter(channel.unacked_key, count=_CHUNK):
            if needle not in value:
                continue
            try:
                raw, _exchange, routing_key = json.loads(value)
            except ValueError:
                continue
            headers = _headers(raw)
            if headers.get("id") != task_id:
                continue
            since = client.zscore(channel.unacked_index_key, tag)
            return Located(str(routing_key), headers.get("task"), eta=headers.get("eta"),
                           unacked_since=since, restore_after=float(channel.visibility_timeout))
        return None


def _read(path: str) -> bytes:
    """A message file's bytes; nothing for anything that is no regular file (a FIFO, a
    socket, a link: never opened blocking) or that a consumer took meanwhile."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return b""
    with os.fdopen(fd, "rb") as fh:
        try:
            return fh.read() if stat.S_ISREG(os.fstat(fd).st_mode) else b""
        except OSError:
            return b""
