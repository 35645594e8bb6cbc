"""The dead-letter store's URL, when an operator sets one, and the master name every
Redis Sentinel URL needs."""

from __future__ import annotations

from platform_core.settings import Settings
from platform_core.stores import Location, locate, redis_url
from platform_core.urls import scheme

#: the settings that may hold a Sentinel URL
SENTINEL_SETTINGS = ("broker_url", "result_backend", "dead_letter_url")


def check(settings: Settings, problems: list[str]) -> None:
    problem = url_problem(locate(settings))
    if problem:
        problems.append(problem)
    problems.extend(sentinel_problems(settings))


def sentinel_problems(settings: Settings) -> list[str]:
    """A Sentinel URL with no master name to ask the sentinels for."""
    if settings.redis_master_name:
        return []
    found = []
    for name in SENTINEL_SETTINGS:
        value = getattr(settings, name)
        url = value.get_secret_value() if value is not None else ""
        if scheme(url) == "sentinel":  # only then: redis-py is slow to import
            from platform_core.stores.redis_client import missing_master_name

            found.append(missing_master_name(url, f"setting `{name}`"))
    return found


def url_problem(location: Location) -> str | None:
    """Why an explicitly configured store URL cannot work, or None."""
    if location.source != "PLATFORM_DEAD_LETTER_URL" or redis_url(location.url):
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(location.url).get_dialect()
    except (ArgumentError, NoSuchModuleError) as exc:
        from platform_core.redaction import redact

        return (f"setting `dead_letter_url` ({redact(location.url)}) is neither a Redis nor "
                f"a SQLAlchemy database URL ({exc}); fix PLATFORM_DEAD_LETTER_URL or "
                "`dead_letter_url` in platform.toml")
    return None
