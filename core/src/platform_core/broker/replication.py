"""Publishing to Redis that waits for replicas: ``WAIT`` after each message.

Redis replicates asynchronously: a master acknowledges a ``LPUSH`` before any replica
has it, so a failover can promote a replica that never saw the last messages, and
they are lost although their producers were told they were sent. With the transport
option ``platform_wait_replicas`` (setting ``redis_wait_replicas``), each message is
pushed and followed by ``WAIT replicas timeout`` in one round trip on the same
connection: the publish returns once that many replicas hold the message.
"""

from __future__ import annotations

from typing import Any

from kombu.utils.json import dumps

WAIT_REPLICAS = "platform_wait_replicas"
WAIT_TIMEOUT = "platform_wait_timeout"


class NotReplicated(Exception):
    """The master took the message but too few replicas confirmed it in time."""


class WaitsForReplicas:
    """Mixin for kombu's Redis channels (before them in the bases)."""

    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        options = self.connection.client.transport_options  # type: ignore[attr-defined]
        replicas = int(options.get(WAIT_REPLICAS) or 0)
        if not replicas or kwargs.get("_publish_batch") is not None:
            super()._put(queue, message, **kwargs)  # type: ignore[misc]
            return
        timeout = float(options.get(WAIT_TIMEOUT) or 1.0)
        channel: Any = self
        key = channel._q_for_pri(queue, channel._get_message_priority(message, reverse=False))
        expires = channel._expires.get(queue) if channel._expires else None
        with channel.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
            pipe.lpush(key, dumps(message))
            if expires:
                for step in channel.priority_steps:
                    pipe.pexpire(channel._q_for_pri(queue, step), expires)
            pipe.wait(replicas, int(timeout * 1000))
            confirmed = int(pipe.execute()[-1])
        if confirmed < replicas:
            raise NotReplicated(
                f"the broker took the message for queue {queue}, but only {confirmed} of "
                f"{replicas} replicas confirmed it within {timeout:g}s "
                "(PLATFORM_REDIS_WAIT_REPLICAS); it is queued, and lost if the master fails "
                "before a replica has it. Check the replicas (INFO replication), or lower "
                "PLATFORM_REDIS_WAIT_REPLICAS / raise PLATFORM_REDIS_WAIT_TIMEOUT")
