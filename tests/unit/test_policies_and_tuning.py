"""Retry policies become Celery task options; worker tuning follows its precedence."""

from __future__ import annotations

import smtplib
import socket
from pathlib import Path

import pytest

from platform_core.app.tuning import DEFAULTS, effective
from platform_core.checks.policies import BUILTIN
from platform_core.errors import ConfigurationError
from platform_core.host import Host
from tests.support import PlatformEnv, output_of

NETWORK_ERRORS = (ConnectionError, TimeoutError, socket.gaierror,
                  smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)


def bundled(env: PlatformEnv) -> Host:
    return env.set(PLATFORM_PLUGINS="admin,quant").host()


# --- built-in policies on real tasks --------------------------------------------------


def test_builtin_policies() -> None:
    assert set(BUILTIN) == {"default", "network"}
    assert BUILTIN["default"].retry_on == ()
    assert "builtins.ConnectionError" in BUILTIN["network"].retry_on


def test_network_policy_on_heavy_task(platform_env: PlatformEnv) -> None:
    task = bundled(platform_env).app.tasks["quant.heavy_task"]
    assert ConnectionError in task.autoretry_for
    assert TimeoutError in task.autoretry_for
    assert tuple(task.autoretry_for) == NETWORK_ERRORS
    assert task.retry_backoff == 2
    assert task.retry_backoff_max == 300
    assert task.retry_jitter is True
    assert task.max_retries == 5
    assert task.default_retry_delay == 2
    assert task.retry_policy_name == "network"
    assert task.time_limit == 3300
    assert task.soft_time_limit == 3000
    assert task.plugin == "quant"


def test_default_policy_on_print_hello(platform_env: PlatformEnv) -> None:
    task = bundled(platform_env).app.tasks["admin.print_hello"]
    assert task.retry_policy_name == "default"
    assert task.max_retries == 3
    assert task.retry_backoff == 2
    assert task.retry_backoff_max == 600
    assert task.retry_jitter is True
    assert not getattr(task, "autoretry_for", ())  # retries only when the task asks
    assert (task.time_limit, task.soft_time_limit) == (1500, 1440)  # the platform defaults
    assert task.plugin == "admin"


def test_idempotent_tasks_ack_late(platform_env: PlatformEnv) -> None:
    tasks = bundled(platform_env).app.tasks
    assert tasks["quant.sync_stock_list"].acks_late is True
    assert tasks["quant.sync_stock_list"].reject_on_worker_lost is True
    assert tasks["quant.process_data"].acks_late is True
    assert tasks["admin.send_email"].acks_late is False
    assert tasks["admin.send_email"].reject_on_worker_lost is False


def test_json_only(platform_env: PlatformEnv) -> None:
    conf = bundled(platform_env).app.conf
    assert conf.task_serializer == conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert list(conf.result_accept_content) == ["json"]


# --- operator overrides ---------------------------------------------------------------


def test_override_from_environment(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_RETRY_POLICIES__NETWORK__MAX_RETRIES="9")
    host = bundled(platform_env)
    assert host.retry_policies["network"].max_retries == 9
    assert host.retry_policies["network"].backoff_cap == 300  # untouched fields stay
    assert host.app.tasks["quant.heavy_task"].max_retries == 9
    assert host.app.tasks["admin.send_email"].max_retries == 9
    assert host.app.tasks["admin.print_hello"].max_retries == 3
    assert BUILTIN["network"].max_retries == 5  # the built-in itself is not mutated


def test_override_from_platform_toml(platform_env: PlatformEnv, tmp_path: Path) -> None:
    (tmp_path / "platform.toml").write_text(
        "[retry_policies.network]\nmax_retries = 7\nbackoff_cap = 120\njitter = false\n"
        "[retry_policies.default]\nmax_retries = 0\n"
    )
    host = bundled(platform_env)
    heavy = host.app.tasks["quant.heavy_task"]
    assert (heavy.max_retries, heavy.retry_backoff_max, heavy.retry_jitter) == (7, 120, False)
    assert host.app.tasks["admin.print_hello"].max_retries == 0


def test_environment_override_wins_over_toml(platform_env: PlatformEnv, tmp_path: Path) -> None:
    (tmp_path / "platform.toml").write_text(
        "[retry_policies.network]\nmax_retries = 7\nbackoff_cap = 120\n"
    )
    platform_env.set(PLATFORM_RETRY_POLICIES__NETWORK__MAX_RETRIES="9")
    heavy = bundled(platform_env).app.tasks["quant.heavy_task"]
    assert heavy.max_retries == 9
    assert heavy.retry_backoff_max == 120


def test_override_of_a_plugin_policy(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("p", """
        from platform_sdk import Queue, RetryPolicy, hookimpl, task

        @task(name="p.job", queue="p", retry="patient")
        def job():
            pass

        @hookimpl
        def register_tasks(register):
            register(job)

        @hookimpl
        def register_queues(register):
            register(Queue(name="p"))

        @hookimpl
        def register_retry_policies(register):
            register(RetryPolicy(name="patient", max_retries=20, retry_on=[KeyError]))
    """)
    platform_env.set(PLATFORM_PLUGINS="p", PLATFORM_RETRY_POLICIES__PATIENT__MAX_RETRIES="4")
    job = platform_env.host().app.tasks["p.job"]
    assert job.max_retries == 4
    assert tuple(job.autoretry_for) == (KeyError,)


def test_override_of_an_unknown_policy(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_RETRY_POLICIES__NETWROK__MAX_RETRIES="9")
    with pytest.raises(ConfigurationError) as caught:
        platform_env.host()  # every installed plugin: nobody declares it
    assert caught.value.problems == [
        "configuration overrides retry policy `netwrok`, which does not exist (known: default, "
        "network); fix the name under [retry_policies]"
    ]


def test_override_of_a_policy_of_a_plugin_not_loaded_here_is_skipped(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("patient", """
        from platform_sdk import RetryPolicy, hookimpl

        @hookimpl
        def register_retry_policies(register):
            register(RetryPolicy(name="patient.slow", max_retries=1))
    """)
    (platform_env.home.parent / "platform.toml").write_text(
        '[retry_policies."patient.slow"]\nmax_retries = 9\n')
    assert platform_env.host().retry_policies["patient.slow"].max_retries == 9
    quant_only = platform_env.host(plugins=["quant"])
    assert "patient.slow" not in quant_only.retry_policies


def test_override_making_a_policy_invalid(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_RETRY_POLICIES__NETWORK__BACKOFF_CAP="1")
    with pytest.raises(ConfigurationError) as caught:
        bundled(platform_env)
    (problem,) = caught.value.problems
    assert problem.startswith("configuration for retry policy `network` is invalid: ")
    assert "backoff_cap (1) is below backoff_base (2)" in problem


# --- inline policies and task options -------------------------------------------------

INLINE = """
    from platform_sdk import Queue, RetryPolicy, hookimpl, task

    @task(name="i.job", queue="i", retry=RetryPolicy(name="inline", max_retries=7,
          backoff_base=3, backoff_cap=30, jitter=False, retry_on=[KeyError, "socket.timeout"]))
    def job():
        pass

    @task(name="i.own", queue="i", retry="network", max_retries=1, rate_limit="10/m",
          idempotent=True, ignore_result=True)
    def own():
        pass

    @hookimpl
    def register_tasks(register):
        register(job)
        register(own)

    @hookimpl
    def register_queues(register):
        register(Queue(name="i"))
"""


def test_inline_retry_policy(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("i", INLINE)
    host = platform_env.set(PLATFORM_PLUGINS="i").host()
    job = host.app.tasks["i.job"]
    assert job.retry_policy_name == "inline"
    assert job.max_retries == 7
    assert job.retry_backoff == 3
    assert job.default_retry_delay == 3
    assert job.retry_backoff_max == 30
    assert job.retry_jitter is False
    assert tuple(job.autoretry_for) == (KeyError, socket.timeout)
    assert "inline" not in host.retry_policies  # inline policies stay private to the task


def test_task_celery_options_win_over_the_policy(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("i", INLINE)
    host = platform_env.set(PLATFORM_PLUGINS="i").host()
    own = host.app.tasks["i.own"]
    assert own.retry_policy_name == "network"
    assert own.max_retries == 1
    assert own.retry_backoff_max == 300
    assert own.rate_limit == "10/m"
    assert own.acks_late is True
    assert own.ignore_result is True
    # the queue is the task's route (Celery deprecates the task attribute)
    assert host.app.conf.task_routes["i.own"] == {"queue": "i"}
    assert not hasattr(own, "queue")


# --- tuning precedence ----------------------------------------------------------------


def hinting(limit: int, pool: str | None = None) -> str:
    pool_arg = f", pool={pool!r}" if pool else ""
    return f"""
        from platform_sdk import WorkerHints, hookimpl

        @hookimpl
        def register_worker_hints(register):
            register(WorkerHints(max_tasks_per_child={limit}{pool_arg}))
    """


@pytest.fixture
def two_hints(platform_env: PlatformEnv) -> PlatformEnv:
    platform_env.plugins.add("fifty", hinting(50, "threads"))
    platform_env.plugins.add("ten", hinting(10, "threads"))
    return platform_env.set(PLATFORM_PLUGINS="fifty,ten")


def test_strictest_hint_wins(two_hints: PlatformEnv) -> None:
    host = two_hints.host()
    tuned = effective({}, host.settings.worker, host.registry.worker_hints)
    assert tuned["max_tasks_per_child"].value == 10
    assert tuned["max_tasks_per_child"].source == "hint of plugin ten"
    assert tuned["pool"].value == "threads"
    assert tuned["pool"].source == "hint of plugin fifty, ten"
    assert tuned["prefetch_multiplier"].value == 4
    assert tuned["prefetch_multiplier"].source == "platform default"


def test_configuration_beats_hints(two_hints: PlatformEnv) -> None:
    two_hints.set(PLATFORM_WORKER__MAX_TASKS_PER_CHILD="77")
    host = two_hints.host()
    tuned = effective({}, host.settings.worker, host.registry.worker_hints)
    assert (tuned["max_tasks_per_child"].value, tuned["max_tasks_per_child"].source) == (
        77, "configuration")


def test_command_line_beats_configuration(two_hints: PlatformEnv) -> None:
    two_hints.set(PLATFORM_WORKER__MAX_TASKS_PER_CHILD="77")
    host = two_hints.host()
    cli = {"max_tasks_per_child": 5, "pool": "solo", "concurrency": None}
    tuned = effective(cli, host.settings.worker, host.registry.worker_hints)
    assert (tuned["max_tasks_per_child"].value, tuned["max_tasks_per_child"].source) == (
        5, "command line")
    assert (tuned["pool"].value, tuned["pool"].source) == ("solo", "command line")
    assert tuned["concurrency"].source == "platform default"  # None on the CLI is "not given"


def test_platform_defaults_without_hints(platform_env: PlatformEnv) -> None:
    host = platform_env.set(PLATFORM_PLUGINS="admin").host()
    tuned = effective({}, host.settings.worker, host.registry.worker_hints)
    assert {name: t.value for name, t in tuned.items()} == DEFAULTS
    assert {t.source for t in tuned.values()} == {"platform default"}


def test_quant_hints(platform_env: PlatformEnv) -> None:
    host = bundled(platform_env)
    tuned = effective({}, host.settings.worker, host.registry.worker_hints)
    assert (tuned["max_memory_per_child"].value, tuned["max_memory_per_child"].source) == (
        512_000, "hint of plugin quant")
    assert (tuned["max_tasks_per_child"].value, tuned["max_tasks_per_child"].source) == (
        None, "platform default")


def test_worker_prints_the_tuning_table(platform_env: PlatformEnv) -> None:
    """`platform worker` prints where each value comes from before it needs the broker."""
    platform_env.plugins.add("fifty", hinting(50))
    platform_env.plugins.add("ten", hinting(10))
    platform_env.set(PLATFORM_BROKER_URL="redis://:s3cret@127.0.0.1:1/0", COLUMNS="200",
                     PLATFORM_WORKER__PREFETCH_MULTIPLIER="2")
    result = platform_env.run("worker", "--plugins", "fifty,ten,admin", "--concurrency", "3")
    assert result.returncode == 2, output_of(result)  # stopped by the unreachable broker
    assert "cannot reach the broker at redis://:***@127.0.0.1:1/0" in result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 3:
            rows[cells[0]] = cells[1:]
    assert rows["max-tasks-per-child"] == ["10", "hint of plugin ten"]
    assert rows["concurrency"] == ["3", "command line"]
    assert rows["prefetch-multiplier"] == ["2", "configuration"]
    assert rows["pool"] == ["prefork", "platform default"]
    assert rows["max-memory-per-child"] == ["1048576", "platform default"]
    assert rows["broker"] == ["redis://:***@127.0.0.1:1/0", "configuration"]
    assert rows["queues"][0] == "default, admin, admin.email"
    assert rows["plugin admin"] == ["platform-admin 0.1.0", "3 tasks, 3 queues"]
    assert "s3cret" not in result.stdout + result.stderr
