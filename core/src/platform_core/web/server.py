"""The standalone task API behind ``platform api``: the router, CORS when configured,
and the rules for which addresses may serve it without keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from platform_core.errors import ConfigurationError
from platform_core.web.addresses import bound_addresses, is_loopback

if TYPE_CHECKING:
    from fastapi import FastAPI

    from platform_core.host import Host


def check_address(address: str, *, no_auth: bool) -> None:
    """Only a loopback address may serve without keys."""
    if no_auth and not is_loopback(address, "--host"):
        listens = ", ".join(bound_addresses(address, "--host")) or "every address"
        raise ConfigurationError([
            f"--no-auth is refused on {address} (listening on {listens}): without keys only "
            "a loopback address (127.0.0.1, ::1, localhost) may serve the task API; set "
            "PLATFORM_API_KEYS and drop --no-auth to serve other machines"])


def create_app(host: Host | None = None, *, auth: bool = True) -> FastAPI:
    from fastapi import FastAPI
    from fastapi.middleware.cors import CORSMiddleware

    from platform_core.host import current
    from platform_core.web.page import add_page
    from platform_core.web.router import platform_router

    host = host or current()
    app = FastAPI(title="Platform task API",
                  description="Tasks of the enabled plugins: submit, follow, revoke.")
    router = platform_router(host, auth=auth)
    app.include_router(router)
    add_page(app, router)
    origins = host.settings.api_cors_origins
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type",
                                          "Last-Event-ID"])
    return app
