"""The one way the platform opens a Redis client of its own (dead letters, held delays,
the beat lock): ``redis://``, ``rediss://``, a Unix socket, or Redis Sentinel.

A Sentinel URL is written as kombu and Celery write it,
``sentinel://[:password@]host:port[/db];sentinel://host2:port2;...``, and the master's
name comes from the ``redis_master_name`` setting (``master_name`` in Celery's
transport options). The client asks the sentinels for the master before it connects
and again after a connection error, so it follows a failover without a restart: the
command that meets the old master fails (a dead master's connection error, or a
demoted one's ``READONLY`` reply, which redis-py turns into a connection error) and
the next attempt goes to the new master.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from platform_core.redaction import redact
from platform_core.urls import redis_client_url, scheme

SENTINEL_PORT = 26379
MASTER_NAME_SETTING = "redis_master_name"


class RedisUrlError(ValueError):
    """A URL the platform's Redis client cannot open; the message names the fix."""


@dataclass(frozen=True)
class SentinelAddress:
    """What a Sentinel URL says: the sentinels, and the master's database and login."""

    sentinels: tuple[tuple[str, int], ...]
    db: int
    username: str | None
    password: str | None


def parse_sentinel(url: str) -> SentinelAddress:
    """The sentinels of a ``;``-separated Sentinel URL; the database and the master's
    password come from the first URL that gives them, as in kombu."""
    sentinels: list[tuple[str, int]] = []
    db: int | None = None
    username = password = None
    for part in (p.strip() for p in url.split(";")):
        if not part:
            continue
        try:
            parts = urlsplit(part)
            port = parts.port or SENTINEL_PORT
        except ValueError as exc:
            raise RedisUrlError(f"{redact(part)} is not a valid Sentinel URL ({exc})") from None
        if parts.scheme.lower() != "sentinel":
            raise RedisUrlError(f"{redact(part)} in the Sentinel URL {redact(url)} is not a "
                                "sentinel:// URL; separate the sentinels with `;`, each as "
                                "sentinel://host:port")
        sentinels.append((parts.hostname or "localhost", port))
        path = parts.path.strip("/")
        if db is None and path:
            if not path.isdigit():
                raise RedisUrlError(f"the database in {redact(part)} is not a number")
            db = int(path)
        if password is None and parts.password is not None:
            username = unquote(parts.username) if parts.username else None
            password = unquote(parts.password)
    if not sentinels:
        raise RedisUrlError(f"{redact(url)} names no sentinel")
    return SentinelAddress(tuple(sentinels), db or 0, username, password)


def redis_client(url: str, master_name: str | None = None, **options: Any) -> redis.Redis[bytes]:
    """A client for the Redis at ``url``; ``options`` are redis-py connection options
    (socket timeouts, health checks, ``retry``)."""
    if scheme(url) == "sentinel":
        return _master(url, master_name, options)
    plain = redis_client_url(url)
    if plain is None:
        raise RedisUrlError(f"{redact(url)} is not a Redis URL")
    client: redis.Redis[bytes] = redis.Redis.from_url(plain, **options)
    return client


def _master(url: str, master_name: str | None, options: dict[str, Any]) -> redis.Redis[bytes]:
    if not master_name:
        raise RedisUrlError(missing_master_name(url))
    address = parse_sentinel(url)
    # As redis-py retries for its own clients; a Sentinel pool's connections get none.
    options.setdefault("retry", Retry(ExponentialBackoff(cap=10, base=1), 3))
    login = {"username": address.username, "password": address.password}
    sentinel = Sentinel(list(address.sentinels), **options)
    client: Any = sentinel.master_for(master_name, redis.Redis, db=address.db,
                                      **{k: v for k, v in login.items() if v is not None})
    return cast("redis.Redis[bytes]", client)


def missing_master_name(url: str, setting: str = "a Redis URL") -> str:
    return (f"{setting} ({redact(url)}) names Redis Sentinel but no master name is set; set "
            f"PLATFORM_REDIS_MASTER_NAME (or `{MASTER_NAME_SETTING}` in platform.toml) to the "
            "name the sentinels monitor (`sentinel monitor NAME ...` in their configuration)")
