"""Stage 2, check: every start-up rule, run on the collected plugins before anything is built.

:func:`run` takes what loading collected and the problems loading found, applies
every rule, and returns a :class:`Checked`: the problems, each plugin left out for
problems of its own, and, for the plugins that remain, everything the app builder
needs (retry policies, each task's policy, routes, call specs, plugin settings)
already resolved, so
building the app cannot fail on a plugin.

- :mod:`.declarations`: a name declared twice; a route, queue, retry policy or beat
  entry that points at nothing an enabled plugin declares;
- :mod:`.namespaces`: names outside a plugin's namespace, one plugin reaching into
  another's;
- :mod:`.policies`: retry-policy overrides, task options, the exceptions a policy
  retries on;
- :mod:`.limits`: time limits against the visibility timeout;
- :mod:`.rate_limits`: global rate limits, and the Redis that holds them;
- :mod:`.signatures`: task signatures, beat entries' arguments;
- :mod:`.plugin_settings`: plugin settings values;
- :mod:`.store_url`: the dead-letter store's URL;
- :mod:`.observability`: tracing and metrics export.

A plugin left out can break another that relied on it (a retry policy it declares,
say), so the plugin rules run again on what remains until no plugin is newly found
broken; the first pass checks everything collected, so each plugin's problems are
all reported. The rules that concern no plugin run once.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from platform_core.checks import (
    declarations,
    limits,
    namespaces,
    observability,
    plugin_settings,
    policies,
    queue_type,
    rate_limits,
    signatures,
    store_url,
)
from platform_core.checks.routing import DEFAULT_QUEUE, Router
from platform_core.checks.signatures import CallSpec
from platform_core.loading.plugins import Loaded
from platform_core.loading.problems import BrokenPlugin, PluginProblem, culprits, shared
from platform_core.loading.registry import Registry
from platform_core.settings import Settings
from platform_sdk import RetryPolicy


@dataclass(frozen=True)
class Checked:
    """The outcome of the checks: what the builder takes, and what was found.

    Everything is about the plugins that remain (``registry``); a plugin left out is
    in ``broken``, so every task of ``registry`` has its call spec and task policy.
    """

    registry: Registry
    router: Router
    retry_policies: dict[str, RetryPolicy]
    calls: dict[str, CallSpec]
    task_policies: dict[str, policies.TaskPolicy]
    plugin_settings: dict[type[BaseModel], BaseModel]
    #: every problem, in the order found (a left-out plugin's problems once)
    reported: list[str]
    #: problems no single plugin is to blame for: start-up stops on any of them
    fatal: list[str]
    #: plugins left out, with their problems
    broken: dict[str, BrokenPlugin]
    #: what start-up goes on despite, but the operator should hear of
    warnings: list[str]


def _without_overrides_of(settings: Settings, everything: Registry, left_out: set[str]
                          ) -> Settings:
    """Settings without the retry-policy overrides that may be meant for a left-out plugin."""
    if not left_out:
        return settings
    theirs = {c.item.name for c in everything.retry_policies if c.plugin.name in left_out}
    kept = {name: override for name, override in settings.retry_policies.items()
            if name not in theirs and not any(namespaces.owns(p, name) for p in left_out)}
    return settings.model_copy(update={"retry_policies": kept})


def run(settings: Settings, loaded: Loaded, *, eager: bool = False) -> Checked:
    """Check everything loading collected, with the problems it found on the way.

    ``eager``: tasks run where they are sent, so no worker needs a global rate limit's
    Redis."""
    everything, found = loaded.everything, loaded.problems
    reported = list(found)
    broken = culprits(found)
    fatal = shared(found)
    excluded: set[str] = set()
    while True:
        problems: list[str] = []
        registry = everything.without(excluded)
        retry_policies = policies.resolve(_without_overrides_of(settings, everything, excluded),
                                          registry, problems, partial=loaded.partial)
        router = Router(registry.routes, DEFAULT_QUEUE)
        declarations.check(registry, policies.BUILTIN, DEFAULT_QUEUE, router.match, problems)
        namespaces.check(registry, DEFAULT_QUEUE, router.match, problems)
        namespaces.check_plugin_names(registry, problems)
        calls = signatures.check(registry, problems)
        settings_of = plugin_settings.check(settings, registry, problems)
        task_policies = policies.check_tasks(registry, retry_policies, problems)
        limits.check(settings, registry, problems)
        rate_limits.check(settings, registry, problems, needs_redis=not eager)
        queue_type.check(settings, registry, problems)
        for name, errors in culprits(problems).items():
            if name not in excluded:
                broken.setdefault(name, []).extend(errors)
        reported.extend(p for p in problems
                        if isinstance(p, PluginProblem) and p.plugin not in excluded)
        if set(broken) == excluded:
            break
        excluded = set(broken)
    plain = shared(problems)
    store_url.check(settings, plain)
    observability.check(settings, plain)
    reported.extend(plain)
    fatal.extend(plain)
    left_out = {name: BrokenPlugin(loaded.known[name], tuple(errors))
                for name, errors in broken.items()}
    return Checked(registry=registry, router=router, retry_policies=retry_policies,
                   calls=calls, task_policies=task_policies, plugin_settings=settings_of,
                   reported=reported, fatal=fatal, broken=left_out,
                   warnings=plugin_settings.unknown_fields(settings, registry))
