"""The dead-letter store's URL, when an operator sets one."""

from __future__ import annotations

from platform_core.settings import Settings
from platform_core.stores import Location, locate
from platform_core.urls import kind, redis_client_url


def check(settings: Settings, problems: list[str]) -> None:
    problem = url_problem(locate(settings))
    if problem:
        problems.append(problem)


def url_problem(location: Location) -> str | None:
    """Why an explicitly configured store URL cannot work, or None."""
    if location.source != "PLATFORM_DEAD_LETTER_URL" or redis_client_url(location.url):
        return None
    if kind(location.url) == "redis":
        from platform_core.redaction import redact

        return (f"setting `dead_letter_url` ({redact(location.url)}) names Redis through "
                "Sentinel, which the store cannot open; give the master's redis:// URL or a "
                "SQLAlchemy database URL in PLATFORM_DEAD_LETTER_URL")
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(location.url).get_dialect()
    except (ArgumentError, NoSuchModuleError) as exc:
        from platform_core.redaction import redact

        return (f"setting `dead_letter_url` ({redact(location.url)}) is neither a redis:// nor "
                f"a SQLAlchemy database URL ({exc}); fix PLATFORM_DEAD_LETTER_URL or "
                "`dead_letter_url` in platform.toml")
    return None
