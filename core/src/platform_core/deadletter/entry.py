"""One dead letter: a message the platform could not process, and why."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .message import StoredMessage

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
