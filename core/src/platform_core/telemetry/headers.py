"""The header producers add so workers can measure queue wait and delayed runs."""

from __future__ import annotations

import time
from typing import Any

SENT_AT_HEADER = "platform_sent_at"


def stamp_sent_at(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers.setdefault(SENT_AT_HEADER, time.time())
