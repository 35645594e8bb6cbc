"""The platform's Celery app for Celery's own CLI: ``celery -A platform_core.celery_app ...``."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from platform_core.host import current

        return current().app
    raise AttributeError(name)
