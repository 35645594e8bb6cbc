"""CORS is off unless PLATFORM_API_CORS_ORIGINS lists origins; then only those may call.

The app is called in-process through httpx's ASGI transport (no socket): what is checked
here is the middleware's answer to a browser's preflight.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx

from platform_core.host import reset
from platform_core.web import create_app
from tests.support import PlatformEnv

PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "x-api-key,content-type"}


class Preflight:
    def __init__(self, app: Any) -> None:
        self.app = app

    def options(self, path: str, headers: dict[str, str]) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
                return await c.options(path, headers=headers)
        return asyncio.run(call())


def client(platform_env: PlatformEnv, **settings: str) -> Preflight:
    platform_env.set(PLATFORM_PLUGINS="quant", PLATFORM_API_KEYS=secrets.token_urlsafe(20),
                     **settings)
    try:
        return Preflight(create_app(platform_env.host()))
    finally:
        reset()


def test_no_cross_origin_calls_by_default(platform_env: PlatformEnv) -> None:
    answer = client(platform_env).options(
        "/tasks/quant.process_data", headers={"Origin": "https://app.example", **PREFLIGHT})
    assert "access-control-allow-origin" not in answer.headers


def test_listed_origins_only(platform_env: PlatformEnv) -> None:
    api = client(platform_env, PLATFORM_API_CORS_ORIGINS="https://app.example,https://b.example")
    allowed = api.options("/tasks/quant.process_data",
                          headers={"Origin": "https://b.example", **PREFLIGHT})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://b.example"
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    other = api.options("/tasks/quant.process_data",
                        headers={"Origin": "https://evil.example", **PREFLIGHT})
    assert "access-control-allow-origin" not in other.headers
