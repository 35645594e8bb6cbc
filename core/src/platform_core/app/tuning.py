"""Effective worker settings: CLI flag > configuration > strictest plugin hint > default."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from platform_core.loading.registry import Contribution
from platform_core.settings import WorkerSettings
from platform_sdk import WorkerHints

DEFAULTS: dict[str, Any] = {
    "concurrency": None,  # Celery's default: the number of CPUs
    # Recycling by task count costs throughput on every worker (billiard replaces a
    # child only on its next 0.8 s supervisor tick); recycling by memory costs nothing
    # until a child actually grows, so that is the default guard against leaks.
    "max_tasks_per_child": None,
    "max_memory_per_child": 1_048_576,  # KiB: 1 GiB
    "prefetch_multiplier": 4,
    "pool": "prefork",
}
STRICTEST_IS_SMALLEST = {"max_tasks_per_child", "max_memory_per_child", "concurrency",
                         "prefetch_multiplier"}


class WorkerFlags(TypedDict, total=False):
    """``platform worker``'s tuning options; a flag not given is None or absent."""

    concurrency: int | None
    max_tasks_per_child: int | None
    max_memory_per_child: int | None
    prefetch_multiplier: int | None
    pool: str | None


COMMAND_LINE, CONFIGURATION = "command line", "configuration"


@dataclass(frozen=True)
class Tuned:
    name: str
    value: Any
    source: str

    @property
    def set_by_operator(self) -> bool:
        """Given on the command line or in the configuration, not by a hint or default."""
        return self.source in (COMMAND_LINE, CONFIGURATION)


def effective(
    cli: Mapping[str, object],
    configured: WorkerSettings,
    hints: Iterable[Contribution[WorkerHints]],
) -> dict[str, Tuned]:
    hints = list(hints)
    result: dict[str, Tuned] = {}
    for name, default in DEFAULTS.items():
        if cli.get(name) is not None:
            result[name] = Tuned(name, cli[name], COMMAND_LINE)
            continue
        value = getattr(configured, name)
        if value is not None:
            result[name] = Tuned(name, value, CONFIGURATION)
            continue
        offered = [(getattr(c.item, name), c.plugin.name) for c in hints
                   if getattr(c.item, name) is not None]
        if offered and name in STRICTEST_IS_SMALLEST:
            value, plugin = min(offered, key=lambda pair: pair[0])
            result[name] = Tuned(name, value, f"hint of plugin {plugin}")
        elif offered and len({v for v, _ in offered}) == 1:
            plugins = ", ".join(p for _, p in offered)
            result[name] = Tuned(name, offered[0][0], f"hint of plugin {plugins}")
        elif offered:
            disagree = ", ".join(f"{p}={v}" for v, p in offered)
            result[name] = Tuned(name, default, f"platform default (plugins disagree: {disagree})")
        else:
            result[name] = Tuned(name, default, "platform default")
    return result
