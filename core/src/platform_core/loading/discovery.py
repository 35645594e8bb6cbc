"""Find plugins through the ``platform.plugins`` entry-point group.

Allow- and denylists are applied to entry-point *names* before anything is
imported, so the code of a plugin that is not selected never runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType

from platform_core.loading import import_errors
from platform_core.loading.problems import blame
from platform_core.loading.registry import PluginInfo

GROUP = "platform.plugins"


@dataclass(frozen=True)
class LoadedPlugin:
    info: PluginInfo
    module: ModuleType | object


@cache
def _scan() -> tuple[EntryPoint, ...]:
    return tuple(entry_points(group=GROUP))


def _found() -> dict[str, list[tuple[PluginInfo, EntryPoint]]]:
    found: dict[str, list[tuple[PluginInfo, EntryPoint]]] = {}
    for ep in _scan():
        dist = ep.dist
        info = PluginInfo(
            name=ep.name,
            distribution=dist.name if dist else "unknown distribution",
            version=dist.version if dist else "?",
            target=ep.value,
        )
        found.setdefault(ep.name, []).append((info, ep))
    return found


def installed() -> dict[str, list[PluginInfo]]:
    """Every installed plugin by name (a name may be claimed by several distributions)."""
    return {name: [info for info, _ in pairs] for name, pairs in _found().items()}


def rescan() -> None:
    """Forget the cached scan (after installing a plugin in a running process)."""
    _scan.cache_clear()


def load(
    allow: Sequence[str] | None, deny: Sequence[str], problems: list[str]
) -> list[LoadedPlugin]:
    """Import the selected plugins; append a message to ``problems`` for each failure."""
    found = _found()
    available = {name: [info for info, _ in pairs] for name, pairs in found.items()}
    if allow is not None:
        for name in allow:
            if name not in available:
                known = ", ".join(sorted(available)) or "none"
                problems.append(
                    f"plugin `{name}` was requested (--plugins / PLATFORM_PLUGINS) but is not "
                    f"installed; installed plugins: {known}. Install its package or fix the name."
                )
    for name in deny:
        if name not in available:
            problems.append(
                f"PLATFORM_DISABLED_PLUGINS names `{name}`, which is not installed "
                f"(installed: {', '.join(sorted(available)) or 'none'}); fix the name"
            )
    if allow is not None:
        for name in allow:
            if name in deny:
                problems.append(
                    f"plugin `{name}` is both requested (--plugins / PLATFORM_PLUGINS) and "
                    "disabled (PLATFORM_DISABLED_PLUGINS); remove it from one of them"
                )
    selected = [
        name
        for name in sorted(available)
        if (allow is None or name in allow) and name not in deny
    ]
    loaded: list[LoadedPlugin] = []
    for name in selected:
        infos = available[name]
        if len(infos) > 1:
            owners = " and ".join(f"{i.distribution} {i.version} ({i.target})" for i in infos)
            problems.append(
                f"plugin name `{name}` is declared by {owners}; uninstall one of them"
            )
            continue
        info, entry_point = found[name][0]
        try:
            module = entry_point.load()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported, not raised
            problems.append(blame(
                info,
                f"failed to import {info.target}: {import_errors.describe(info.target, exc)}. "
                f"Fix the plugin, or leave it out with PLATFORM_DISABLED_PLUGINS={name}",
            ))
            continue
        loaded.append(LoadedPlugin(info=info, module=module))
    return loaded
