"""Load the selected plugins: entry points → imported modules → pluggy → collected registry."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from platform_core.loading import discovery
from platform_core.loading.hooks import collect, new_manager, register_plugins
from platform_core.loading.registry import PluginInfo, Registry
from platform_core.settings import Settings

IN_PROCESS = "registered in process"


@dataclass
class Loaded:
    """Everything the loaded plugins contribute, and the problems met on the way."""

    everything: Registry
    problems: list[str]
    #: the process loads only some installed plugins (an allowlist or a denylist)
    partial: bool
    #: every plugin installed or loaded, by name (to report the broken ones)
    known: dict[str, PluginInfo]


def load(settings: Settings, plugins: Sequence[str] | None = None,
         extra_plugins: Iterable[tuple[str, Any]] = ()) -> Loaded:
    """Load the plugins the settings allow, narrowed by ``plugins``; ``extra_plugins``
    are (name, object) pairs registered in process, as tests do."""
    problems: list[str] = []
    allow = list(plugins) if plugins is not None else settings.plugins
    if plugins is not None and settings.plugins is not None:
        outside = [p for p in plugins if p not in settings.plugins]
        if outside:
            problems.append(
                f"--plugins asks for {', '.join(outside)}, which PLATFORM_PLUGINS "
                f"({', '.join(settings.plugins)}) does not allow; add them there or drop them"
            )
    loaded = discovery.load(allow, settings.disabled_plugins, problems)
    for name, obj in extra_plugins:
        info = PluginInfo(name, IN_PROCESS, "-", getattr(obj, "__name__", repr(obj)))
        loaded.append(discovery.LoadedPlugin(info, obj))
    pm = new_manager()
    infos = register_plugins(pm, loaded, problems)
    everything = collect(pm, infos, problems)
    partial = allow is not None or bool(settings.disabled_plugins)
    known = {name: found[0] for name, found in discovery.installed().items()}
    known.update((p.info.name, p.info) for p in loaded)
    return Loaded(everything, problems, partial, known)
