"""The live page at ``/``: one HTML file, plain JavaScript, ``EventSource``.

``EventSource`` cannot send headers, so the page trades the key typed into it for a
cookie (``POST /session``: HttpOnly, SameSite=Strict), which the API accepts for reads
only; submits send the key as a header.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

if TYPE_CHECKING:
    from fastapi import FastAPI

    from platform_core.web.router import TaskRouter


def add_page(app: FastAPI, router: TaskRouter) -> None:
    from platform_core.web import keys
    from platform_core.web.auth import COOKIE

    configured = router.authenticator.keys
    auth = configured is not None

    html = resources.files("platform_core.web").joinpath("page.html").read_text("utf-8")
    html = html.replace("__AUTH__", "true" if auth else "false")

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(html, headers={"Cache-Control": "no-store",
                                           "Content-Security-Policy":
                                               "default-src 'self'; script-src 'unsafe-inline'; "
                                               "style-src 'unsafe-inline'"})

    @app.post("/session", include_in_schema=False)
    async def session(request: Request) -> Response:
        presented = (await request.body()).decode("utf-8", "replace").strip()
        if configured is not None and keys.find(configured, presented) is None:
            return JSONResponse({"detail": "unknown API key"}, 401)
        response = JSONResponse({"ok": True})
        if auth:
            response.set_cookie(COOKIE, presented, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")
        return response
