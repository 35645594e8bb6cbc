"""The host's side of the SDK: how a platform host makes itself known to plugin code.

Plugins and application code never import this module: they use
:func:`platform_sdk.settings`, :func:`platform_sdk.data_dir` and task proxies, which
read what a host binds here. The contract a host (``platform-core``) fulfils:

- It declares a ``platform.host`` entry point naming ``start(**options)``. With no
  options, ``start`` builds the process's host from the environment; the options
  (``plugins``, ``home``, ``plugin_settings``, ``eager``) are what
  :mod:`platform_sdk.testing` passes.
- Once its Celery app is built it calls :func:`bind`; :func:`unbind` forgets it.

In a process where no host has started yet (application code that only enqueues),
:func:`current` starts the installed host through the entry point on first use, so
``task.delay()`` routes exactly as the worker would, without the SDK importing the host.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from .exceptions import HostNotAvailable

__all__ = ["HOST_GROUP", "Binding", "bind", "bound", "current", "current_app", "start", "unbind"]

HOST_GROUP = "platform.host"


@dataclass(frozen=True)
class Binding:
    """What a host bound: its Celery app, its home and each plugin's validated settings."""

    app: Any
    home: Path
    plugin_settings: Mapping[type[BaseModel], BaseModel]


_binding: Binding | None = None  # replaced as a whole, so readers need no lock
_starting = threading.RLock()  # one thread starts the host, the others wait


def bind(app: Any, *, home: Path, plugin_settings: Mapping[type[BaseModel], BaseModel]) -> None:
    """Make ``app`` the one plugin code and task proxies use in this process."""
    global _binding
    _binding = Binding(app, home.resolve(), MappingProxyType(dict(plugin_settings)))


def unbind() -> None:
    """Forget the bound host (a test host going away, a host rebuilt)."""
    global _binding
    _binding = None


def bound() -> Binding | None:
    """What is bound now, without starting a host."""
    return _binding


def start(**options: Any) -> Binding:
    """Start the installed host: ``start(**options)`` of the ``platform.host`` entry point."""
    with _starting:
        hosts = list(entry_points(group=HOST_GROUP))
        if not hosts:
            raise HostNotAvailable(
                "no platform host is installed: install platform-core "
                "(pip install platform-core) to enqueue or run tasks"
            )
        hosts[0].load()(**options)
        binding = _binding
        if binding is None:
            raise HostNotAvailable(
                f"the platform host {hosts[0].value!r} started but bound no app; "
                "reinstall platform-core"
            )
        return binding


def current() -> Binding:
    """What is bound, starting the host from the environment on first use."""
    binding = _binding
    if binding is not None:
        return binding
    with _starting:
        binding = _binding
        return binding if binding is not None else start()


def current_app() -> Any:
    """The bound Celery app, starting the host on first use."""
    return current().app
