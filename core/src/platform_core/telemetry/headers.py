"""The header producers add so workers can measure queue wait and delayed runs."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

SENT_AT_HEADER = "platform_sent_at"

#: The platform's own ``before/after_task_publish`` handlers: a bulk send may fill its
#: messages from a template while only these listen (:mod:`platform_core.app.bulk`).
PUBLISH_HANDLERS: list[Any] = []


def stamp_sent_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers.setdefault(SENT_AT_HEADER, time.time())


def sent_at(carrier: Any) -> float | None:
    """The sending time from a request dict or a task's request context."""
    raw = carrier.get(SENT_AT_HEADER) if isinstance(carrier, Mapping) else getattr(
        carrier, SENT_AT_HEADER, None
    )
    try:
        return float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def eta_timestamp(raw: Any) -> float | None:
    """A message's ``eta`` header (ISO 8601 or datetime) as seconds since the epoch."""
    if isinstance(raw, datetime):
        return raw.timestamp()
    if isinstance(raw, str) and raw:
        try:
            return datetime.fromisoformat(raw).timestamp()
        except ValueError:
            return None
    return None
