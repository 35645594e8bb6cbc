"""Passwords never shown: URLs printed without them, URL settings as secrets.

Three layers, from the most to the least informed:

- :func:`redact` masks the password of a URL known to be one (``SecretUrl`` uses it);
- :func:`shown` copies any value (strings, lists, tables, at any depth) with every
  URL-like string redacted, for messages that show what a setting was given;
  :func:`shown_input` shows nothing but the type for a setting that is a secret;
- :func:`scrub` masks whatever looks like a credential in a finished message; every
  :class:`~platform_core.errors.PlatformError` passes through it.
"""

from __future__ import annotations

import itertools
import re
import typing
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Secret, SecretBytes, SecretStr
from pydantic_core import ErrorDetails

MASK = "***"
_SECRET_NAME = r"[\w-]*(?:password|passwd|pwd|token|secret|(?:api|access|private)[_-]?key)"
_QUERY_SECRET = re.compile(rf"((?:^|[?&;]){_SECRET_NAME}=)[^&;#]*", re.IGNORECASE)
_TEXT_SECRET = re.compile(rf"(\b{_SECRET_NAME}=)[^&;#\s'\"`,)\]}}]*", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_URL_END = frozenset("'\"`<>")
_NEXT_URL = re.compile(r"[;,]\s*([A-Za-z][A-Za-z0-9+.\-]*://)")
_DEPTH = 12


def redact(url: str) -> str:
    """The URL without its passwords, also in ``;`` or ``,`` separated failover lists and
    when an unescaped character in the password (``#``, ``/``, ``;``, ...) breaks the
    URL's syntax."""
    starts = [0, *(m.start(1) for m in _NEXT_URL.finditer(url)), len(url)]
    return scrub("".join(_redact_one(url[a:b]) for a, b in itertools.pairwise(starts)))


def _redact_one(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL after all (an invalid port, say): show no detail
        return MASK if "@" in url else url
    if password is None:
        # No password as a URL parser sees it; one that breaks the syntax still runs
        # from the first `:` after `://` to the last `@`.
        start = url.find("://") + 3
        at = url.rfind("@")
        if start > 2 and at > start:
            user, colon, _ = url[start:at].partition(":")
            if colon:
                return scrub(url[:start] + user + ":" + MASK + url[at:])
    else:
        netloc = parts.netloc.replace(f":{password}@", f":{MASK}@", 1)
        parts = parts._replace(netloc=netloc)
    if parts.query:
        parts = parts._replace(query=_QUERY_SECRET.sub(rf"\1{MASK}", parts.query))
    return urlunsplit(parts) if password is not None or parts.query else url


def scrub(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` in it masked, and
    the value of every ``password=``, ``token=``, ``secret=``, ... (anywhere in it).

    Where a URL ends is a guess in free text, so the guess errs on masking more: from
    ``://`` up to the last ``@`` before a space, a quote, or the next URL of a ``,`` or
    ``;`` separated list."""
    out: list[str] = []
    done = 0
    for match in _SCHEME.finditer(text):
        start = match.end()
        if match.start() < done:
            continue
        end = start
        while end < len(text) and not text[end].isspace() and text[end] not in _URL_END:
            end += 1
        following = _NEXT_URL.search(text, start, end)
        at = text.rfind("@", start, following.start() if following else end)
        if at < 0:
            continue
        user, colon, _ = text[start:at].partition(":")
        if not colon:
            continue
        out += [text[done:start], user, ":", MASK]
        done = at
    out.append(text[done:])
    return _TEXT_SECRET.sub(rf"\1{MASK}", "".join(out))


class _Opaque:
    """Stands for a value that is shown by its type only."""

    def __init__(self, value: Any) -> None:
        self.name = type(value).__name__

    def __repr__(self) -> str:
        return f"<{self.name}>"


_PLAIN = (bool, int, float, type(None))


def shown(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` that is safe to print: each string redacted, secrets in their
    masked form, lists and tables (at any depth) copied the same way, and any other
    object shown by its type only."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (*_PLAIN, SecretStr, SecretBytes, Secret)):
        return value
    if _depth >= _DEPTH:
        return _Opaque(value)
    if isinstance(value, Mapping):
        return {shown(k, _depth + 1): shown(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(shown(v, _depth + 1) for v in value)
    return _Opaque(value)


def is_secret(annotation: Any) -> bool:
    """Whether a field annotated ``annotation`` holds a secret (``SecretStr``,
    ``SecretUrl``, ``Secret[...]``, also inside ``Optional``, ``list``, ``Annotated``...)."""
    if isinstance(annotation, type) and issubclass(annotation, SecretStr | SecretBytes | Secret):
        return True
    origin = typing.get_origin(annotation)
    if isinstance(origin, type) and issubclass(origin, Secret):
        return True
    return any(is_secret(arg) for arg in typing.get_args(annotation))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def secret_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> bool:
    """Whether the value at ``loc`` (a validation error's location) in ``model`` belongs to
    a secret field."""
    models = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        if not fields:
            return False
        if any(is_secret(f.annotation) for f in fields):
            return True
        models = [m for f in fields for m in _models_in(f.annotation)]
    return False


def shown_input(model: type[BaseModel], loc: tuple[int | str, ...], value: Any) -> str:
    """How a setting's rejected input is quoted in an error: by its type alone for a
    secret, else as a redacted copy."""
    if secret_at(model, loc):
        return f"a {type(value).__name__}, not shown: the setting is a secret"
    return repr(shown(value))


# Errors whose message is written by a validator and may quote the value it rejected.
_OWN_MESSAGES = frozenset({"value_error", "assertion_error"})


def error_message(model: type[BaseModel], err: ErrorDetails) -> str:
    """A validation error's message; for a secret, never one that can quote the value."""
    if err["type"] in _OWN_MESSAGES and secret_at(model, tuple(err["loc"])):
        return f"rejected by {model.__name__}'s validator (its message is not shown: the " \
               "setting is a secret)"
    return err["msg"]


class SecretUrl(SecretStr):
    """A URL setting that may hold a password: shown with the password masked.

    ``str()``, ``repr()`` and JSON dumps never contain the password; read the real
    URL with ``get_secret_value()``.
    """

    def _display(self) -> str:
        return redact(self.get_secret_value())
