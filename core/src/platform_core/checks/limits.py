"""Time limits against the visibility timeout: every task ends before the broker could
hand its message to a second worker."""

from __future__ import annotations

from platform_core.loading.registry import Registry
from platform_core.settings import Settings

# A task's hard time limit must end this long before its message can be redelivered:
# time to kill the process and acknowledge the message, plus clock skew between hosts.
VISIBILITY_MARGIN = 60


def visibility_margin(visibility_timeout: float) -> float:
    """Time a hard limit must leave before the visibility timeout: to kill the task,
    acknowledge it and absorb clock skew; a tenth of short timeouts (as in tests)."""
    return min(VISIBILITY_MARGIN, visibility_timeout / 10)


def check(settings: Settings, registry: Registry, problems: list[str]) -> None:
    """Every task ends before the broker could hand its message to a second worker."""
    vt = settings.visibility_timeout
    margin = visibility_margin(vt)
    ceiling = vt - margin
    if settings.task_soft_time_limit >= settings.task_time_limit:
        problems.append(
            f"setting `task_soft_time_limit` ({settings.task_soft_time_limit:g}s) is not below "
            f"`task_time_limit` ({settings.task_time_limit:g}s); the soft limit must come first: "
            "fix PLATFORM_TASK_SOFT_TIME_LIMIT or PLATFORM_TASK_TIME_LIMIT"
        )
    if settings.task_time_limit > ceiling:
        problems.append(
            f"setting `task_time_limit` ({settings.task_time_limit:g}s) lets a task run past "
            f"the visibility timeout ({vt}s, less a {margin:g}s margin), after which "
            "the broker hands its message to a second worker; lower PLATFORM_TASK_TIME_LIMIT to "
            f"at most {ceiling:g} or raise PLATFORM_VISIBILITY_TIMEOUT to at least "
            f"{settings.task_time_limit + margin:g}"
        )
    for c in registry.tasks:
        spec = c.item.spec
        if spec.time_limit is None:
            if (spec.soft_time_limit is not None
                    and spec.soft_time_limit >= settings.task_time_limit):
                problems.append(
                    f"{c.plugin.label} task `{spec.name}` sets soft_time_limit "
                    f"{spec.soft_time_limit:g}s but no time_limit, so the default time_limit "
                    f"({settings.task_time_limit:g}s, PLATFORM_TASK_TIME_LIMIT) would kill it "
                    "first; give the task a time_limit above its soft_time_limit"
                )
            continue
        if spec.time_limit > ceiling:
            problems.append(
                f"{c.plugin.label} task `{spec.name}` has time_limit {spec.time_limit:g}s, "
                f"which runs past the visibility timeout ({vt}s, less a {margin:g}s "
                "margin), after which the broker hands its message to a second worker; raise "
                f"PLATFORM_VISIBILITY_TIMEOUT to at least {spec.time_limit + margin:g} "
                f"or lower the task's time_limit to at most {ceiling:g}"
            )
