"""Counting the deliveries of idempotent (acks-late) task messages.

Only a message the broker marks as redelivered touches the store: its first
delivery is counted implicitly, so the common path costs nothing. A message is
delivered at most ``1 + max_redeliveries`` times.
"""

from __future__ import annotations

import re
from typing import Any

COUNT_TTL = 7 * 24 * 3600  # a count outlives any sensible visibility timeout

_LOST = re.compile(r"Worker exited prematurely: (?P<status>.+?)(?: Job: \d+)?\.?$")


def limit(app: Any) -> int:
    return int(app.conf.platform_max_redeliveries)


def count_key(task_id: str, retries: Any) -> str:
    """One count per task message: its id and retry number (a retry is a new message)."""
    return f"{task_id}:{retries or 0}"


def key(headers: Any) -> str | None:
    if not isinstance(headers, dict) or not headers.get("id"):
        return None
    return count_key(headers["id"], headers.get("retries"))


def is_redelivered(message: Any) -> bool:
    info = message.delivery_info or {}
    if info.get("redelivered"):  # AMQP, Redis
        return True
    headers = message.headers
    if isinstance(headers, dict) and headers.get("redelivered"):  # Redis restore
        return True
    raw = getattr(message, "_raw", None)  # the filesystem transport marks the envelope
    return isinstance(raw, dict) and bool(raw.get("redelivered"))


def loss(exc: BaseException) -> str:
    """``worker lost: exit signal 9 (SIGKILL)`` from billiard's WorkerLostError."""
    text = str(exc)
    match = _LOST.match(text)
    status = match.group("status") if match else text
    if status.startswith("signal "):
        status = f"exit {status}"
    return f"worker lost: {status.replace('exitcode ', 'exit code ')}"
