"""Start the host: settings → plugins → validated registry → Celery app."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from celery import Celery
from pydantic import BaseModel, ValidationError

from platform_sdk import RetryPolicy, runtime

from . import discovery, policies, telemetry
from .appbuilder import DEFAULT_QUEUE, build_app
from .errors import ConfigurationError
from .manager import collect, new_manager, register_plugins
from .registry import Registry, validate
from .routing import Router
from .settings import Settings, load_settings, plugin_env_prefix, plugin_values

IN_PROCESS = "registered in process"


@dataclass
class Host:
    settings: Settings
    registry: Registry
    router: Router
    retry_policies: dict[str, RetryPolicy]
    plugin_settings: dict[type[BaseModel], BaseModel]
    app: Celery

    @property
    def plugins(self) -> dict[str, discovery.PluginInfo]:
        return self.registry.plugins

    def queue_of(self, task_name: str) -> str:
        route = self.app.conf.task_routes.get(task_name)
        return route["queue"] if route else self.router.queue_of(task_name)


def _plugin_settings(
    settings: Settings, registry: Registry, problems: list[str]
) -> dict[type[BaseModel], BaseModel]:
    resolved: dict[type[BaseModel], BaseModel] = {}
    for c in registry.settings_models:
        values = plugin_values(settings, c.plugin.name)
        try:
            resolved[c.item] = c.item.model_validate(values)
        except ValidationError as exc:
            prefix = plugin_env_prefix(c.plugin.name)
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "(model)"
                problems.append(
                    f"{c.plugin.label} setting `{field}`: {err['msg']}; set it under "
                    f"[plugin.{c.plugin.name}] in platform.toml or as {prefix}{field.upper()}"
                )
    return resolved


def build(
    settings: Settings | None = None,
    *,
    plugins: Sequence[str] | None = None,
    extra_plugins: Iterable[tuple[str, Any]] = (),
    bind: bool = True,
) -> Host:
    """Load, validate and build. ``plugins`` narrows the configured allowlist."""
    settings = settings or load_settings()
    problems: list[str] = []
    allow = list(plugins) if plugins is not None else settings.plugins
    if plugins is not None and settings.plugins is not None:
        outside = [p for p in plugins if p not in settings.plugins]
        if outside:
            problems.append(
                f"--plugins asks for {', '.join(outside)}, which PLATFORM_PLUGINS "
                f"({', '.join(settings.plugins)}) does not allow; add them there or drop them"
            )
    extra = list(extra_plugins)
    loaded = discovery.load(allow, settings.disabled_plugins, problems)
    for name, obj in extra:
        info = discovery.PluginInfo(name, IN_PROCESS, "-", getattr(obj, "__name__", repr(obj)))
        loaded.append(discovery.LoadedPlugin(info, obj))
    pm = new_manager()
    infos = register_plugins(pm, loaded, problems)
    registry = collect(pm, infos, problems)
    partial = allow is not None or bool(settings.disabled_plugins)
    retry_policies = policies.resolve(settings, registry, problems, partial=partial)
    router = Router(registry.routes, DEFAULT_QUEUE)
    validate(registry, policies.BUILTIN, DEFAULT_QUEUE, router.match, problems)
    plugin_settings = _plugin_settings(settings, registry, problems)
    if problems:
        raise ConfigurationError(problems)
    app = build_app(settings, registry, router, retry_policies, problems)
    if problems:
        raise ConfigurationError(problems)
    host = Host(settings, registry, router, retry_policies, plugin_settings, app)
    if telemetry.wanted(settings):
        telemetry.install(app, settings)
    if bind:
        runtime.bind(app, home=settings.resolved_home, plugin_settings=plugin_settings)
    return host


_current: Host | None = None
_lock = threading.RLock()
_building = False


def current(**kwargs: Any) -> Host:
    """The process's host, built on first use from the environment."""
    global _current, _building
    with _lock:
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
            finally:
                _building = False
        return _current


def start(
    *,
    plugins: Sequence[str] | None = None,
    home: str | None = None,
    plugin_settings: dict[str, dict[str, Any]] | None = None,
    eager: bool = False,
) -> None:
    """Entry point ``platform.host``: the SDK starts the host through it.

    Without arguments (a task proxy's first use) this is the process's host, built
    from the environment (bound again if a test host was bound meanwhile). With
    arguments (``platform_sdk.testing``) a host of exactly those plugins, that home
    and plugin settings is bound instead, leaving the process's host alone; ``eager``
    runs tasks in the calling process, as Celery's ``task_always_eager`` does.
    """
    if plugins is None and home is None and plugin_settings is None and not eager:
        host = current()
        runtime.bind(host.app, home=host.settings.resolved_home,
                     plugin_settings=host.plugin_settings)
        return
    overrides: dict[str, Any] = {"plugin": plugin_settings or {}}
    if home is not None:
        overrides["home"] = Path(home)
    settings = load_settings().model_copy(update=overrides)
    built = build(settings, plugins=plugins)
    if eager:
        # Errors surface at .get(), as with a worker; retries re-run at once.
        built.app.conf.update(task_always_eager=True, task_eager_propagates=False,
                              task_store_eager_result=True)


def reset() -> None:
    global _current
    with _lock:
        _current = None
    runtime.unbind()
