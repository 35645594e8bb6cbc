"""API keys and their scopes, from ``PLATFORM_API_KEYS``.

Each key is ``SECRET`` or ``SECRET:SCOPE,SCOPE``, keys separated by spaces. A key
with no scopes may ``read`` and ``submit``; ``revoke`` must be given. A request's key
is compared with every configured key in constant time, and a key is named in errors
and logs by its position (``key 2``), never by any part of its value.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from pydantic import SecretStr

from platform_core.errors import ConfigurationError

SCOPES = ("read", "submit", "revoke")
DEFAULT_SCOPES = frozenset({"read", "submit"})
MIN_LENGTH = 16


@dataclass(frozen=True)
class ApiKey:
    number: int  # 1-based position in PLATFORM_API_KEYS
    secret: bytes
    scopes: frozenset[str]

    @property
    def label(self) -> str:
        return f"key {self.number}"


def parse(value: SecretStr | str | None) -> list[ApiKey]:
    """The configured keys; :class:`ConfigurationError` naming each bad entry by position."""
    if value is None:
        return []
    text = value.get_secret_value() if isinstance(value, SecretStr) else value
    keys, problems = [], []
    for number, entry in enumerate(text.split(), start=1):
        secret, _, scopes_text = entry.partition(":")
        scopes = frozenset(s for s in scopes_text.split(",") if s) or DEFAULT_SCOPES
        unknown = sorted(scopes - set(SCOPES))
        if unknown:
            problems.append(
                f"PLATFORM_API_KEYS entry {number} names unknown scope(s) "
                f"{', '.join(unknown)}; scopes are {', '.join(SCOPES)}")
        if len(secret) < MIN_LENGTH:
            problems.append(
                f"PLATFORM_API_KEYS entry {number} is shorter than {MIN_LENGTH} characters; "
                "use a random key, e.g. `python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'`")
        keys.append(ApiKey(number, secret.encode(), scopes))
    if problems:
        raise ConfigurationError(problems)
    return keys


def find(keys: list[ApiKey], presented: str) -> ApiKey | None:
    """The key matching ``presented``; every key is compared, so timing tells nothing."""
    candidate = presented.encode()
    found = None
    for key in keys:
        if hmac.compare_digest(key.secret, candidate):
            found = key
    return found
