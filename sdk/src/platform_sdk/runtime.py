"""The link between plugin code and the host that runs it.

The host binds its Celery app, its data directory and each plugin's validated
settings here when it starts. Plugin code reads them through :func:`settings`
and :func:`data_dir`; task proxies find their Celery task through
:func:`current_app`. In a process where no host has started yet (application
code that only enqueues), the first use starts the installed host through the
``platform.host`` entry point, so ``task.delay()`` routes exactly as the worker
would, without this package importing the host.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from .exceptions import HostNotAvailable

__all__ = ["HostNotAvailable", "bind", "current_app", "data_dir", "settings", "unbind"]

HOST_GROUP = "platform.host"

M = TypeVar("M", bound=BaseModel)


@dataclass
class _State:
    app: Any = None
    home: Path | None = None
    settings: dict[type[BaseModel], BaseModel] = field(default_factory=dict)


_state = _State()
_made: set[Path] = set()
_lock = threading.Lock()  # guards _state; never held while the host starts
_bootstrap_lock = threading.RLock()  # one thread starts the host, the others wait


def bind(app: Any, *, home: Path, plugin_settings: Mapping[type[BaseModel], BaseModel]) -> None:
    """Called by the host once its app is built. Plugins never call this."""
    with _lock:
        _state.app = app
        _state.home = home.resolve()
        _state.settings = dict(plugin_settings)


def unbind() -> None:
    """Forget the bound host (used by tests that build several apps)."""
    with _lock:
        _state.app = None
        _state.home = None
        _state.settings = {}


def _bootstrap(**options: Any) -> None:
    """Start the installed host: ``start(**options)`` of the ``platform.host`` entry point.

    With no options the host reads its configuration from the environment; the
    options (``plugins``, ``home``, ``plugin_settings``, ``eager``) are what
    :mod:`platform_sdk.testing` passes.
    """
    hosts = list(entry_points(group=HOST_GROUP))
    if not hosts:
        raise HostNotAvailable(
            "no platform host is installed: install platform-core "
            "(pip install platform-core) to enqueue or run tasks"
        )
    hosts[0].load()(**options)
    if _state.app is None:
        raise HostNotAvailable(
            f"the platform host {hosts[0].value!r} started but bound no app; "
            "reinstall platform-core"
        )


def current_app() -> Any:
    """The host's Celery app, starting the host on first use if needed."""
    app = _state.app
    if app is not None:
        return app
    with _bootstrap_lock:
        if _state.app is None:
            _bootstrap()
        return _state.app


def settings(model: type[M]) -> M:
    """The validated instance of a plugin's settings model (see ``register_settings``)."""
    current_app()
    try:
        value = _state.settings[model]
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
    current_app()
    assert _state.home is not None
    path = _state.home / "plugins" / plugin
    if path not in _made:
        path.mkdir(parents=True, exist_ok=True)
        _made.add(path)
    return path
