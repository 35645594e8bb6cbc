"""Shared retry policies, and the checks of what each task asks of them and of Celery."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from platform_core.loading.problems import blame
from platform_core.loading.registry import PluginInfo, Registry
from platform_core.settings import Settings
from platform_sdk import RetryPolicy, TaskSpec

BUILTIN: dict[str, RetryPolicy] = {
    "default": RetryPolicy(name="default", max_retries=3, backoff_base=2, backoff_cap=600),
    "network": RetryPolicy(
        name="network",
        max_retries=5,
        backoff_base=2,
        backoff_cap=300,
        retry_on=(
            "builtins.ConnectionError",
            "builtins.TimeoutError",
            "socket.gaierror",
            "smtplib.SMTPServerDisconnected",
            "smtplib.SMTPConnectError",
        ),
    ),
}


def resolve(
    settings: Settings, registry: Registry, problems: list[str], partial: bool = False
) -> dict[str, RetryPolicy]:
    """Built-in and plugin policies, with the operator's overrides applied.

    In a process that loads only some plugins (``partial``), an override of a policy
    none of them declares belongs to a plugin loaded elsewhere and is skipped.
    """
    policies = dict(BUILTIN)
    for c in registry.retry_policies:
        policies.setdefault(c.item.name, c.item)
    for name, override in settings.retry_policies.items():
        if name not in policies:
            if partial:
                continue
            problems.append(
                f"configuration overrides retry policy `{name}`, which does not exist "
                f"(known: {', '.join(sorted(policies))}); fix the name under [retry_policies]"
            )
            continue
        merged = policies[name].model_dump() | override.model_dump(exclude_none=True)
        try:
            policies[name] = RetryPolicy.model_validate(merged)
        except ValueError as exc:
            problems.append(f"configuration for retry policy `{name}` is invalid: {exc}")
    return policies


def exception_class(dotted: str) -> type[BaseException]:
    module, _, attr = dotted.rpartition(".")
    value = getattr(importlib.import_module(module), attr)
    if not (isinstance(value, type) and issubclass(value, BaseException)):
        raise TypeError(f"{dotted} is not an exception class")
    return value


# Options the host sets itself, or that would break its guarantees (JSON only).
RESERVED_OPTIONS = {"name", "bind", "base", "plugin", "shared", "lazy", "serializer",
                    "retry_policy_name", "typing",
                    # reliability defaults: idempotent=True, time_limit=, soft_time_limit=
                    "acks_late", "reject_on_worker_lost", "acks_on_failure_or_timeout",
                    "time_limit", "soft_time_limit"}
# The Celery task options a plugin may set through ``@task(**options)``. Every other
# attribute of Celery's Task (its request and strategy classes, result backend,
# serializer, methods such as ``apply_async`` or ``on_failure``) would let one
# plugin change how the platform sends, receives, stores or logs tasks.
ALLOWED_OPTIONS = {
    "max_retries", "default_retry_delay", "autoretry_for", "dont_autoretry_for",
    "retry_kwargs", "retry_backoff", "retry_backoff_max", "retry_jitter", "priority",
    "expires", "throws", "track_started", "store_errors_even_if_ignored",
    "resultrepr_maxsize", "send_events",
}


def _option_problems(spec: TaskSpec, owner: PluginInfo, problems: list[str]) -> None:
    from celery import Task as CeleryTask

    for key in spec.options:
        if key in RESERVED_OPTIONS or (key not in ALLOWED_OPTIONS and hasattr(CeleryTask, key)):
            problems.append(blame(
                owner,
                f"task `{spec.name}` sets option `{key}`, which the platform controls; "
                "remove it (use the task decorator's own parameters)",
            ))
        elif key not in ALLOWED_OPTIONS:
            problems.append(blame(
                owner,
                f"task `{spec.name}` sets unknown option `{key}`; use a Celery task "
                "option (max_retries, default_retry_delay, priority, ...) or a parameter of "
                "platform_sdk.task",
            ))


def policy_of(spec: TaskSpec, policies: dict[str, RetryPolicy]) -> RetryPolicy:
    """The task's inline policy, else the named one (``default`` when none is named)."""
    if isinstance(spec.retry, RetryPolicy):
        return spec.retry
    return policies[spec.retry or "default"]


@dataclass(frozen=True)
class TaskPolicy:
    """The retry policy a task runs with, and the exception classes it retries on."""

    policy: RetryPolicy
    retry_on: tuple[type[BaseException], ...]


def check_tasks(registry: Registry, policies: dict[str, RetryPolicy], problems: list[str]
                ) -> dict[str, TaskPolicy]:
    """Each task's Celery options are allowed, and its policy's exceptions importable;
    returns the policy of every task that has one.

    A task naming a policy that does not exist is reported by the declaration checks.
    """
    resolved: dict[str, TaskPolicy] = {}
    for c in registry.tasks:
        spec = c.item.spec
        if isinstance(spec.retry, str) and spec.retry not in policies:
            _option_problems(spec, c.plugin, problems)
            continue
        policy = policy_of(spec, policies)
        errors: list[type[BaseException]] = []
        for dotted in policy.retry_on:
            try:
                errors.append(exception_class(dotted))
            except (ImportError, AttributeError, TypeError) as exc:
                problems.append(blame(
                    c.plugin,
                    f"task `{spec.name}`: retry policy `{policy.name}` retries on "
                    f"`{dotted}`, which cannot be imported ({exc}); use a dotted exception name",
                ))
        _option_problems(spec, c.plugin, problems)
        resolved[spec.name] = TaskPolicy(policy, tuple(errors))
    return resolved
