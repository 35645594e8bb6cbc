"""Many task messages in one call, each one as ``delay()`` would send it, written in bulk."""

from platform_core.app.bulk.send import Sent, prepare, send_many, send_signatures, span

__all__ = ["Sent", "prepare", "send_many", "send_signatures", "span"]
