"""What the stores keep: broker messages kept outside the broker, and dead letters.

A :class:`StoredMessage` is a message exactly as it was (headers, properties, body);
a :class:`DeadLetter` is one the platform could not process, and why.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Properties a producer sets and a republish must carry again; transport bookkeeping
# (delivery tag, delivery info, body encoding) and per-publish values are left out.
KEPT_PROPERTIES = ("correlation_id", "reply_to", "priority", "delivery_mode", "message_id",
                   "type", "app_id")
# Headers a transport adds on redelivery; the producer never set them.
TRANSPORT_HEADERS = ("redelivered",)


def kept_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """The message properties a stored message keeps (those that are set)."""
    return {k: properties[k] for k in KEPT_PROPERTIES if properties.get(k) is not None}


@dataclass(frozen=True)
class StoredMessage:
    """``body`` is the serialized body: text when it is UTF-8, else base64 (``binary``).

    ``raw`` marks bytes that were never a message envelope at all: they are kept for
    inspection but cannot be published again.
    """

    queue: str | None
    exchange: str
    routing_key: str
    content_type: str | None
    content_encoding: str | None
    body: str
    binary: bool = False
    headers: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    raw: bool = False

    @property
    def body_bytes(self) -> bytes:
        return base64.b64decode(self.body) if self.binary else self.body.encode("utf-8")

    @classmethod
    def from_body(cls, data: bytes | str, **fields: Any) -> StoredMessage:
        if isinstance(data, str):
            return cls(body=data, **fields)
        try:
            return cls(body=data.decode("utf-8"), **fields)
        except UnicodeDecodeError:
            return cls(body=base64.b64encode(data).decode("ascii"), binary=True, **fields)

    @classmethod
    def from_kombu(cls, message: Any, queue: str | None) -> StoredMessage:
        """Capture a received kombu message (the body still serialized, as sent)."""
        info = message.delivery_info or {}
        properties = message.properties or {}
        headers = {k: v for k, v in (message.headers or {}).items() if k not in TRANSPORT_HEADERS}
        body = message.body
        return cls.from_body(
            body if isinstance(body, (bytes, str)) else bytes(body or b""),
            queue=queue,
            exchange=str(info.get("exchange") or ""),
            routing_key=str(info.get("routing_key") or queue or ""),
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            headers=headers,
            properties=kept_properties(properties),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "content_type": self.content_type,
            "content_encoding": self.content_encoding,
            "headers": self.headers,
            "properties": self.properties,
            "body": self.body,
            "body_encoding": "base64" if self.binary else "text",
            "raw": self.raw,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StoredMessage:
        return cls(
            queue=data.get("queue"),
            exchange=data.get("exchange") or "",
            routing_key=data.get("routing_key") or "",
            content_type=data.get("content_type"),
            content_encoding=data.get("content_encoding"),
            headers=dict(data.get("headers") or {}),
            properties=dict(data.get("properties") or {}),
            body=data.get("body") or "",
            binary=data.get("body_encoding") == "base64",
            raw=bool(data.get("raw")),
        )

    def publish(self, producer: Any, *, exchange: str, routing_key: str,
                declare: list[Any]) -> None:
        """Publish the same bytes with the same headers and properties.

        With ``content_type`` given, kombu sends the body as it is, without serializing.
        The broker's ``redelivered`` mark is dropped: a replay is a first delivery.
        """
        if self.raw:
            raise ValueError("raw bytes that were never a message cannot be published")
        producer.publish(
            self.body_bytes,
            exchange=exchange,
            routing_key=routing_key,
            content_type=self.content_type or "application/data",
            content_encoding=self.content_encoding or "binary",
            headers={k: v for k, v in self.headers.items() if k not in TRANSPORT_HEADERS},
            declare=declare,
            retry=True,
            retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
            **self.properties,
        )


REASON_LIMIT = 500


def new_id() -> str:
    return uuid.uuid4().hex


def short_reason(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


@dataclass(frozen=True)
class DeadLetter:
    task: str | None
    task_id: str | None
    plugin: str | None
    queue: str | None
    reason: str
    deliveries: int
    message: StoredMessage
    failed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=new_id)

    def summary(self) -> dict[str, Any]:
        """The keys of ``platform dlq list --json``."""
        return {
            "id": self.id,
            "task": self.task,
            "task_id": self.task_id,
            "plugin": self.plugin,
            "queue": self.queue,
            "reason": self.reason,
            "deliveries": self.deliveries,
            "failed_at": self.failed_at.astimezone(UTC).isoformat(),
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "message": self.message.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeadLetter:
        return cls(
            id=data["id"],
            task=data.get("task"),
            task_id=data.get("task_id"),
            plugin=data.get("plugin"),
            queue=data.get("queue"),
            reason=data["reason"],
            deliveries=int(data["deliveries"]),
            failed_at=datetime.fromisoformat(data["failed_at"]),
            message=StoredMessage.from_dict(data["message"]),
        )
