"""Writing many prepared messages to one broker, knowing exactly how far it got.

A writer captures what the transport would write for one message sent by Celery (no
bytes leave), derives a template from it, and writes many messages in bulk:

- Redis: multi-value ``LPUSH`` commands in non-transactional pipelines, each round
  trip bounded; used only where kombu says a pipeline cannot be replayed by a retry
  (``Channel.supports_batch_publish``), so a failed round is in doubt, never doubled;
- RabbitMQ: every message published on one channel in confirm mode, the broker's
  confirms awaited once for the batch instead of once per message;
- the embedded broker: every file written in one pass, flushed to disk once.

A failure raises :class:`Unwritten` with the indices the broker has, the ones it
certainly does not, and the ones in flight when the connection failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from amqp import spec
from kombu.utils.json import dumps

from platform_core.app.bulk.calls import Checked
from platform_core.app.bulk.template import AMQPTemplate, EnvelopeTemplate
from platform_core.worker.receive.filesystem import put_many

#: Messages per Redis round trip, and values per LPUSH (docs/performance.md: measured).
REDIS_ROUND = 2000
REDIS_PUSH = 500
#: Seconds to wait for RabbitMQ's confirms of a whole batch, per 1,000 messages (at least 10).
CONFIRM_SECONDS_PER_1000 = 2.0


class Unwritten(Exception):
    """Indices (of the messages given to ``write``) by what the broker has of them."""

    def __init__(self, published: Sequence[int], unsent: Sequence[int],
                 in_doubt: Sequence[int], cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.published = list(published)
        self.unsent = list(unsent)
        self.in_doubt = list(in_doubt)
        self.cause = cause


class VirtualWriter:
    """kombu's virtual transports: messages captured where the channel's ``_put`` gets them."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel

    def capture(self, send: Callable[[], Any]) -> tuple[str, dict[str, Any]] | None:
        """``(queue, message)`` of the one message ``send`` would write; None when it
        writes to a fanout exchange or to other than exactly one queue."""
        puts: list[tuple[str, dict[str, Any]]] = []
        fanout: list[Any] = []
        channel = self.channel
        channel._put = lambda queue, message, **_: puts.append((queue, message))
        channel._put_fanout = lambda *a, **_: fanout.append(a)
        try:
            send()
        finally:
            del channel._put, channel._put_fanout
        if fanout or len(puts) != 1:
            return None
        return puts[0]

    def template(self, first: tuple[str, dict[str, Any]], task_id: str, item: Checked,
                 group_index: int | None) -> EnvelopeTemplate | None:
        return EnvelopeTemplate.derive(first[1], task_id, item, group_index)

    @staticmethod
    def payload(captured: tuple[str, dict[str, Any]]) -> str:
        return str(dumps(captured[1]))

    @staticmethod
    def route(captured: tuple[str, dict[str, Any]]) -> Any:
        return captured[0]

    @staticmethod
    def fill(template: Any, task_id: str, tag: str, item: Checked,
             group_index: int | None) -> str:
        return str(template.fill(task_id, tag, item, group_index))

    def write(self, first: tuple[str, dict[str, Any]], payloads: list[str]) -> None:
        raise NotImplementedError


class RedisWriter(VirtualWriter):
    def write(self, first: tuple[str, dict[str, Any]], payloads: list[str]) -> None:
        queue, message = first
        channel = self.channel
        key = channel._q_for_pri(queue, channel._get_message_priority(message, reverse=False))
        expires = channel._expires.get(queue) if channel._expires else None
        errors = tuple(channel.connection_errors)
        published: list[int] = []
        total = len(payloads)
        with channel.conn_or_acquire() as client:
            for start in range(0, total, REDIS_ROUND):
                end = min(total, start + REDIS_ROUND)
                pipe = client.pipeline(transaction=False)
                spans = []
                for at in range(start, end, REDIS_PUSH):
                    stop = min(end, at + REDIS_PUSH)
                    pipe.lpush(key, *payloads[at:stop])
                    spans.append(range(at, stop))
                if expires is not None:
                    for step in channel.priority_steps:
                        pipe.pexpire(channel._q_for_pri(queue, step), expires)
                try:
                    replies = pipe.execute(raise_on_error=False)
                except errors as exc:
                    raise Unwritten(published, range(end, total), range(start, end),
                                    exc) from exc
                unsent: list[int] = []
                refusal: BaseException | None = None
                for span, reply in zip(spans, replies, strict=False):
                    if isinstance(reply, Exception):
                        unsent.extend(span)
                        refusal = refusal or reply
                    else:
                        published.extend(span)
                if refusal is not None:
                    raise Unwritten(published, [*unsent, *range(end, total)], (), refusal)


class FilesystemWriter(VirtualWriter):
    def write(self, first: tuple[str, dict[str, Any]], payloads: list[str]) -> None:
        try:
            put_many(self.channel.data_folder_out, first[0], payloads)
        except OSError as exc:
            written = getattr(exc, "written", 0)
            raise Unwritten(range(written), range(written, len(payloads)), (), exc) from exc


class AMQPWriter:
    """py-amqp: messages captured at the channel's ``basic_publish``."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel

    def capture(self, send: Callable[[], Any]) -> tuple[Any, dict[str, Any]] | None:
        seen: list[tuple[Any, dict[str, Any]]] = []
        channel = self.channel
        had = channel.__dict__.get("basic_publish")

        def basic_publish(message: Any, exchange: str = "", routing_key: str = "",
                          mandatory: bool = False, immediate: bool = False, **_: Any) -> None:
            seen.append((message, {"exchange": exchange, "routing_key": routing_key,
                                   "mandatory": mandatory, "immediate": immediate}))

        channel.basic_publish = basic_publish
        try:
            send()
        finally:
            if had is None:
                del channel.basic_publish
            else:
                channel.basic_publish = had
        return seen[0] if len(seen) == 1 else None

    @staticmethod
    def template(first: tuple[Any, dict[str, Any]], task_id: str, item: Checked,
                 group_index: int | None) -> AMQPTemplate | None:
        return AMQPTemplate.derive(first[0], task_id, item, group_index)

    @staticmethod
    def payload(captured: tuple[Any, dict[str, Any]]) -> Any:
        return captured[0]

    @staticmethod
    def route(captured: tuple[Any, dict[str, Any]]) -> Any:
        return captured[1]["exchange"], captured[1]["routing_key"]

    @staticmethod
    def fill(template: Any, task_id: str, tag: str, item: Checked,
             group_index: int | None) -> Any:
        return template.fill(task_id, item, group_index)

    def write(self, first: tuple[Any, dict[str, Any]], messages: list[Any]) -> None:
        route = first[1]
        total = len(messages)
        acked: set[int] = set()
        nacked: set[int] = set()
        floor = 0  # every tag up to here is settled (a "multiple" confirm covers them)

        def settle(into: set[int]) -> Callable[[int, bool], None]:
            def on(tag: int, multiple: bool) -> None:
                nonlocal floor
                if multiple:
                    into.update(t for t in range(floor + 1, tag + 1)
                                if t not in acked and t not in nacked)
                    floor = max(floor, tag)
                else:
                    into.add(tag)
            return on

        errors = tuple(self.channel.connection.connection_errors)
        sent = 0
        channel = self.channel.connection.channel()
        try:
            channel.events["basic_ack"].add(settle(acked))
            channel.events["basic_nack"].add(settle(nacked))
            channel.confirm_select()
            for message in messages:
                channel._basic_publish(message, route["exchange"], route["routing_key"],
                                       route["mandatory"], route["immediate"])
                sent += 1
            timeout = max(10.0, CONFIRM_SECONDS_PER_1000 * total / 1000)
            while len(acked) + len(nacked) < total:
                channel.wait([spec.Basic.Ack, spec.Basic.Nack], timeout=timeout)
        except errors as exc:
            published = sorted(t - 1 for t in acked)
            refused = sorted(t - 1 for t in nacked)
            settled = acked | nacked
            doubt = [t - 1 for t in range(1, sent + 1) if t not in settled]
            raise Unwritten(published, [*refused, *range(sent, total)], doubt, exc) from exc
        finally:
            with contextlib.suppress(Exception):
                channel.close()
        if nacked:
            refused = sorted(t - 1 for t in nacked)
            raise Unwritten(sorted(t - 1 for t in acked), refused, (),
                            RuntimeError(f"RabbitMQ refused {len(refused)} of the messages"))


Writer = RedisWriter | FilesystemWriter | AMQPWriter


def for_channel(channel: Any) -> Writer | None:
    """The bulk writer for this producer channel's transport; None: send one by one."""
    from kombu.transport import filesystem, pyamqp, redis

    if isinstance(channel, redis.Channel):
        return RedisWriter(channel) if channel.supports_batch_publish else None
    if isinstance(channel, filesystem.Channel):
        return FilesystemWriter(channel)
    if isinstance(channel, pyamqp.Channel):
        return AMQPWriter(channel)
    return None
