"""Each plugin names things under its own name, and sends only to its own queues.

Plugin ``hello`` may declare tasks, queues and beat entries named ``hello`` or
``hello.<anything>``, and routes whose pattern starts with ``hello.``
(so they match only its own tasks). The platform's ``default`` queue is the one
shared name: one enabled plugin may declare it. A plugin's tasks, routes and beat
entries use that plugin's own queues, and its beat entries run its own tasks, so a
worker started with ``--plugins hello`` runs everything sent to the queues it
consumes, and no plugin can take over another's names, messages or schedule.

A violation is the declaring plugin's own problem. Two plugins whose settings
would be read from the same environment variables conflict with each other.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

from platform_core.loading.problems import blame
from platform_core.loading.registry import Contribution, Registry
from platform_core.settings import Settings, plugin_env_prefix
from platform_sdk import Route


def owns(plugin: str, name: str) -> bool:
    return name == plugin or name.startswith(plugin + ".")


def _outside(c: Contribution[Any], what: str, name: str, problems: list[str]) -> None:
    plugin = c.plugin.name
    problems.append(blame(
        c.plugin,
        f"declares {what} `{name}` outside its namespace; a plugin's tasks, queues and beat "
        f"entries are named `{plugin}` or `{plugin}.<name>`: rename it `{plugin}.{name}` or "
        "similar",
    ))


def _queue_of_other(c: Contribution[Any], subject: str, queue: str, owner: Contribution[Any],
                    problems: list[str]) -> None:
    plugin = c.plugin.name
    problems.append(blame(
        c.plugin,
        f"{subject} to queue `{queue}` of {owner.plugin.label}; a plugin sends only to its own "
        f"queues, which its workers (--plugins {plugin}) consume: declare a queue "
        f"`{plugin}.<name>` and use it",
    ))


def check(registry: Registry, default_queue: str,
          route_of: Callable[[str], Contribution[Route] | None], problems: list[str]) -> None:
    """Append a problem for every name or queue a plugin uses outside its own."""
    for task in registry.tasks:
        if not owns(task.plugin.name, task.item.name):
            _outside(task, "task", task.item.name, problems)
    for queue in registry.queues:
        if queue.item.name != default_queue and not owns(queue.plugin.name, queue.item.name):
            _outside(queue, "queue", queue.item.name, problems)
    for beat in registry.beat_entries:
        if not owns(beat.plugin.name, beat.item.name):
            _outside(beat, "beat entry", beat.item.name, problems)
    for route in registry.routes:
        plugin, pattern = route.plugin.name, route.item.pattern
        if not owns(plugin, pattern):
            problems.append(blame(
                route.plugin,
                f"declares route pattern `{pattern}`, which could match other plugins' tasks; "
                f"a plugin's route patterns start with `{plugin}.` (for example `{plugin}.*`)",
            ))

    queues: dict[str, list[Contribution[Any]]] = {}
    for q in registry.queues:
        queues.setdefault(q.item.name, []).append(q)

    def foreign(c: Contribution[Any], queue: str | None) -> Contribution[Any] | None:
        """The other plugin declaring ``queue``, unless ``c``'s plugin declares it too."""
        owners = queues.get(queue, []) if queue is not None else []
        if not owners or any(o.plugin == c.plugin for o in owners):
            return None
        return owners[0]

    for route in registry.routes:
        if (owner := foreign(route, route.item.queue)) is not None:
            _queue_of_other(route, f"routes `{route.item.pattern}`", route.item.queue, owner,
                            problems)
    for task in registry.tasks:
        wanted = task.item.spec.queue
        if (owner := foreign(task, wanted)) is not None:
            assert wanted is not None
            _queue_of_other(task, f"sends task `{task.item.name}`", wanted, owner, problems)
        matched = route_of(task.item.name) if wanted is None else None
        if matched is None or matched.plugin == task.plugin:
            continue
        tie = any(r.plugin == task.plugin and r.item.specificity == matched.item.specificity
                  and fnmatchcase(task.item.name, r.item.pattern) for r in registry.routes)
        if not tie:  # (equally specific routes of two plugins are reported as such)
            # Possible only between nested names (plugins `a` and `a.b`): neither is wrong alone.
            problems.append(
                f"task `{task.item.name}` of {task.plugin.label} matches route "
                f"`{matched.item.pattern}` of {matched.plugin.label}, which sends it to queue "
                f"`{matched.item.queue}`; give the task queue=... or make the route more specific"
            )
    providers: dict[str, list[Contribution[Any]]] = {}
    for t in registry.tasks:
        providers.setdefault(t.item.name, []).append(t)
    for beat in registry.beat_entries:
        entry = beat.item
        if (owner := foreign(beat, entry.queue)) is not None:
            assert entry.queue is not None
            _queue_of_other(beat, f"sends beat entry `{entry.name}`", entry.queue, owner,
                            problems)
        found = providers.get(entry.task, [])
        if found and not any(t.plugin == beat.plugin for t in found):
            problems.append(blame(
                beat.plugin,
                f"beat entry `{entry.name}` runs task `{entry.task}` of {found[0].plugin.label}; "
                "a plugin schedules only its own tasks (that plugin can declare the entry)",
            ))


def check_plugin_names(registry: Registry, problems: list[str]) -> None:
    """Plugin names that would read the platform's own settings, or each other's."""
    reserved = set(Settings.model_fields)
    for info in registry.plugins.values():
        key = info.name.lower().replace("-", "_").replace(".", "_")
        if key in reserved:
            problems.append(blame(
                info,
                f"has a name the platform's settings use (`{key}`, PLATFORM_{key.upper()}__*); "
                "its distribution must name its entry point differently",
            ))
    readers: dict[str, Contribution[Any]] = {}
    for c in registry.settings_models:
        prefix = plugin_env_prefix(c.plugin.name)
        first = readers.setdefault(prefix, c)
        if first.plugin != c.plugin:
            problems.append(
                f"{c.plugin.label} and {first.plugin.label} would both read their settings from "
                f"{prefix}* variables; uninstall or disable one of them"
            )
