"""What a broker, result-backend or store URL points to: the one classifier of URLs.

Every part of the platform that treats Redis, RabbitMQ, the embedded broker or a
database differently asks :func:`kind`; the store, which opens Redis with redis-py
rather than through kombu, asks :func:`redis_client_url`.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["redis", "amqp", "embedded", "database"] | str

# kombu's and Celery's names for a Redis server (TLS, a Unix socket, Sentinel), and
# redis-py's name for a Unix socket.
REDIS = frozenset({"redis", "rediss", "redis+socket", "sentinel", "unix"})
AMQP = frozenset({"amqp", "amqps", "pyamqp"})
# SQLAlchemy dialects (``postgresql+psycopg`` is judged by its first part).
DATABASES = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle",
                       "mssql"})


def scheme(url: str | None) -> str:
    """The scheme of ``url`` in lower case; a ``;``-separated failover list is judged by
    its first URL."""
    first = (url or "").split(";", 1)[0]
    head, sep, _ = first.partition("://")
    return head.strip().lower() if sep else ""


def kind(url: str | None) -> Kind:
    """``redis``, ``amqp``, ``embedded`` (kombu's ``filesystem://``) or ``database``
    (SQLAlchemy URLs, with or without Celery's ``db+`` prefix); else the scheme."""
    found = scheme(url)
    if found in REDIS:
        return "redis"
    if found in AMQP:
        return "amqp"
    if found == "filesystem":
        return "embedded"
    if found.startswith("db+") or found.split("+", 1)[0] in DATABASES:
        return "database"
    return found



def redis_client_url(url: str | None) -> str | None:
    """``url`` as redis-py opens it, or None: Sentinel needs kombu's or Celery's client,
    and a URL that is no Redis has none."""
    found = scheme(url)
    if url is None or kind(url) != "redis" or found == "sentinel":
        return None
    first = url.split(";", 1)[0]
    if found == "redis+socket":
        return "unix://" + first.partition("://")[2]
    return first
