"""Passwords never shown: URLs printed without them, URL settings as secrets."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

MASK = "***"
_QUERY_SECRET = re.compile(r"((?:^|[?&;])(?:password|passwd|pwd|token|secret)=)[^&;#]*",
                           re.IGNORECASE)


def redact(url: str) -> str:
    """The URL without its passwords (also in ``;``-separated failover lists)."""
    return ";".join(_redact_one(part) for part in url.split(";"))


def _redact_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL after all (an invalid port, say): show no detail
        return MASK if "@" in url else url
    if password is not None:
        netloc = parts.netloc.replace(f":{password}@", f":{MASK}@", 1)
        parts = parts._replace(netloc=netloc)
    if parts.query:
        parts = parts._replace(query=_QUERY_SECRET.sub(rf"\1{MASK}", parts.query))
    return urlunsplit(parts) if password is not None or parts.query else url


class SecretUrl(SecretStr):
    """A URL setting that may hold a password: shown with the password masked.

    ``str()``, ``repr()`` and JSON dumps never contain the password; read the real
    URL with ``get_secret_value()``.
    """

    def _display(self) -> str:
        return redact(self.get_secret_value())
