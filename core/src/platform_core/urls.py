"""What a broker, result-backend or store URL points to: the one classifier of URLs.

Every part of the platform that treats Redis, RabbitMQ, the embedded broker or a
database differently asks :func:`kind`; the store, which opens Redis with redis-py
rather than through kombu, asks :func:`redis_client_url`.
"""

from __future__ import annotations

# kombu's and Celery's names for a Redis server (TLS, a Unix socket, Sentinel).
REDIS = frozenset({"redis", "rediss", "redis+socket", "sentinel"})
# Celery's redis result backend opens these as they are; Sentinel's needs options of its own.
PLAIN_REDIS = frozenset({"redis", "rediss"})
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


def kind(url: str | None) -> str:
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
    and a URL that is no Redis has none (``unix://`` is redis-py's own name for a socket)."""
    found = scheme(url)
    if url is None or found == "sentinel" or (kind(url) != "redis" and found != "unix"):
        return None
    first = url.split(";", 1)[0]
    if found == "redis+socket":
        return "unix://" + first.partition("://")[2]
    return first


def database_url(url: str | None) -> str | None:
    """The SQLAlchemy URL of a database result backend (Celery's ``db+`` prefix removed)."""
    found = scheme(url)
    if url is None or not found.startswith("db+"):
        return None
    return url.split(";", 1)[0][3:]
