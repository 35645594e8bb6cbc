"""Start-up problems, and which of them one plugin alone is to blame for.

Every check appends messages to one ``list[str]``. A problem that one plugin
causes by itself (its import fails, a hook raises, one of its declarations breaks
a rule) is appended as a :class:`PluginProblem`, which is a ``str`` that also
names the plugin: the host can then leave that plugin out and start the others.
Any other problem (operator configuration, a conflict between two plugins) is a
plain ``str`` and always stops start-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from platform_core.loading.registry import PluginInfo


class PluginProblem(str):
    """A problem message that one plugin alone causes."""

    plugin: str

    def __new__(cls, plugin: PluginInfo, message: str) -> PluginProblem:
        problem = super().__new__(cls, message)
        problem.plugin = plugin.name
        return problem


def blame(plugin: PluginInfo, message: str) -> PluginProblem:
    """``message`` prefixed with the plugin's label, attributed to that plugin."""
    return PluginProblem(plugin, f"{plugin.label} {message}")


def culprits(problems: Iterable[str]) -> dict[str, list[str]]:
    """The attributable problems, by plugin name, in the order they were found."""
    found: dict[str, list[str]] = {}
    for problem in problems:
        if isinstance(problem, PluginProblem):
            found.setdefault(problem.plugin, []).append(str(problem))
    return found


def shared(problems: Iterable[str]) -> list[str]:
    """The problems no single plugin is to blame for."""
    return [p for p in problems if not isinstance(p, PluginProblem)]


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin left out at start-up, and why."""

    info: PluginInfo
    errors: tuple[str, ...]
