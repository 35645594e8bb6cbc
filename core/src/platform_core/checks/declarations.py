"""The rules every declaration must follow: no name twice, every queue, route, retry
policy and beat entry pointing at something an enabled plugin declares."""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from platform_core.loading.problems import blame
from platform_core.loading.registry import Contribution, Registry
from platform_sdk import RetryPolicy, Route


def _duplicates(
    items: list[Contribution[Any]], key: Callable[[Any], str], what: str, problems: list[str]
) -> None:
    seen: dict[str, Contribution[Any]] = {}
    for c in items:
        name = key(c.item)
        first = seen.get(name)
        if first is None:
            seen[name] = c
        elif first.plugin == c.plugin:
            problems.append(blame(c.plugin, f"declares {what} `{name}` twice; remove one"))
        else:
            problems.append(
                f"{c.plugin.label} declares {what} `{name}`, already declared by "
                f"{first.plugin.label}; rename one of them or disable one plugin"
            )


def _route_ties(registry: Registry, problems: list[str]) -> None:
    """Two plugins' equally specific routes matching one task, to different queues."""
    reported: set[tuple[str, str]] = set()
    for task in registry.tasks:
        name = task.item.name
        if task.item.spec.queue is not None:
            continue
        matching = [r for r in registry.routes if fnmatchcase(name, r.item.pattern)]
        if not matching:
            continue
        best = max(r.item.specificity for r in matching)
        top = [r for r in matching if r.item.specificity == best]
        for a, b in itertools.combinations(top, 2):
            key = (min(a.item.pattern, b.item.pattern), max(a.item.pattern, b.item.pattern))
            if a.item.queue != b.item.queue and key not in reported:
                reported.add(key)
                problems.append(
                    f"task `{name}` matches route `{a.item.pattern}` → `{a.item.queue}` of "
                    f"{a.plugin.label} and the equally specific route `{b.item.pattern}` → "
                    f"`{b.item.queue}` of {b.plugin.label}; make one pattern more specific"
                )


def check(
    registry: Registry,
    builtin_policies: dict[str, RetryPolicy],
    default_queue: str,
    route_of: Callable[[str], Contribution[Route] | None],
    problems: list[str],
) -> None:
    """Append a message to ``problems`` for everything that cannot run as declared."""
    _duplicates(registry.tasks, lambda t: t.name, "task", problems)
    _duplicates(registry.queues, lambda q: q.name, "queue", problems)
    _duplicates(registry.beat_entries, lambda b: b.name, "beat entry", problems)
    _duplicates(registry.retry_policies, lambda p: p.name, "retry policy", problems)
    _duplicates(registry.routes, lambda r: r.pattern, "route pattern", problems)

    for policy in registry.retry_policies:
        if policy.item.name in builtin_policies:
            problems.append(blame(
                policy.plugin,
                f"declares retry policy `{policy.item.name}`, which is built in; "
                "choose another name (operators change built-in policies in configuration)",
            ))
    for kind in ("worker_hints", "settings_models"):
        counted: dict[str, int] = {}
        for c in getattr(registry, kind):
            counted[c.plugin.name] = counted.get(c.plugin.name, 0) + 1
        for name, n in counted.items():
            if n > 1:
                hook = "register_" + ("worker_hints" if kind == "worker_hints" else "settings")
                problems.append(blame(registry.plugins[name],
                                      f"registers {n} items in {hook}; register one"))

    queues = registry.queue_map()
    declared = ", ".join(sorted(queues)) or "none"
    policies = set(builtin_policies) | {c.item.name for c in registry.retry_policies}

    for route in registry.routes:
        if route.item.queue not in queues:
            problems.append(blame(
                route.plugin,
                f"routes `{route.item.pattern}` to queue `{route.item.queue}`, which no "
                f"enabled plugin declares (declared: {declared}); declare it with "
                "register_queues or enable the plugin that does",
            ))
    for c in registry.tasks:
        spec = c.item.spec
        if spec.queue is not None and spec.queue not in queues:
            problems.append(blame(
                c.plugin,
                f"task `{spec.name}` names queue `{spec.queue}`, which no "
                f"enabled plugin declares (declared: {declared}); declare it with register_queues",
            ))
        elif spec.queue is None and route_of(spec.name) is None:
            # (A matching route to an undeclared queue is reported with the route.)
            owner = queues.get(default_queue)
            if owner is None:
                problems.append(blame(
                    c.plugin,
                    f"task `{spec.name}` matches no route and would go to the "
                    f"default queue `{default_queue}`, which no enabled plugin declares; add a "
                    "route or give the task queue=...",
                ))
            elif owner.plugin != c.plugin:
                problems.append(blame(
                    c.plugin,
                    f"task `{spec.name}` matches no route and would go to the "
                    f"default queue `{default_queue}` of {owner.plugin.label}, whose workers "
                    f"(--plugins {owner.plugin.name}) cannot run it; route it to a queue of "
                    f"plugin `{c.plugin.name}` or give the task queue=...",
                ))
        if isinstance(spec.retry, str) and spec.retry not in policies:
            problems.append(blame(
                c.plugin,
                f"task `{spec.name}` uses retry policy `{spec.retry}`, which "
                f"does not exist (known: {', '.join(sorted(policies))}); register it with "
                "register_retry_policies or use a known one",
            ))
        if (
            spec.soft_time_limit is not None
            and spec.time_limit is not None
            and spec.soft_time_limit >= spec.time_limit
        ):
            problems.append(blame(
                c.plugin,
                f"task `{spec.name}` has soft_time_limit "
                f"{spec.soft_time_limit:g}s not below time_limit {spec.time_limit:g}s; "
                "the soft limit must come first",
            ))

    tasks = registry.task_map()
    _route_ties(registry, problems)
    for beat in registry.beat_entries:
        entry = beat.item
        if entry.task not in tasks:
            close = difflib.get_close_matches(entry.task, list(tasks), n=1) or [
                n for n in tasks if n.rsplit(".", 1)[-1] == entry.task.rsplit(".", 1)[-1]
            ]
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            problems.append(blame(
                beat.plugin,
                f"beat entry `{entry.name}` runs task `{entry.task}`, which no "
                f"enabled plugin provides{hint}; fix the name or enable the plugin providing it",
            ))
        if entry.queue is not None and entry.queue not in queues:
            problems.append(blame(
                beat.plugin,
                f"beat entry `{entry.name}` sends to queue `{entry.queue}`, "
                f"which no enabled plugin declares (declared: {declared})",
            ))
