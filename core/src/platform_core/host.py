"""Start the host: settings → plugins → validated registry → Celery app."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery
from pydantic import BaseModel, ValidationError

from platform_core import telemetry
from platform_core.app.builder import DEFAULT_QUEUE, build_app
from platform_core.checks import arguments, namespaces, policies
from platform_core.checks.routing import Router
from platform_core.errors import ConfigurationError
from platform_core.loading import discovery
from platform_core.loading.hooks import collect, new_manager, register_plugins
from platform_core.loading.problems import PluginProblem, blame, culprits, shared
from platform_core.loading.registry import Registry, validate
from platform_core.redaction import error_message
from platform_core.settings import Settings, load_settings, plugin_env_prefix, plugin_values
from platform_core.telemetry import log_privacy
from platform_sdk import RetryPolicy, hosting
from platform_sdk.exceptions import InvalidTaskCall

IN_PROCESS = "registered in process"
logger = logging.getLogger("platform")


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin left out at start-up, and why."""

    info: discovery.PluginInfo
    errors: tuple[str, ...]


@dataclass
class Host:
    settings: Settings
    registry: Registry
    router: Router
    retry_policies: dict[str, RetryPolicy]
    plugin_settings: dict[type[BaseModel], BaseModel]
    app: Celery
    broken: dict[str, BrokenPlugin] = field(default_factory=dict)

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
        except (TypeError, AttributeError, LookupError, ArithmeticError) as exc:
            problems.append(blame(c.plugin, f"settings model {c.item.__name__} raised "
                                            f"{type(exc).__name__}: {exc}"))
        except ValidationError as exc:
            prefix = plugin_env_prefix(c.plugin.name)
            for err in exc.errors(include_url=False):
                field = ".".join(str(p) for p in err["loc"]) or "(model)"
                message = error_message(c.item, err)
                problems.append(
                    f"{c.plugin.label} setting `{field}`: {message}; set it under "
                    f"[plugin.{c.plugin.name}] in platform.toml or as {prefix}{field.upper()}"
                )
    return resolved


def _calls(registry: Registry, problems: list[str]) -> dict[str, arguments.CallSpec]:
    """The argument checks of every task; beat entries' arguments are checked with them."""
    calls: dict[str, arguments.CallSpec] = {}
    for c in registry.tasks:
        try:
            calls[c.item.name] = arguments.build(c.item.spec)
        except arguments.UnsupportedSignature as exc:
            problems.append(blame(c.plugin, f"task `{c.item.name}` {exc}"))
    for beat in registry.beat_entries:
        call = calls.get(beat.item.task)
        if call is None:
            continue
        try:
            call.for_message(beat.item.args, beat.item.kwargs)
        except InvalidTaskCall as exc:
            problems.append(blame(beat.plugin, f"beat entry `{beat.item.name}`: {exc}"))
    return calls


def _without_overrides_of(settings: Settings, everything: Registry, left_out: set[str]
                          ) -> Settings:
    """Settings without the retry-policy overrides that may be meant for a left-out plugin."""
    if not left_out:
        return settings
    theirs = {c.item.name for c in everything.retry_policies if c.plugin.name in left_out}
    kept = {name: override for name, override in settings.retry_policies.items()
            if name not in theirs and not any(namespaces.owns(p, name) for p in left_out)}
    return settings.model_copy(update={"retry_policies": kept})


def build(
    settings: Settings | None = None,
    *,
    plugins: Sequence[str] | None = None,
    extra_plugins: Iterable[tuple[str, Any]] = (),
    bind: bool = True,
    strict: bool | None = None,
) -> Host:
    """Load, validate and build. ``plugins`` narrows the configured allowlist.

    A plugin that is broken by itself (see :mod:`platform_core.loading.problems`) is left out
    and the others start, unless ``strict`` (default: the ``strict`` setting) or the
    plugin was named in ``plugins``: then, as for every other problem, start-up stops
    with :class:`ConfigurationError` listing all problems.
    """
    settings = settings or load_settings()
    strict = settings.strict if strict is None else strict
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
    everything = collect(pm, infos, problems)
    reported = list(problems)
    broken = culprits(problems)
    fatal = shared(problems)
    # The first pass checks everything collected, so each plugin's problems are all
    # reported. Leaving a plugin out can break another that relied on it (a retry
    # policy, say): check again until no plugin is newly found broken.
    excluded: set[str] = set()

    def record(found: list[str]) -> None:
        for name, errors in culprits(found).items():
            if name not in excluded:
                broken.setdefault(name, []).extend(errors)
        reported.extend(p for p in found
                        if isinstance(p, PluginProblem) and p.plugin not in excluded)

    partial = allow is not None or bool(settings.disabled_plugins)
    while True:
        problems = []
        registry = everything.without(excluded)
        retry_policies = policies.resolve(_without_overrides_of(settings, everything, excluded),
                                          registry, problems, partial=partial)
        router = Router(registry.routes, DEFAULT_QUEUE)
        validate(registry, policies.BUILTIN, DEFAULT_QUEUE, router.match, problems)
        namespaces.check(registry, DEFAULT_QUEUE, router.match, problems)
        namespaces.check_plugin_names(registry, problems)
        calls = _calls(registry, problems)
        plugin_settings = _plugin_settings(settings, registry, problems)
        record(problems)
        if set(broken) != excluded:
            excluded = set(broken)
            continue
        if problems or fatal:
            break
        app = build_app(settings, registry, router, retry_policies, problems, calls)
        record(problems)
        if set(broken) == excluded:
            break
        excluded = set(broken)
    fatal += problems
    reported += problems
    if fatal or (broken and (strict or plugins is not None)):
        raise ConfigurationError(reported)
    known = {name: infos[0] for name, infos in discovery.installed().items()}
    known.update((p.info.name, p.info) for p in loaded)
    host = Host(settings, registry, router, retry_policies, plugin_settings, app,
                {name: BrokenPlugin(known[name], tuple(errors)) for name, errors in broken.items()})
    for errors in broken.values():
        for error in errors:
            logger.warning("broken plugin left out: %s", error)
    log_privacy.install()
    if telemetry.wanted(settings):
        telemetry.install(app, settings)
    if bind:
        hosting.bind(app, home=settings.resolved_home, plugin_settings=plugin_settings)
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
        hosting.bind(host.app, home=host.settings.resolved_home,
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
    hosting.unbind()
