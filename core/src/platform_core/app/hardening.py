"""Hardened defaults every platform app gets; docs/reliability.md gives the reason for each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from platform_core import stores
from platform_core.app.hold import horizon
from platform_core.app.tuning import Tuned
from platform_core.settings import Settings
from platform_core.urls import kind, scheme
from platform_sdk import TaskSpec

HEALTH_CHECK_INTERVAL = 25  # seconds between PINGs on idle Redis connections
SOCKET_TIMEOUT = 30.0  # a Redis command that gets no answer for this long fails
SOCKET_CONNECT_TIMEOUT = 10.0
AMQP_HEARTBEAT = 20  # seconds; within RabbitMQ's advice (5-20 s) for noticing dead peers
RESULT_RETRIES = 10  # attempts to store a result through a Redis outage

SCHEDULER = "platform_core.beat.scheduler:LockedScheduler"


def app_config(settings: Settings, connection: dict[str, Any]) -> dict[str, Any]:
    """Celery settings that harden the app; ``connection`` is ``broker.config.broker_config``."""
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
        if settings.redis_wait_replicas:
            transport.update(platform_wait_replicas=settings.redis_wait_replicas,
                             platform_wait_timeout=settings.redis_wait_timeout)
    elif broker == "amqp":
        transport["confirm_publish"] = True
    backend_options: dict[str, Any] = {"visibility_timeout": vt}
    # kombu's and Celery's Sentinel clients take the master's name from these options.
    master = {"master_name": settings.redis_master_name} if settings.redis_master_name else {}
    if scheme(connection["broker_url"]) == "sentinel":
        transport.update(master)
    if scheme(connection["result_backend"]) == "sentinel":
        backend_options.update(master)
    conf: dict[str, Any] = {
        # Celery declares each worker's control queue exclusive to its connection. After
        # a half-open link the broker keeps the old connection until it misses its
        # heartbeats, and the reconnecting worker stops on RESOURCE_LOCKED; the queue
        # still goes away with its last consumer (auto-delete) and expires.
        "control_queue_exclusive": False,
        "broker_transport_options": transport,
        "result_backend_transport_options": backend_options,
        "platform_redis_master_name": settings.redis_master_name,
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
        # acknowledged without running again (see worker.finishing); needs a stored result.
        "worker_deduplicate_successful_tasks": True,
        "worker_soft_shutdown_timeout": settings.worker.soft_shutdown_timeout,
        "worker_enable_soft_shutdown_on_idle": settings.worker.soft_shutdown_timeout > 0,
        "beat_scheduler": SCHEDULER,
        "platform_beat_lock_timeout": settings.beat_lock_timeout,
        "platform_stall_timeout": settings.stall_timeout,
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


def dead_letter_config(settings: Settings) -> dict[str, Any]:
    """Where dead letters, delivery counts and held long delays are kept, and their bounds."""
    location = stores.locate(settings)
    return {
        "worker_consumer": "platform_core.worker.consumer:PlatformConsumer",
        # "DATABASE" in the key makes Celery mask the value (it may hold the broker's
        # password) in `celery inspect conf` and Flower's configuration view.
        "platform_dead_letter_database": location.url,
        "platform_dead_letter_source": location.source,
        "platform_dead_letter_note": location.note,
        "platform_max_redeliveries": settings.max_redeliveries,
        "platform_max_payload_bytes": settings.max_payload_bytes,
        "platform_delay_horizon": horizon(settings.visibility_timeout),
    }


def reserve_one(tuning: Mapping[str, Tuned]) -> bool:
    """Whether a Redis worker reserves only what its pool can start: yes, unless an
    operator sets a prefetch multiplier, which asks for prefetching (a plugin hint cannot
    turn that guard off)."""
    return not tuning["prefetch_multiplier"].set_by_operator


def io_bounds(conf: Any, timeout: float) -> dict[str, Any]:
    """Settings that make every broker and result-store call give up after ``timeout``."""
    broker = kind(conf.broker_url)
    options = dict(conf.broker_transport_options or {})
    if broker == "redis":
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout)
    elif broker == "amqp":
        options.update(read_timeout=timeout, write_timeout=timeout)
    options["max_retries"] = 1
    return {
        "broker_transport_options": options,
        "broker_connection_timeout": timeout,
        "redis_socket_timeout": timeout,
        "redis_socket_connect_timeout": timeout,
        "result_backend_always_retry": False,
    }
