"""Start-up edge cases: concurrent first use, re-entrant plugin code, option and schedule checks."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from platform_core import host as host_module
from platform_core.app.tuning import effective
from platform_core.errors import ConfigurationError
from platform_sdk import BeatEntry, Crontab, hosting
from tests.support import PlatformEnv, one_task_plugin, output_of


def problems_of(env: PlatformEnv, **kwargs: Any) -> list[str]:
    """The problems start-up reports; strict unless told (any broken plugin stops it)."""
    kwargs.setdefault("strict", True)
    with pytest.raises(ConfigurationError) as caught:
        env.host(**kwargs)
    return caught.value.problems


def test_first_use_from_two_threads_does_not_deadlock(platform_env: PlatformEnv) -> None:
    """One thread builds the host while another enqueues through the SDK runtime."""
    platform_env.host(bind=False)  # plugins importable, nothing bound yet
    hosting.unbind()
    apps: list[Any] = []
    threads = [threading.Thread(target=lambda: apps.append(host_module.current().app)),
               threading.Thread(target=lambda: apps.append(hosting.current_app()))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(t.is_alive() for t in threads), "start-up deadlocked"
    assert len(apps) == 2 and apps[0] is apps[1]


def test_the_process_host_is_built_again_for_other_options(platform_env: PlatformEnv) -> None:
    from platform_core.app.builder import AppOptions

    platform_env.set(PLATFORM_BROKER_URL="redis://127.0.0.1:6379/0").prepare()
    host_module.reset()
    plain = host_module.current()
    assert host_module.current() is plain  # a task proxy's use: the same host
    assert host_module.current(plugins=None, options=None) is plain  # a command's defaults
    bounded = host_module.current(options=AppOptions(io_timeout=1.5))
    assert bounded is not plain
    assert bounded.app.conf.broker_transport_options["socket_timeout"] == 1.5
    assert plain.app.conf.broker_transport_options["socket_timeout"] != 1.5
    assert host_module.current(options=AppOptions(io_timeout=1.5)) is bounded
    assert host_module.current() is bounded
    host_module.reset()


def test_plugin_using_the_runtime_while_the_host_starts_gets_an_error(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("eager", """
        from platform_sdk import hookimpl, data_dir

        @hookimpl
        def register_queues(register):
            data_dir("eager")
    """)
    platform_env.set(PLATFORM_PLUGINS="eager", PLATFORM_STRICT="1").prepare()
    hosting.unbind()
    with pytest.raises(ConfigurationError) as caught:
        host_module.current()
    (problem,) = caught.value.problems
    assert problem.startswith("plugin `eager` (throwaway-eager 0.0.1) raised in register_queues")
    assert "while the host was still starting" in problem


@pytest.mark.parametrize(("option", "message"), [
    ("serializer='pickle'", "sets option `serializer`, which the platform controls"),
    ("max_retry=5", "sets unknown option `max_retry`"),
    ("base=object", "sets option `base`, which the platform controls"),
])
def test_task_options_are_checked(platform_env: PlatformEnv, option: str, message: str) -> None:
    platform_env.plugins.add("opt", one_task_plugin("opt", option))
    (problem,) = problems_of(platform_env.set(PLATFORM_PLUGINS="opt"))
    assert problem.startswith("plugin `opt` (throwaway-opt 0.0.1) task `opt.job` " + message)


def test_crontab_celery_rejects_is_refused_where_it_is_declared() -> None:
    with pytest.raises(ValueError, match=r"invalid crontab crontab\(61 \* \* \* \*\)"):
        Crontab(minute="61")


def test_beat_arguments_must_be_json() -> None:
    with pytest.raises(ValueError, match="args and kwargs must be JSON values"):
        BeatEntry(name="x", task="a.b", schedule=5, args=(object(),))


def test_misspelt_worker_setting_names_the_variable(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_WORKER__CONCURENCY="3")
    (problem,) = problems_of(platform_env)
    assert problem.startswith("setting `worker.concurency`: Extra inputs are not permitted")
    assert "fix PLATFORM_WORKER__CONCURENCY" in problem


def test_misspelt_disabled_plugin_is_an_error(platform_env: PlatformEnv) -> None:
    (problem,) = problems_of(platform_env.set(PLATFORM_DISABLED_PLUGINS="admn"))
    assert problem == ("PLATFORM_DISABLED_PLUGINS names `admn`, which is not installed "
                       "(installed: admin, quant); fix the name")


def test_empty_allowlist_means_every_plugin(platform_env: PlatformEnv) -> None:
    assert sorted(platform_env.set(PLATFORM_PLUGINS="").host().plugins) == ["admin", "quant"]


def test_equally_specific_routes_of_two_plugins_conflict(platform_env: PlatformEnv) -> None:
    """Only nested plugin names (`left`, `left.right`) can route one task two ways."""
    platform_env.plugins.add("left", """
        from platform_sdk import Queue, Route, hookimpl

        @hookimpl
        def register_queues(register):
            register(Queue(name="left"))

        @hookimpl
        def register_routes(register):
            register(Route(pattern="left.right.*1", queue="left"))
    """)
    platform_env.plugins.add("left.right", """
        from platform_sdk import Queue, Route, hookimpl, task

        @task(name="left.right.x1")
        def job():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)

        @hookimpl
        def register_queues(register):
            register(Queue(name="left.right"))

        @hookimpl
        def register_routes(register):
            register(Route(pattern="left.right.x*", queue="left.right"))
    """, distribution="throwaway-left-right", module="throwaway_left_right")
    (problem,) = problems_of(platform_env.set(PLATFORM_PLUGINS="left,left.right"), strict=False)
    assert problem.startswith("task `left.right.x1` matches route `left.right.")
    assert "of plugin `left` (throwaway-left 0.0.1)" in problem
    assert "of plugin `left.right` (throwaway-left-right 0.0.1)" in problem
    assert problem.endswith("make one pattern more specific")


def test_conflicting_pool_hints_are_named(platform_env: PlatformEnv) -> None:
    for name, pool in (("p1", "threads"), ("p2", "solo")):
        platform_env.plugins.add(name, f"""
            from platform_sdk import WorkerHints, hookimpl

            @hookimpl
            def register_worker_hints(register):
                register(WorkerHints(pool={pool!r}))
        """)
    built = platform_env.set(PLATFORM_PLUGINS="p1,p2").host()
    pool = effective({}, built.settings.worker, built.registry.worker_hints)["pool"]
    assert pool.value == "prefork"
    assert pool.source == "platform default (plugins disagree: p1=threads, p2=solo)"


def test_plugins_show_redacts_passwords_in_urls(platform_env: PlatformEnv) -> None:
    platform_env.set(
        PLATFORM_QUANT__DATABASE_URL="postgresql+psycopg://bob:hunter2@127.0.0.1/quant")
    shown = platform_env.run("plugins", "show", "quant")
    assert shown.returncode == 0, output_of(shown)
    assert "hunter2" not in shown.stdout
    assert "postgresql+psycopg://bob:***@127.0.0.1/quant" in shown.stdout


def test_wait_on_a_task_that_stores_no_result_is_refused(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("quiet", one_task_plugin("quiet", "ignore_result=True"))
    platform_env.set(PLATFORM_PLUGINS="quiet")
    sent = platform_env.run("send", "quiet.job", "--wait")
    assert sent.returncode == 2, output_of(sent)
    assert sent.stderr.startswith("Error: task `quiet.job` does not store results")
