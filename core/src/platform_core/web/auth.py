"""Who may call the task API: a key of ``PLATFORM_API_KEYS`` with the route's scope."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from platform_core.errors import ConfigurationError
from platform_core.web import keys as api_keys

if TYPE_CHECKING:
    from platform_core.host import Host

COOKIE = "platform_api_key"
# The ways a request may carry its key, as /openapi.json documents them.
BEARER = HTTPBearer(auto_error=False, description="An API key of PLATFORM_API_KEYS.")
HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)
COOKIE_KEY = APIKeyCookie(name=COOKIE, auto_error=False,
                          description="Set by the live page; accepted for reads only.")


class Authenticator:
    """Requests carry a key (``Authorization: Bearer``, ``X-API-Key``, or for reads the
    cookie the live page sets); each route needs one scope."""

    def __init__(self, keys: list[api_keys.ApiKey] | None) -> None:
        self.keys = keys  # None: no authentication (loopback with --no-auth, or the app's own)

    def need(self, scope: str) -> Any:
        async def check(request: Request,
                        token: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
                        key: Annotated[str | None, Security(HEADER)],
                        from_cookie: Annotated[str | None, Security(COOKIE_KEY)]) -> None:
            if self.keys is None:
                return
            presented = (token.credentials if token else None) or key
            if presented is None and request.method == "GET":
                presented = from_cookie
            if not presented:
                raise HTTPException(401, "an API key is required: send `Authorization: Bearer "
                                         "<key>` or `X-API-Key: <key>` (PLATFORM_API_KEYS)",
                                    headers={"WWW-Authenticate": "Bearer"})
            found = api_keys.find(self.keys, presented)
            if found is None:
                raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
            request.state.api_key = found.label
            if scope not in found.scopes:
                raise HTTPException(403, f"{found.label} of PLATFORM_API_KEYS lacks the "
                                         f"`{scope}` scope; add it as `KEY:{scope},...`")

        return Depends(check)


def authenticator(host: Host, auth: bool) -> Authenticator:
    if not auth:
        return Authenticator(None)
    configured = api_keys.parse(host.settings.api_keys)
    if not configured:
        raise ConfigurationError([
            "the task API needs at least one key: set PLATFORM_API_KEYS (e.g. "
            "`PLATFORM_API_KEYS=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')`), "
            "or serve without keys: `platform api --no-auth` on a loopback address, or "
            "platform_router(auth=False) when your application authenticates requests itself"])
    return Authenticator(configured)


