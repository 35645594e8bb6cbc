"""The HTTP task API (``pip install 'platform-core[web]'``): :func:`platform_router` for an
application's own FastAPI app, and :func:`create_app` behind ``platform api``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from platform_core.web.router import platform_router
    from platform_core.web.server import create_app

from platform_core.web.status import STATUS_ROUTE

__all__ = ["STATUS_ROUTE", "create_app", "platform_router"]


def __getattr__(name: str) -> Any:
    if name == "platform_router":
        from platform_core.web.router import platform_router

        return platform_router
    if name == "create_app":
        from platform_core.web.server import create_app

        return create_app
    raise AttributeError(name)
