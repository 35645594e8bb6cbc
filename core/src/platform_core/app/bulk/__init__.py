"""Many task messages in one call, each one as ``delay()`` would send it, written in bulk."""

from platform_core.app.bulk.send import Sent, send_many, send_signatures

__all__ = ["Sent", "send_many", "send_signatures"]
