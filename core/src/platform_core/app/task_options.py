"""The Celery options of each plugin task: its retry policy, its own options, the
platform's reliability defaults. Everything here was checked by :mod:`platform_core.checks`."""

from __future__ import annotations

from typing import Any

from platform_core.checks.policies import ALLOWED_OPTIONS, TaskPolicy
from platform_sdk import TaskSpec
from platform_sdk.exceptions import InvalidTaskCall


def task_options(spec: TaskSpec, resolved: TaskPolicy) -> dict[str, Any]:
    """Celery task options for ``spec``; the task's own Celery options win."""
    policy, errors = resolved.policy, resolved.retry_on
    options: dict[str, Any] = {
        "name": spec.name,
        "bind": spec.bind,
        "max_retries": policy.max_retries,
        "default_retry_delay": policy.backoff_base,
        "retry_backoff": policy.backoff_base,
        "retry_backoff_max": policy.backoff_cap,
        "retry_jitter": policy.jitter,
        "retry_policy_name": policy.name,
        "acks_late": spec.idempotent,
        "reject_on_worker_lost": spec.idempotent,
        "ignore_result": spec.ignore_result,
    }
    if errors:
        options["autoretry_for"] = errors
    # A task's queue is its route (app.builder.task_routes); Celery deprecates the task
    # attribute and warns wherever it is set.
    for key in ("time_limit", "soft_time_limit", "rate_limit"):
        value = getattr(spec, key)
        if value is not None:
            options[key] = value
    options.update((k, v) for k, v in spec.options.items() if k in ALLOWED_OPTIONS)
    # Arguments are checked by the platform (platform_core.app.arguments), and a call
    # that does not fit the task never succeeds on a retry.
    options["typing"] = False
    own = options.get("dont_autoretry_for", ())
    options["dont_autoretry_for"] = (*((own,) if isinstance(own, type) else own), InvalidTaskCall)
    return options
