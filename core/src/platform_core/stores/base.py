"""What the reliability stores offer, whichever database holds them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from platform_core.stores.records import DeadLetter, StoredMessage


@dataclass(frozen=True)
class Delayed:
    """A task message held until ``due`` (seconds since the epoch)."""

    id: str
    due: float
    task: str
    task_id: str
    message: StoredMessage

    def dumps(self) -> str:
        return json.dumps({"id": self.id, "due": self.due, "task": self.task,
                           "task_id": self.task_id, "message": self.message.to_dict()})

    @classmethod
    def loads(cls, text: str | bytes) -> Delayed:
        data: Mapping[str, Any] = json.loads(text)
        return cls(id=data["id"], due=float(data["due"]), task=data["task"],
                   task_id=data["task_id"], message=StoredMessage.from_dict(data["message"]))


def dump_entry(entry: DeadLetter) -> str:
    return json.dumps(entry.to_dict(), default=str)


def load_entry(text: str | bytes) -> DeadLetter:
    return DeadLetter.from_dict(json.loads(text))


class DeadLetterStore(Protocol):
    def add(self, entry: DeadLetter) -> None: ...

    def list(self) -> list[DeadLetter]:
        """Every entry, oldest first."""

    def get(self, entry_id: str) -> DeadLetter | None: ...

    def remove(self, entry_id: str) -> bool: ...

    def clear(self) -> int: ...


class DeliveryCounter(Protocol):
    def increment(self, key: str, ttl: int) -> int:
        """Add one and return the new count; the count is forgotten ``ttl`` s later."""

    def get(self, key: str) -> int: ...

    def forget(self, key: str) -> None: ...


class DelayStore(Protocol):
    def add(self, item: Delayed) -> None: ...

    def claim_due(self, until: float, limit: int, lease: float) -> list[Delayed]:
        """Atomically take up to ``limit`` items due by ``until``: no other caller gets them.

        Items claimed more than ``lease`` seconds ago and never marked done (their
        claimer died before publishing) are due again.
        """

    def done(self, item_id: str) -> None: ...

    def pending(self) -> list[Delayed]:
        """Every held item (claimed or not), earliest first."""


class Store(Protocol):
    @property
    def dead_letters(self) -> DeadLetterStore: ...

    @property
    def deliveries(self) -> DeliveryCounter: ...

    @property
    def delays(self) -> DelayStore: ...

    def describe(self) -> str:
        """Where the store is, without passwords."""

    def close(self) -> None: ...
