"""The host: settings → load plugins → check everything → build the app → bind the SDK.

Each stage runs once per process, at start-up, and hands the next one plain data;
nothing later reaches back to change an earlier stage.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from platform_core import checks, telemetry
from platform_core.app.builder import AppOptions, build_app
from platform_core.app.platform_celery import PlatformCelery
from platform_core.app.tuning import Tuned
from platform_core.checks.routing import Router
from platform_core.errors import ConfigurationError
from platform_core.loading.plugins import load
from platform_core.loading.problems import BrokenPlugin
from platform_core.loading.registry import PluginInfo, Registry
from platform_core.settings import SealedSettings, Settings, load_settings
from platform_core.telemetry import log_privacy
from platform_sdk import RetryPolicy, hosting

logger = logging.getLogger("platform")


@dataclass
class Host:
    settings: Settings
    registry: Registry
    router: Router
    retry_policies: dict[str, RetryPolicy]
    plugin_settings: dict[type[BaseModel], BaseModel]
    app: PlatformCelery
    broken: dict[str, BrokenPlugin] = field(default_factory=dict)
    #: what start-up went on despite (logged as warnings when the host was built)
    warnings: list[str] = field(default_factory=list)

    @property
    def plugins(self) -> dict[str, PluginInfo]:
        return self.registry.plugins

    @property
    def tuning(self) -> dict[str, Tuned]:
        """The effective worker tuning, with where each value comes from."""
        return self.app.tuning

    def queue_of(self, task_name: str) -> str:
        route = self.app.conf.task_routes.get(task_name)
        return route["queue"] if route else self.router.queue_of(task_name)


def build(
    settings: Settings | None = None,
    *,
    plugins: Sequence[str] | None = None,
    extra_plugins: Iterable[tuple[str, Any]] = (),
    bind: bool = True,
    strict: bool | None = None,
    options: AppOptions | None = None,
) -> Host:
    """Load, check, build: each stage once. ``plugins`` narrows the configured allowlist.

    A plugin that is broken by itself (see :mod:`platform_core.loading.problems`) is left
    out and the others start, unless ``strict`` (default: the ``strict`` setting) or the
    plugin was named in ``plugins``: then, as for every other problem, start-up stops
    with :class:`ConfigurationError` listing all problems. ``options`` says what the
    process will do with the app (:class:`~platform_core.app.builder.AppOptions`).
    """
    settings = settings or load_settings()
    strict = settings.strict if strict is None else strict
    loaded = load(settings, plugins, extra_plugins)
    checked = checks.run(settings, loaded, eager=options is not None and options.eager)
    if checked.fatal or (checked.broken and (strict or plugins is not None)):
        raise ConfigurationError(checked.reported)
    app = build_app(settings, checked, options)
    host = Host(settings, checked.registry, checked.router, checked.retry_policies,
                checked.plugin_settings, app, checked.broken, checked.warnings)
    for broken in checked.broken.values():
        for error in broken.errors:
            logger.warning("broken plugin left out: %s", error)
    for warning in checked.warnings:
        logger.warning("%s", warning)
    log_privacy.install()
    if telemetry.wanted(settings):
        telemetry.install(app, settings)
    if bind:
        hosting.bind(app, home=settings.resolved_home, plugin_settings=checked.plugin_settings)
    return host


_current: Host | None = None
_built_with: dict[str, Any] = {}
_lock = threading.RLock()
_building = False


def current(**kwargs: Any) -> Host:
    """The process's host, built on first use from the environment.

    Called with arguments that differ from those it was built with (a command asking
    for its own plugins or :class:`AppOptions`), it is built again with them, so no
    caller silently gets an app configured for another.
    """
    global _current, _building, _built_with
    kwargs = {name: value for name, value in kwargs.items() if value is not None}
    with _lock:
        if _current is not None and kwargs and kwargs != _built_with:
            _current = None
        if _current is None:
            if _building:
                raise RuntimeError(
                    "plugin code used the platform runtime (platform_sdk.settings, data_dir "
                    "or a task proxy) while the host was still starting; do that inside "
                    "tasks, not at import time or in a register_* hook"
                )
            _building = True
            try:
                _current = build(**kwargs)
                _built_with = kwargs
            finally:
                _building = False
        return _current


def start(
    *,
    plugins: Sequence[str] | None = None,
    home: str | None = None,
    plugin_settings: dict[str, dict[str, Any]] | None = None,
    eager: bool = False,
    sealed: bool = False,
    broker_url: str | None = None,
) -> None:
    """Entry point ``platform.host``: the SDK starts the host through it.

    Without arguments (a task proxy's first use) this is the process's host, built
    from the environment (bound again if a test host was bound meanwhile). With
    arguments (``platform_sdk.testing``) a host of exactly those plugins, that home
    and plugin settings is bound instead, leaving the process's host alone; ``eager``
    runs tasks in the calling process, as Celery's ``task_always_eager`` does,
    ``sealed`` reads no environment variable and no platform.toml, and ``broker_url``
    replaces the configured broker.
    """
    if plugins is None and home is None and plugin_settings is None and not eager and \
            not sealed and broker_url is None:
        host = current()
        hosting.bind(host.app, home=host.settings.resolved_home,
                     plugin_settings=host.plugin_settings)
        return
    overrides: dict[str, Any] = {"plugin": plugin_settings or {}}
    if home is not None:
        overrides["home"] = Path(home)
    if broker_url is not None:
        overrides["broker_url"] = broker_url
    if sealed:  # nothing from the environment or platform.toml: only what the test gave
        settings: Settings = SealedSettings(**overrides)
    else:
        settings = load_settings().model_copy(update=overrides)
    build(settings, plugins=plugins, options=AppOptions(eager=eager))


def reset() -> None:
    global _current, _built_with
    with _lock:
        _current = None
        _built_with = {}
    hosting.unbind()
