"""Hardened defaults: one visibility timeout everywhere, time limits checked against it."""

from __future__ import annotations

from typing import Any

import pytest

from platform_core.app.builder import AppOptions
from platform_core.checks.limits import VISIBILITY_MARGIN
from platform_core.errors import ConfigurationError
from platform_core.settings import Settings
from tests.support import PlatformEnv, one_task_plugin, output_of

LABEL = "plugin `slow` (throwaway-slow 0.0.1)"


def slow_plugin(**limits: float) -> str:
    options = "".join(f", {key}={value!r}" for key, value in limits.items())
    return f"""
        from platform_sdk import Queue, hookimpl, task

        @task(name="slow.job", queue="slow"{options})
        def job():
            return 1

        @task(name="slow.plain", queue="slow")
        def plain():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)
            register(plain)

        @hookimpl
        def register_queues(register):
            register(Queue(name="slow"))
    """


def slow_host(env: PlatformEnv, **limits: float) -> Any:
    env.plugins.add("slow", slow_plugin(**limits))
    return env.set(PLATFORM_PLUGINS="slow").host()


def problems_of(env: PlatformEnv, **limits: float) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        slow_host(env, **limits)
    return caught.value.problems


# --- defaults -------------------------------------------------------------------------


def test_default_settings() -> None:
    settings = Settings()
    assert settings.visibility_timeout == 3600
    assert (settings.task_time_limit, settings.task_soft_time_limit) == (1500, 1440)
    assert settings.beat_lock_timeout == 30
    assert settings.worker.soft_shutdown_timeout == 30
    assert settings.task_time_limit + VISIBILITY_MARGIN <= settings.visibility_timeout


@pytest.mark.parametrize("broker", [None, "redis://127.0.0.1:6379/0",
                                    "amqp://guest:guest@127.0.0.1:5672//"])
def test_one_visibility_timeout_everywhere(platform_env: PlatformEnv, broker: str | None) -> None:
    if broker:
        platform_env.set(PLATFORM_BROKER_URL=broker)
    conf = platform_env.set(PLATFORM_VISIBILITY_TIMEOUT="7200").host().app.conf
    assert conf.broker_transport_options["visibility_timeout"] == 7200
    assert conf.result_backend_transport_options["visibility_timeout"] == 7200
    assert conf.visibility_timeout == 7200


def test_hardened_celery_settings_on_every_broker(platform_env: PlatformEnv) -> None:
    conf = platform_env.host().app.conf
    assert conf.accept_content == conf.result_accept_content == ["json"]
    assert conf.task_acks_late is False
    assert conf.task_acks_on_failure_or_timeout is True
    assert conf.task_time_limit == 1500
    assert conf.task_soft_time_limit is None  # per task, see test_task_limits
    assert conf.worker_cancel_long_running_tasks_on_connection_loss is True
    assert conf.worker_deduplicate_successful_tasks is True
    assert conf.worker_soft_shutdown_timeout == 30
    assert conf.worker_enable_soft_shutdown_on_idle is True
    assert conf.broker_connection_retry is True
    assert conf.broker_connection_retry_on_startup is True
    assert conf.broker_connection_max_retries is None
    assert conf.beat_scheduler == "platform_core.beat.scheduler:LockedScheduler"
    assert conf.worker_disable_prefetch is False  # only the Redis transport supports it
    assert conf.result_expires == 86400
    # the embedded broker's own folders survive the merge
    assert conf.broker_transport_options["polling_interval"] == 0.1


def test_redis_health_checks_for_broker_and_results(platform_env: PlatformEnv) -> None:
    conf = platform_env.set(PLATFORM_BROKER_URL="rediss://:pw@cache:6380/0").host().app.conf
    options = conf.broker_transport_options
    assert options["health_check_interval"] == conf.redis_backend_health_check_interval == 25
    assert options["socket_keepalive"] is conf.redis_socket_keepalive is True
    assert options["socket_timeout"] == conf.redis_socket_timeout == 30
    assert options["socket_connect_timeout"] == conf.redis_socket_connect_timeout == 10
    assert "retry_on_timeout" not in options  # a retried write could enqueue a task twice
    assert conf.result_backend_always_retry is True
    assert conf.result_backend_max_retries == 10
    assert conf.worker_disable_prefetch is True


def test_rabbitmq_confirms_publishes_and_sends_heartbeats(platform_env: PlatformEnv) -> None:
    conf = platform_env.set(PLATFORM_BROKER_URL="amqp://guest@rabbit//").host().app.conf
    assert conf.broker_transport_options["confirm_publish"] is True
    assert conf.broker_heartbeat == 20
    assert conf.worker_disable_prefetch is False
    assert conf.result_backend.startswith("platform-sqlite:///")


def test_soft_shutdown_can_be_turned_off(platform_env: PlatformEnv) -> None:
    conf = platform_env.set(PLATFORM_WORKER__SOFT_SHUTDOWN_TIMEOUT="0").host().app.conf
    assert conf.worker_soft_shutdown_timeout == 0
    assert conf.worker_enable_soft_shutdown_on_idle is False


# --- time limits ----------------------------------------------------------------------


@pytest.mark.parametrize(("declared", "effective"), [
    ({}, (1500, 1440)),
    ({"time_limit": 60}, (60, None)),  # no default soft limit the task never asked for
    ({"time_limit": 600, "soft_time_limit": 500}, (600, 500)),
    ({"soft_time_limit": 100}, (1500, 100)),
])
def test_task_limits(platform_env: PlatformEnv, declared: dict[str, float],
                     effective: tuple[float, float | None]) -> None:
    tasks = slow_host(platform_env, **declared).app.tasks
    assert (tasks["slow.job"].time_limit, tasks["slow.job"].soft_time_limit) == effective
    assert (tasks["slow.plain"].time_limit, tasks["slow.plain"].soft_time_limit) == (1500, 1440)


def test_configured_default_limits(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_TASK_TIME_LIMIT="90", PLATFORM_TASK_SOFT_TIME_LIMIT="80")
    host = slow_host(platform_env)
    plain = host.app.tasks["slow.plain"]
    assert (plain.time_limit, plain.soft_time_limit) == (90, 80)
    assert host.app.tasks["celery.backend_cleanup"].time_limit == 90


def test_task_limit_past_the_visibility_timeout_is_refused(platform_env: PlatformEnv) -> None:
    (problem,) = problems_of(platform_env, time_limit=3600)
    assert problem == (
        f"{LABEL} task `slow.job` has time_limit 3600s, which runs past the visibility timeout "
        "(3600s, less a 60s margin), after which the broker hands its message to a second "
        "worker; raise PLATFORM_VISIBILITY_TIMEOUT to at least 3660 or lower the task's "
        "time_limit to at most 3540"
    )


def test_task_limit_at_the_margin_is_accepted(platform_env: PlatformEnv) -> None:
    assert slow_host(platform_env, time_limit=3540).app.tasks["slow.job"].time_limit == 3540


def test_raising_the_visibility_timeout_admits_the_long_task(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_VISIBILITY_TIMEOUT="3660")
    assert slow_host(platform_env, time_limit=3600).app.tasks["slow.job"].time_limit == 3600


def test_default_limit_past_the_visibility_timeout_is_refused(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_VISIBILITY_TIMEOUT="600")
    (problem,) = problems_of(platform_env)
    assert problem == (
        "setting `task_time_limit` (1500s) lets a task run past the visibility timeout (600s, "
        "less a 60s margin), after which the broker hands its message to a second worker; "
        "lower PLATFORM_TASK_TIME_LIMIT to at most 540 or raise PLATFORM_VISIBILITY_TIMEOUT "
        "to at least 1560"
    )


def test_only_the_task_over_the_limit_is_reported(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_VISIBILITY_TIMEOUT="600", PLATFORM_TASK_TIME_LIMIT="500",
                     PLATFORM_TASK_SOFT_TIME_LIMIT="400")
    problems = problems_of(platform_env, time_limit=1000)
    assert len(problems) == 1 and "task `slow.job` has time_limit 1000s" in problems[0]


def test_default_soft_limit_must_come_first(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_TASK_SOFT_TIME_LIMIT="1500")
    (problem,) = problems_of(platform_env)
    assert problem == (
        "setting `task_soft_time_limit` (1500s) is not below `task_time_limit` (1500s); the "
        "soft limit must come first: fix PLATFORM_TASK_SOFT_TIME_LIMIT or "
        "PLATFORM_TASK_TIME_LIMIT"
    )


def test_soft_limit_alone_must_end_before_the_default_hard_limit(
    platform_env: PlatformEnv,
) -> None:
    (problem,) = problems_of(platform_env, soft_time_limit=2000)
    assert problem == (
        f"{LABEL} task `slow.job` sets soft_time_limit 2000s but no time_limit, so the default "
        "time_limit (1500s, PLATFORM_TASK_TIME_LIMIT) would kill it first; give the task a "
        "time_limit above its soft_time_limit"
    )


def test_bundled_plugins_fit_the_default_visibility_timeout(platform_env: PlatformEnv) -> None:
    tasks = platform_env.set(PLATFORM_PLUGINS="admin,quant").host().app.tasks
    assert tasks["quant.heavy_task"].time_limit == 3300


# --- a plugin cannot undo them ----------------------------------------------------------


@pytest.mark.parametrize("option", ["reject_on_worker_lost=False",
                                    "acks_on_failure_or_timeout=False",
                                    "serializer='pickle'"])
def test_plugin_cannot_override_reliability_options(platform_env: PlatformEnv,
                                                    option: str) -> None:
    platform_env.plugins.add("sneaky", one_task_plugin("sneaky", f"idempotent=True, {option}"))
    with pytest.raises(ConfigurationError) as caught:
        platform_env.set(PLATFORM_PLUGINS="sneaky", PLATFORM_STRICT="1").host()
    (problem,) = caught.value.problems
    key = option.split("=", maxsplit=1)[0]
    assert problem.startswith(
        f"plugin `sneaky` (throwaway-sneaky 0.0.1) task `sneaky.job` sets option `{key}`, "
        "which the platform controls")


def test_plugin_hint_cannot_turn_prefetch_back_on(platform_env: PlatformEnv) -> None:
    hinting = """
        from platform_sdk import Queue, WorkerHints, hookimpl

        @hookimpl
        def register_queues(register):
            register(Queue(name="hinting"))

        @hookimpl
        def register_worker_hints(register):
            register(WorkerHints(prefetch_multiplier=8))
    """
    platform_env.plugins.add("hinting", hinting)
    env = platform_env.set(PLATFORM_BROKER_URL="redis://127.0.0.1:6379/0",
                           PLATFORM_PLUGINS="hinting")
    hinted = env.host(bind=False)
    assert hinted.tuning["prefetch_multiplier"].source == "hint of plugin hinting"
    assert hinted.app.conf.worker_disable_prefetch is True
    flagged = env.host(bind=False, options=AppOptions(worker_flags={"prefetch_multiplier": 2}))
    assert flagged.tuning["prefetch_multiplier"].value == 2
    assert flagged.app.conf.worker_disable_prefetch is False
    configured = env.set(PLATFORM_WORKER__PREFETCH_MULTIPLIER="3").host(bind=False)
    assert configured.tuning["prefetch_multiplier"].source == "configuration"
    assert configured.app.conf.worker_disable_prefetch is False


def worker_table(env: PlatformEnv, *args: str) -> dict[str, list[str]]:
    """`platform worker`'s table; the unreachable broker stops it right after printing."""
    env.set(PLATFORM_BROKER_URL="redis://127.0.0.1:1/0", COLUMNS="200")
    result = env.run("worker", "--plugins", "admin", *args)
    assert result.returncode == 2, output_of(result)
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 3:
            rows[cells[0]] = cells[1:]
    return rows


def test_worker_table_shows_that_a_redis_worker_does_not_prefetch(
    platform_env: PlatformEnv,
) -> None:
    rows = worker_table(platform_env)
    assert rows["reserves"] == ["one task per pool process (no prefetch)",
                                "platform default (Redis)"]


def test_an_operator_prefetch_multiplier_turns_prefetching_on(platform_env: PlatformEnv) -> None:
    rows = worker_table(platform_env, "--prefetch-multiplier", "8")
    assert rows["prefetch-multiplier"] == ["8", "command line"]
    assert "reserves" not in rows


@pytest.mark.parametrize(("timeout", "interval", "mutex"), [("3600", 10, 30), ("6", 1, 5)])
def test_the_restore_sweep_follows_the_visibility_timeout(
    platform_env: PlatformEnv, timeout: str, interval: int, mutex: int
) -> None:
    """kombu sweeps every 100 s under a lock left standing for 300 s when its holder
    dies; both follow the timeout, so a broker restart mid-sweep delays no message
    for minutes."""
    conf = platform_env.set(PLATFORM_BROKER_URL="redis://127.0.0.1:6379/0",
                            PLATFORM_VISIBILITY_TIMEOUT=timeout,
                            PLATFORM_TASK_TIME_LIMIT="2", PLATFORM_TASK_SOFT_TIME_LIMIT="1",
                            PLATFORM_PLUGINS="admin",
                            ).host().app.conf
    options = conf.broker_transport_options
    assert options["unacked_restore_interval"] == interval
    assert options["unacked_restore_throttle"] == 1
    assert options["unacked_mutex_expire"] == mutex
