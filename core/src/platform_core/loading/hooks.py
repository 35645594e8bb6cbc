"""Register loaded plugins with pluggy and collect what each one contributes."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

from platform_core.loading.discovery import LoadedPlugin
from platform_core.loading.problems import blame
from platform_core.loading.registry import Contribution, PluginInfo, Registry
from platform_sdk import BeatEntry, Queue, RetryPolicy, Route, Task, WorkerHints, hookspecs

HOOKS: dict[str, type | None] = {
    "register_tasks": Task,
    "register_queues": Queue,
    "register_routes": Route,
    "register_beat_entries": BeatEntry,
    "register_retry_policies": RetryPolicy,
    "register_worker_hints": WorkerHints,
    "register_settings": None,
}

ACCEPTS = {
    "register_tasks": "a function decorated with platform_sdk.task",
    "register_settings": "a pydantic model class",
}


#: What each hook's one parameter is, for errors about a hook's signature.
PASSES = {
    "register_tasks": "a function to call once per task",
    "register_queues": "a function to call once per Queue",
    "register_routes": "a function to call once per Route",
    "register_beat_entries": "a function to call once per BeatEntry",
    "register_retry_policies": "a function to call once per RetryPolicy",
    "register_worker_hints": "a function to call with the plugin's WorkerHints",
    "register_settings": "a function to call with the plugin's settings model class",
}


def _where(fn: Callable[..., Any]) -> str:
    """``plugin.py:12``: where ``fn`` is defined, as far as Python knows."""
    try:
        target = inspect.unwrap(fn)
        path = inspect.getsourcefile(target) or "?"
        line = inspect.getsourcelines(target)[1]
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", "?")
    return f"{path}:{line}"


def _signature_problem(hook: str, impl: Callable[..., Any]) -> str | None:
    """Why ``impl`` cannot implement ``hook``, in the platform's words; None if it can.

    pluggy passes the hook's arguments by name: an implementation may take fewer
    parameters than the hook passes, never other ones (a method's ``self`` is bound
    already)."""
    passes = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    try:
        takes = list(inspect.signature(impl).parameters.values())
    except (TypeError, ValueError):
        return None
    unknown = [p.name for p in takes if p.name not in passes
               or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not unknown:
        return None
    shown = ", ".join(f"`{name}`" for name in unknown)
    expected = ", ".join(passes)
    return (f"hook `{hook}` at {_where(impl)} takes {shown}, which the host does not pass: "
            f"it passes only `{expected}` ({PASSES.get(hook, 'see platform_sdk.hookspecs')}); "
            f"write `def {hook}({expected}):`")


def new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _defined_by(plugin: object, value: object) -> bool:
    """Whether ``value`` is the plugin's own function or method (not an imported name)."""
    if inspect.ismethod(value):
        return True
    if not inspect.isfunction(value):
        return False
    if isinstance(plugin, ModuleType):
        return value.__module__ == plugin.__name__
    return True


def _check_hook_names(pm: pluggy.PluginManager, plugin: LoadedPlugin, problems: list[str]) -> bool:
    ok = True
    module = plugin.module
    for attr in dir(module):
        value = getattr(module, attr, None)
        if not callable(value):
            continue
        marked = pm.parse_hookimpl_opts(module, attr) is not None
        if marked and attr not in HOOKS:
            close = difflib.get_close_matches(attr, list(HOOKS), n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"hooks are: {', '.join(HOOKS)}"
            problems.append(blame(
                plugin.info, f"implements unknown hook `{attr}` in {plugin.info.target}; {hint}"
            ))
            ok = False
        elif not marked and attr in HOOKS and _defined_by(module, value):
            problems.append(blame(
                plugin.info,
                f"defines `{attr}` without @platform_sdk.hookimpl, "
                "so the host would never call it; decorate it with @hookimpl",
            ))
            ok = False
    return ok


def register_plugins(
    pm: pluggy.PluginManager, plugins: Iterable[LoadedPlugin], problems: list[str]
) -> dict[str, PluginInfo]:
    """Register each plugin whose hooks are well formed; return them by name."""
    registered: dict[str, PluginInfo] = {}
    for plugin in plugins:
        if not _check_hook_names(pm, plugin, problems):
            continue
        wrong = [problem for hook in HOOKS
                 if pm.parse_hookimpl_opts(plugin.module, hook) is not None
                 and (problem := _signature_problem(hook, getattr(plugin.module, hook)))]
        if wrong:
            problems.extend(blame(plugin.info, f"has a hook with a wrong signature: {problem}")
                            for problem in wrong)
            continue
        try:
            pm.register(plugin.module, name=plugin.info.name)
        except pluggy.PluginValidationError as exc:
            problems.append(blame(plugin.info, f"has a hook with a wrong signature: {exc}"))
            continue
        except ValueError as exc:
            problems.append(blame(plugin.info, f"could not be registered: {exc}"))
            continue
        registered[plugin.info.name] = plugin.info
    return registered


def _coerce(hook: str, expected: type | None, item: Any) -> Any:
    if expected is None:
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item
        raise TypeError(f"expected {ACCEPTS[hook]}, got {item!r}")
    if isinstance(item, expected):
        return item
    if isinstance(item, dict) and issubclass(expected, BaseModel):
        return expected.model_validate(item)
    raise TypeError(f"expected {ACCEPTS.get(hook, expected.__name__)}, got {item!r}")


def collect(
    pm: pluggy.PluginManager, plugins: dict[str, PluginInfo], problems: list[str]
) -> Registry:
    """Call every hook of every plugin with a ``register`` that records provenance."""
    registry = Registry(plugins=dict(plugins))
    for hook, expected in HOOKS.items():
        caller = getattr(pm.hook, hook)
        for impl in caller.get_hookimpls():
            info = plugins[impl.plugin_name]
            sink: list[Contribution[Any]] = registry.bucket(hook)

            def register(item: Any, _hook: str = hook, _info: PluginInfo = info,
                         _expected: type | None = expected,
                         _sink: list[Contribution[Any]] = sink) -> None:
                try:
                    value = _coerce(_hook, _expected, item)
                except (TypeError, ValidationError) as exc:
                    problems.append(blame(_info, f"registered an invalid item in {_hook}: {exc}"))
                    return
                _sink.append(Contribution(value, _info))

            call: Callable[..., Any] = impl.function
            try:
                call(**{name: register for name in impl.argnames})
            except ValidationError as exc:
                problems.append(blame(info, f"declared an invalid model in {hook}: {exc}"))
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported, not raised
                problems.append(blame(info, f"raised in {hook}: {type(exc).__name__}: {exc}"))
    return registry
