"""What plugin code reads from the host that runs it: its settings and its data directory.

Both work in every process the platform runs plugin code in (a worker, beat, an
application that enqueues, a plugin's tests). Where no host has started yet, the first
use starts the installed one, as a task proxy's first ``delay()`` does. How a host binds
itself is :mod:`platform_sdk.hosting`, the host's side of the contract, which plugins
never use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from . import hosting
from .exceptions import HostNotAvailable

__all__ = ["HostNotAvailable", "data_dir", "settings"]

M = TypeVar("M", bound=BaseModel)

_made: set[Path] = set()


def settings(model: type[M]) -> M:
    """The validated instance of a plugin's settings model (see ``register_settings``)."""
    try:
        value = hosting.current().plugin_settings[model]
    except KeyError:
        raise LookupError(
            f"settings model {model.__module__}.{model.__qualname__} was not registered: "
            "call register(Model) in the plugin's register_settings hook, and make sure the "
            "plugin is enabled"
        ) from None
    assert isinstance(value, model)
    return value


def data_dir(plugin: str) -> Path:
    """A directory the plugin may keep files in: ``$PLATFORM_HOME/plugins/<plugin>``."""
    if not plugin or plugin in (".", "..") or "/" in plugin or "\\" in plugin:
        raise ValueError(f"data_dir() takes a plugin name, not {plugin!r}")
    path = hosting.current().home / "plugins" / plugin
    if path not in _made:
        path.mkdir(parents=True, exist_ok=True)
        _made.add(path)
    return path
