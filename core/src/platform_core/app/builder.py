"""Build the one Celery app from settings and what the checks resolved.

Everything a process changes in its app is an input here (:class:`AppOptions`), so no
command touches the app after it is built.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.schedules import crontab
from kombu.entity import Exchange, Queue

from platform_core import telemetry
from platform_core.app import hardening
from platform_core.app.arguments import EnqueueChecks, validating
from platform_core.app.canvas import CanvasRouting
from platform_core.app.platform_celery import PlatformCelery, PlatformTask
from platform_core.app.task_options import task_options
from platform_core.app.tuning import WorkerFlags, effective
from platform_core.broker.config import broker_config
from platform_core.checks import Checked, rate_limits
from platform_core.checks.routing import DEFAULT_QUEUE, Router
from platform_core.checks.signatures import CallSpec
from platform_core.loading.registry import Registry
from platform_core.settings import Settings
from platform_core.stores import rate_buckets
from platform_core.urls import kind
from platform_core.worker.link_watchdog import LinkWatchdog
from platform_core.worker.load_report import ReportLoad
from platform_core.worker.release import ReleaseDelayed
from platform_sdk import Crontab, Every


@dataclass(frozen=True)
class AppOptions:
    """What the process will do with its app, where that changes the app's configuration."""

    #: ``platform worker``'s tuning flags (concurrency, prefetch multiplier, ...)
    worker_flags: WorkerFlags = field(default_factory=WorkerFlags)
    #: a partial beat (``--plugins ... --partial``) locks only against beats of its plugins
    partial_beat: bool = False
    #: ``platform doctor``: every broker and result-store call gives up after this long
    io_timeout: float | None = None
    #: ``platform_sdk.testing``: tasks run in the calling process; errors surface at .get()
    eager: bool = False


def _queue(q: Any, queue_type: str = "classic") -> Queue:
    # kombu turns these into x-max-priority / x-message-ttl / x-max-length on AMQP.
    if queue_type == "quorum":
        # Durable and replicated; a topic exchange, so countdowns and ETAs go through
        # Celery's native delayed delivery (it refuses direct exchanges), which quorum
        # queues need: without global QoS a worker could not hold them unacknowledged.
        return Queue(q.name, Exchange(q.name, type="topic"), routing_key=q.key, durable=True,
                     queue_arguments={"x-queue-type": "quorum"},
                     message_ttl=q.message_ttl, max_length=q.max_length)
    return Queue(
        q.name,
        Exchange(q.name, type="direct"),
        routing_key=q.key,
        max_priority=q.max_priority,
        message_ttl=q.message_ttl,
        max_length=q.max_length,
    )


def _schedule(schedule: Every | Crontab) -> Any:
    if isinstance(schedule, Every):
        return timedelta(seconds=schedule.seconds)
    return crontab(
        minute=schedule.minute,
        hour=schedule.hour,
        day_of_week=schedule.day_of_week,
        day_of_month=schedule.day_of_month,
        month_of_year=schedule.month_of_year,
    )


def task_routes(registry: Registry, router: Router) -> dict[str | re.Pattern[str], Any]:
    """Exact routes for every known task, then the globs (most specific first) as
    compiled patterns, which Celery matches for names sent by string."""
    routes: dict[str | re.Pattern[str], Any] = {}
    for c in registry.tasks:
        spec = c.item.spec
        routes[spec.name] = {"queue": spec.queue or router.queue_of(spec.name)}
    for route in router.routes:
        pattern = route.item.pattern
        key = re.compile(fnmatch.translate(pattern)) if route.item.is_glob else pattern
        routes.setdefault(key, {"queue": route.item.queue})
    return routes


def host_queue(registry: Registry) -> str | None:
    """Where built-ins with nothing to go by are sent: ``default`` when declared, else
    the first queue declared (plugins are loaded in name order)."""
    names = [c.item.name for c in registry.queues]
    if DEFAULT_QUEUE in names:
        return DEFAULT_QUEUE
    return names[0] if names else None


def canvas_routing(app: Celery, registry: Registry, routes: Mapping[Any, Any],
                   calls: Mapping[str, CallSpec]) -> CanvasRouting:
    queues = {name: route["queue"] for name, route in routes.items() if isinstance(name, str)}
    return CanvasRouting(queues, host_queue(registry), calls,
                         lambda: app.current_worker_task)


def beat_schedule(registry: Registry) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {}
    for c in registry.beat_entries:
        entry = c.item
        options: dict[str, Any] = {}
        if entry.queue:
            options["queue"] = entry.queue
        if entry.expires:
            options["expires"] = entry.expires
        schedule[entry.name] = {
            "task": entry.task,
            "schedule": _schedule(entry.schedule),
            "args": tuple(entry.args),
            "kwargs": dict(entry.kwargs),
            "options": options,
        }
    return schedule


def build_app(settings: Settings, checked: Checked, options: AppOptions | None = None
              ) -> PlatformCelery:
    options = options or AppOptions()
    registry, calls = checked.registry, checked.calls
    home = settings.resolved_home
    app = PlatformCelery("platform", set_as_current=False, task_cls=PlatformTask)
    app.enqueue_checks = EnqueueChecks(calls, settings.max_payload_bytes)
    routes = task_routes(registry, checked.router)
    app.canvas_routing = canvas_routing(app, registry, routes, calls)
    app.tuning = effective(options.worker_flags, settings.worker, registry.worker_hints)
    connection = broker_config(settings)
    app.conf.update(
        connection,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        event_serializer="json",
        task_queues=[_queue(c.item, settings.queue_type) for c in registry.queues],
        task_default_queue=DEFAULT_QUEUE,
        task_default_exchange=DEFAULT_QUEUE,
        task_default_routing_key=DEFAULT_QUEUE,
        task_routes=routes,
        result_expires=settings.result_expires,
        beat_schedule=beat_schedule(registry),
        beat_schedule_filename=str(home / "beat-schedule.json"),
        timezone=settings.timezone,
        enable_utc=True,
        worker_send_task_events=False,
        worker_pool="platform_core.worker.pool:PreforkPool",
    )
    app.conf.update(hardening.app_config(settings, connection))
    app.conf.update(hardening.dead_letter_config(settings))
    app.conf.platform_queue_type = settings.queue_type
    app.steps["worker"].add(ReleaseDelayed)
    app.steps["worker"].add(ReportLoad)
    app.steps["consumer"].add(LinkWatchdog)
    app.conf.worker_disable_prefetch = (kind(connection["broker_url"]) == "redis"
                                        and hardening.reserve_one(app.tuning))
    if options.partial_beat:
        app.conf.platform_beat_scope = ",".join(sorted(registry.plugins))
    if options.io_timeout is not None:
        app.conf.update(hardening.io_bounds(app.conf, options.io_timeout))
    if options.eager:
        app.conf.update(task_always_eager=True, task_eager_propagates=False,
                        task_store_eager_result=True)
    traced = telemetry.wanted(settings)
    if settings.tracing != "off":
        app.conf.beat_scheduler = telemetry.BEAT_SCHEDULER
    global_rates = rate_limits.rates(registry)
    app.conf.platform_rate_limit_url = rate_buckets.locate(settings) if global_rates else None
    for c in registry.tasks:
        spec = c.item.spec
        task = task_options(spec, checked.task_policies[spec.name])
        task.update(hardening.task_limits(spec, settings))
        if spec.name in global_rates:
            task["global_rate_limit"] = global_rates[spec.name]
        call = calls.get(spec.name)
        fn = validating(spec.fn, call, bind=spec.bind) if call else spec.fn
        if traced:
            task["Request"] = telemetry.REQUEST_CLASS
        app.task(fn, shared=False, base=PlatformTask, plugin=c.plugin.name, **task)
    app.finalize(auto=True)
    return app
