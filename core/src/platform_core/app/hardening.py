"""Hardened defaults every platform app gets; docs/reliability.md gives the reason for each."""

from __future__ import annotations

from typing import Any

from platform_core.app.broker import kind
from platform_core.loading.registry import Registry
from platform_core.settings import Settings
from platform_sdk import TaskSpec

# A task's hard time limit must end this long before its message can be redelivered:
# time to kill the process and acknowledge the message, plus clock skew between hosts.
VISIBILITY_MARGIN = 60

HEALTH_CHECK_INTERVAL = 25  # seconds between PINGs on idle Redis connections
SOCKET_TIMEOUT = 30.0  # a Redis command that gets no answer for this long fails
SOCKET_CONNECT_TIMEOUT = 10.0
AMQP_HEARTBEAT = 60  # seconds; RabbitMQ's own default
RESULT_RETRIES = 10  # attempts to store a result through a Redis outage

SCHEDULER = "platform_core.beat.scheduler:LockedScheduler"


def app_config(settings: Settings, connection: dict[str, Any]) -> dict[str, Any]:
    """Celery settings that harden the app; ``connection`` is ``brokers.broker_config``."""
    vt = settings.visibility_timeout
    broker, backend = kind(connection["broker_url"]), kind(connection["result_backend"])
    transport = dict(connection["broker_transport_options"], visibility_timeout=vt)
    if broker == "redis":
        restore_interval = max(1, min(10, int(vt // 10)))
        transport.update(
            health_check_interval=HEALTH_CHECK_INTERVAL,
            socket_keepalive=True,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_CONNECT_TIMEOUT,
            # kombu looks for messages past the visibility timeout every interval ×
            # throttle seconds (100 s by default): a message a dead worker held would
            # wait up to that long on top of the timeout. Look every tenth of it, ≤ 10 s.
            unacked_restore_interval=restore_interval,
            unacked_restore_throttle=1,
            # Only one worker sweeps at a time, under a lock that kombu lets expire
            # after 300 s. A sweeper that dies (or a Redis that restarts) while
            # holding it stops every sweep for that long; a sweep takes milliseconds,
            # and restoring one message twice is prevented by kombu's transaction.
            unacked_mutex_expire=max(5, 3 * restore_interval),
        )
    elif broker == "amqp":
        transport["confirm_publish"] = True
    conf: dict[str, Any] = {
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": vt},
        "visibility_timeout": vt,
        "broker_connection_retry": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_heartbeat": AMQP_HEARTBEAT,
        "task_time_limit": settings.task_time_limit,
        "task_acks_late": False,
        "task_acks_on_failure_or_timeout": True,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # A redelivered acks-late message whose task already stored SUCCESS is
        # acknowledged without running again (see .finishing); needs a stored result.
        "worker_deduplicate_successful_tasks": True,
        "worker_soft_shutdown_timeout": settings.worker.soft_shutdown_timeout,
        "worker_enable_soft_shutdown_on_idle": settings.worker.soft_shutdown_timeout > 0,
        "worker_disable_prefetch": broker == "redis",
        "beat_scheduler": SCHEDULER,
        "platform_beat_lock_timeout": settings.beat_lock_timeout,
        "platform_beat_lock_file": str(settings.resolved_home / "beat.lock"),
    }
    if backend == "redis":
        conf.update(
            result_backend_always_retry=True,
            result_backend_max_retries=RESULT_RETRIES,
            redis_backend_health_check_interval=HEALTH_CHECK_INTERVAL,
            redis_socket_keepalive=True,
            redis_socket_timeout=SOCKET_TIMEOUT,
            redis_socket_connect_timeout=SOCKET_CONNECT_TIMEOUT,
        )
    return conf


def task_limits(spec: TaskSpec, settings: Settings) -> dict[str, float | None]:
    """A task's effective limits: its own, else the platform defaults.

    A task that sets only ``time_limit`` gets no soft limit: the default soft limit
    would fire at a time that task never asked for.
    """
    hard = spec.time_limit if spec.time_limit is not None else settings.task_time_limit
    if spec.soft_time_limit is not None:
        soft: float | None = spec.soft_time_limit
    elif spec.time_limit is not None:
        soft = None
    else:
        soft = settings.task_soft_time_limit
    return {"time_limit": hard, "soft_time_limit": soft}


def visibility_margin(visibility_timeout: float) -> float:
    """Time a hard limit must leave before the visibility timeout: to kill the task,
    acknowledge it and absorb clock skew; a tenth of short timeouts (as in tests)."""
    return min(VISIBILITY_MARGIN, visibility_timeout / 10)


def check(settings: Settings, registry: Registry, problems: list[str]) -> None:
    """Every task ends before the broker could hand its message to a second worker."""
    vt = settings.visibility_timeout
    margin = visibility_margin(vt)
    ceiling = vt - margin
    if settings.task_soft_time_limit >= settings.task_time_limit:
        problems.append(
            f"setting `task_soft_time_limit` ({settings.task_soft_time_limit:g}s) is not below "
            f"`task_time_limit` ({settings.task_time_limit:g}s); the soft limit must come first: "
            "fix PLATFORM_TASK_SOFT_TIME_LIMIT or PLATFORM_TASK_TIME_LIMIT"
        )
    if settings.task_time_limit > ceiling:
        problems.append(
            f"setting `task_time_limit` ({settings.task_time_limit:g}s) lets a task run past "
            f"the visibility timeout ({vt}s, less a {margin:g}s margin), after which "
            "the broker hands its message to a second worker; lower PLATFORM_TASK_TIME_LIMIT to "
            f"at most {ceiling:g} or raise PLATFORM_VISIBILITY_TIMEOUT to at least "
            f"{settings.task_time_limit + margin:g}"
        )
    for c in registry.tasks:
        spec = c.item.spec
        if spec.time_limit is None:
            if (spec.soft_time_limit is not None
                    and spec.soft_time_limit >= settings.task_time_limit):
                problems.append(
                    f"{c.plugin.label} task `{spec.name}` sets soft_time_limit "
                    f"{spec.soft_time_limit:g}s but no time_limit, so the default time_limit "
                    f"({settings.task_time_limit:g}s, PLATFORM_TASK_TIME_LIMIT) would kill it "
                    "first; give the task a time_limit above its soft_time_limit"
                )
            continue
        if spec.time_limit > ceiling:
            problems.append(
                f"{c.plugin.label} task `{spec.name}` has time_limit {spec.time_limit:g}s, "
                f"which runs past the visibility timeout ({vt}s, less a {margin:g}s "
                "margin), after which the broker hands its message to a second worker; raise "
                f"PLATFORM_VISIBILITY_TIMEOUT to at least {spec.time_limit + margin:g} "
                f"or lower the task's time_limit to at most {ceiling:g}"
            )


OPERATOR_SOURCES = {"command line", "configuration"}


def keep_prefetch(app: Any, source: str) -> None:
    """An operator who sets a prefetch multiplier asks for prefetching; a plugin hint
    cannot turn off reserving only what the pool can start."""
    if source in OPERATOR_SOURCES:
        app.conf.worker_disable_prefetch = False
