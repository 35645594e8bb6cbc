"""A plugin that breaks by itself is left out; the others load and run.

Real plugins (throwaway distributions with real entry points) and the real host;
``strict`` and ``--plugins`` turn a broken plugin back into a start-up failure, and
what is not one plugin's fault (operator configuration, conflicts) always is one.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from platform_core.errors import ConfigurationError
from platform_core.host import Host
from tests.support import PlatformEnv

HEALTHY = """
    from platform_sdk import BeatEntry, Queue, RetryPolicy, Route, WorkerHints, hookimpl, task

    @task(name="good.job", retry="good.patient")
    def job():
        return "good"

    @hookimpl
    def register_tasks(register):
        register(job)

    @hookimpl
    def register_queues(register):
        register(Queue(name="good"))

    @hookimpl
    def register_routes(register):
        register(Route(pattern="good.*", queue="good"))

    @hookimpl
    def register_retry_policies(register):
        register(RetryPolicy(name="good.patient", max_retries=7))
"""

# Everything a plugin can contribute, then a failure: none of it may be kept.
FAILS_LATE = """
    from platform_sdk import BeatEntry, Queue, Route, WorkerHints, hookimpl, task

    @task(name="bad.job")
    def job():
        return "bad"

    @hookimpl
    def register_tasks(register):
        register(job)

    @hookimpl
    def register_queues(register):
        register(Queue(name="bad"))

    @hookimpl
    def register_routes(register):
        register(Route(pattern="bad.*", queue="bad"))

    @hookimpl
    def register_beat_entries(register):
        register(BeatEntry(name="bad.tick", task="bad.job", schedule=5))

    @hookimpl
    def register_worker_hints(register):
        register(WorkerHints(concurrency=1, max_tasks_per_child=3))
        raise RuntimeError("hints exploded")
"""


def build(env: PlatformEnv, *names: str, **kwargs: Any) -> Host:
    return env.set(PLATFORM_PLUGINS=",".join(names)).host(**kwargs)


def assert_contributes_nothing(host: Host, plugin: str) -> None:
    assert plugin not in host.plugins
    assert list(host.registry.of_plugin(plugin)) == []
    assert not [t for t in host.app.tasks if t.startswith(f"{plugin}.")]
    assert not [q.name for q in host.app.conf.task_queues if q.name.startswith(plugin)]
    assert not [k for k in host.app.conf.task_routes if str(k).startswith(plugin)]
    assert not [e for e in host.app.conf.beat_schedule if e.startswith(plugin)]


def test_plugin_failing_to_import_is_left_out(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("good", HEALTHY)
    platform_env.plugins.add("bad", "raise ImportError('missing C extension')\n",
                             distribution="throwaway-bad-dist", version="2.3.4")
    host = build(platform_env, "good", "bad")
    assert list(host.plugins) == ["good"]
    assert host.app.tasks["good.job"].max_retries == 7
    broken = host.broken["bad"]
    assert (broken.info.name, broken.info.distribution, broken.info.version) == (
        "bad", "throwaway-bad-dist", "2.3.4")
    (error,) = broken.errors
    assert error.startswith("plugin `bad` (throwaway-bad-dist 2.3.4) failed to import ")
    assert "ImportError: missing C extension, at " in error
    assert error.endswith("for the whole traceback. Fix the plugin, or leave it out "
                          "with PLATFORM_DISABLED_PLUGINS=bad")


def test_plugin_raising_in_a_hook_contributes_nothing(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("good", HEALTHY)
    platform_env.plugins.add("bad", FAILS_LATE)
    host = build(platform_env, "good", "bad")
    assert list(host.plugins) == ["good"]
    assert host.broken["bad"].errors == (
        "plugin `bad` (throwaway-bad 0.0.1) raised in register_worker_hints: RuntimeError: "
        "hints exploded",
    )
    assert_contributes_nothing(host, "bad")
    assert host.registry.worker_hints == []
    assert set(host.app.conf.task_routes) >= {"good.job"}


def test_the_same_plugin_without_its_failure_contributes_everything(
    platform_env: PlatformEnv,
) -> None:
    """Control for the test above: each contribution is seen when the plugin is healthy."""
    platform_env.plugins.add("bad", FAILS_LATE.replace('raise RuntimeError("hints exploded")',
                                                       "pass"))
    host = build(platform_env, "bad")
    assert host.broken == {}
    assert "bad.job" in host.app.tasks
    assert "bad.tick" in host.app.conf.beat_schedule
    assert [q.name for q in host.app.conf.task_queues] == ["bad"]
    assert host.registry.worker_hints[0].item.concurrency == 1


def test_invalid_contribution_found_when_the_app_is_built(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("good", HEALTHY)
    platform_env.plugins.add("bad", FAILS_LATE.replace('raise RuntimeError("hints exploded")',
                                                       "pass").replace(
        '@task(name="bad.job")', '@task(name="bad.job", retry_kwargs={}, backend="x")'))
    host = build(platform_env, "good", "bad")
    assert host.broken["bad"].errors == (
        "plugin `bad` (throwaway-bad 0.0.1) task `bad.job` sets option `backend`, which the "
        "platform controls; remove it (use the task decorator's own parameters)",
    )
    assert_contributes_nothing(host, "bad")
    assert "good.job" in host.app.tasks


def test_a_plugin_relying_on_a_broken_one_is_left_out_too(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("good", HEALTHY.replace(
        "register(Queue(name=\"good\"))", "register(Queue(name=\"good\"))\n        raise KeyError('x')"))
    platform_env.plugins.add("user", """
        from platform_sdk import Queue, hookimpl, task

        @task(name="user.job", queue="user", retry="good.patient")
        def job():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)

        @hookimpl
        def register_queues(register):
            register(Queue(name="user"))
    """)
    platform_env.plugins.add("other", HEALTHY.replace("good", "other"))
    host = build(platform_env, "good", "user", "other")
    assert list(host.plugins) == ["other"]
    assert list(host.broken) == ["good", "user"]
    assert host.broken["good"].errors[0].startswith(
        "plugin `good` (throwaway-good 0.0.1) raised in register_queues: KeyError")
    (error,) = host.broken["user"].errors
    assert error.startswith("plugin `user` (throwaway-user 0.0.1) task `user.job` uses retry "
                            "policy `good.patient`, which does not exist")


def test_broken_plugins_are_logged_when_the_host_starts(
    platform_env: PlatformEnv, caplog: pytest.LogCaptureFixture,
) -> None:
    platform_env.plugins.add("good", HEALTHY)
    platform_env.plugins.add("bad", FAILS_LATE)
    with caplog.at_level(logging.WARNING, logger="platform"):
        build(platform_env, "good", "bad")
    assert [r.getMessage() for r in caplog.records if r.name == "platform"] == [
        "broken plugin left out: plugin `bad` (throwaway-bad 0.0.1) raised in "
        "register_worker_hints: RuntimeError: hints exploded"
    ]


@pytest.mark.parametrize("how", ["setting", "argument"])
def test_strict_makes_a_broken_plugin_fatal(platform_env: PlatformEnv, how: str) -> None:
    platform_env.plugins.add("good", HEALTHY)
    platform_env.plugins.add("bad", FAILS_LATE)
    kwargs: dict[str, Any] = {"strict": True} if how == "argument" else {}
    if how == "setting":
        platform_env.set(PLATFORM_STRICT="true")
    with pytest.raises(ConfigurationError) as caught:
        build(platform_env, "good", "bad", **kwargs)
    assert caught.value.problems == [
        "plugin `bad` (throwaway-bad 0.0.1) raised in register_worker_hints: RuntimeError: "
        "hints exploded"
    ]


def test_strict_false_wins_over_the_setting(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("bad", FAILS_LATE)
    platform_env.set(PLATFORM_STRICT="1")
    host = build(platform_env, "bad", "admin", strict=False)
    assert list(host.broken) == ["bad"]


def test_a_broken_plugin_named_with_plugins_fails_loudly(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("good", HEALTHY)
    platform_env.plugins.add("bad", FAILS_LATE)
    platform_env.prepare()
    with pytest.raises(ConfigurationError) as caught:
        platform_env.host(plugins=["good", "bad"])
    assert caught.value.problems == [
        "plugin `bad` (throwaway-bad 0.0.1) raised in register_worker_hints: RuntimeError: "
        "hints exploded"
    ]
    assert list(platform_env.host(plugins=["good"]).plugins) == ["good"]


# --- what stays fatal -------------------------------------------------------------------


def test_invalid_plugin_setting_is_the_operators_mistake(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("good", HEALTHY)
    platform_env.plugins.add("conf", """
        from pydantic import BaseModel
        from platform_sdk import hookimpl

        class Config(BaseModel):
            port: int = 1

        @hookimpl
        def register_settings(register):
            register(Config)
    """)
    platform_env.set(PLATFORM_CONF__PORT="many")
    with pytest.raises(ConfigurationError) as caught:
        build(platform_env, "good", "conf")
    (problem,) = caught.value.problems
    assert problem.startswith("plugin `conf` (throwaway-conf 0.0.1) setting `port`: ")


def test_a_settings_model_that_crashes_is_the_plugins_fault(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("good", HEALTHY)
    platform_env.plugins.add("conf", """
        from pydantic import BaseModel, field_validator
        from platform_sdk import hookimpl

        class Config(BaseModel):
            port: int = 1

            @field_validator("port")
            @classmethod
            def _check(cls, value):
                return {}[value]

        @hookimpl
        def register_settings(register):
            register(Config)
    """)
    platform_env.set(PLATFORM_CONF__PORT="2")
    host = build(platform_env, "good", "conf")
    assert host.broken["conf"].errors == (
        "plugin `conf` (throwaway-conf 0.0.1) settings model Config raised KeyError: 2",)


def test_operator_mistakes_stop_start_up_even_with_broken_plugins_left_out(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("bad", FAILS_LATE)
    platform_env.set(PLATFORM_RETRY_POLICIES__NETWROK__MAX_RETRIES="2")
    with pytest.raises(ConfigurationError) as caught:
        platform_env.host()
    assert caught.value.problems[-1].startswith(
        "configuration overrides retry policy `netwrok`, which does not exist")


def test_an_override_of_a_broken_plugins_policy_is_not_an_error(
    platform_env: PlatformEnv, tmp_path: Any,
) -> None:
    platform_env.plugins.add("good", HEALTHY.replace(
        "register(Queue(name=\"good\"))", "raise KeyError('x')"))
    (tmp_path / "platform.toml").write_text('[retry_policies."good.patient"]\nmax_retries = 1\n')
    host = build(platform_env, "good", "admin")
    assert list(host.broken) == ["good"]
