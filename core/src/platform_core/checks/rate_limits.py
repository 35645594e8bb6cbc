"""Global rate limits: each task's ``global_rate_limit`` parses, and a Redis holds them."""

from __future__ import annotations

import re

from platform_core.loading.problems import blame
from platform_core.loading.registry import Registry
from platform_core.settings import Settings
from platform_core.stores import rate_buckets
from platform_core.stores.rate_buckets import Rate

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_FORM = re.compile(r"\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([smh])\s*")
FORMS = '"N/s", "N/m", "N/h" or a multiple of the unit such as "30/10s"'


def parse(text: str) -> Rate:
    """``"100/m"`` as a :class:`Rate`; ``ValueError`` says what is wrong."""
    found = _FORM.fullmatch(text)
    if found is None:
        raise ValueError(f"it is not of the form {FORMS}")
    count, multiple, unit = found.groups()
    period = (float(multiple) if multiple else 1.0) * UNITS[unit]
    if int(count) < 1 or period <= 0:
        raise ValueError("it allows no run at all; give at least one run per period")
    return Rate(int(count), period)


def rates(registry: Registry) -> dict[str, Rate]:
    """Each task's global rate limit (those that parse; the others are problems)."""
    found: dict[str, Rate] = {}
    for c in registry.tasks:
        text = c.item.spec.global_rate_limit
        if text is not None:
            try:
                found[c.item.spec.name] = parse(text)
            except ValueError:
                continue
    return found


def check(settings: Settings, registry: Registry, problems: list[str], *,
          needs_redis: bool = True) -> None:
    limited = []
    for c in registry.tasks:
        spec = c.item.spec
        if spec.global_rate_limit is None:
            continue
        if not isinstance(spec.global_rate_limit, str):
            problems.append(blame(c.plugin, (
                f"task `{spec.name}` sets global_rate_limit to a "
                f"{type(spec.global_rate_limit).__name__}; give a text: {FORMS}")))
            continue
        try:
            parse(spec.global_rate_limit)
        except ValueError as exc:
            problems.append(blame(c.plugin, (
                f"task `{spec.name}` has global_rate_limit {spec.global_rate_limit!r}, which "
                f"the platform cannot read: {exc}; fix the task's "
                f"@task(global_rate_limit=...) in {spec.location}")))
            continue
        limited.append(c)
    if limited and needs_redis and rate_buckets.locate(settings) is None:
        for c in limited:
            problems.append(
                f"{c.plugin.label} task `{c.item.spec.name}` has global_rate_limit "
                f"{c.item.spec.global_rate_limit!r}, which all workers share through Redis, "
                "and no Redis is configured; use a Redis broker "
                "(PLATFORM_BROKER_URL=redis://...) or a Redis result backend "
                "(PLATFORM_RESULT_BACKEND), or set PLATFORM_DEAD_LETTER_URL to a redis:// URL")
