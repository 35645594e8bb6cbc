"""What a plugin may not do: take another plugin's names, queues or messages, or change
how the platform serializes, sends, stores or logs tasks.

Each attempt is a real throwaway plugin next to the bundled ``admin``; the attempt is
reported as that plugin's own problem, the plugin is left out, and ``admin`` is
untouched (a strict start-up lists the same problem).
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from platform_core.errors import ConfigurationError
from platform_core.host import Host
from tests.support import PlatformEnv

LABEL = "plugin `x` (throwaway-x 0.0.1)"


def source(body: str) -> str:
    """Plugin ``x``: task ``x.job`` on its queue ``x``, plus ``body``."""
    return textwrap.dedent("""
        from pydantic import BaseModel
        from platform_sdk import BeatEntry, Queue, Route, WorkerHints, hookimpl, task

        @task(name="x.job", queue="x")
        def job():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)

        @hookimpl
        def register_queues(register):
            register(Queue(name="x"))
    """) + textwrap.dedent(body)


def attempt(env: PlatformEnv, body: str, name: str = "x") -> Host:
    """Build with plugin ``name`` (from ``body``) and admin; check admin is intact."""
    env.plugins.add(name, source(body))
    host = env.set(PLATFORM_PLUGINS=f"{name},admin").host()
    assert list(host.plugins) == ["admin"], host.broken
    assert host.queue_of("admin.send_email") == "admin.email"
    assert host.queue_of("admin.print_hello") == "admin"
    assert set(host.app.conf.beat_schedule) == {"admin.hello-every-30s", "admin.weekly-report"}
    with pytest.raises(ConfigurationError) as caught:
        env.host(strict=True)
    assert caught.value.problems == list(host.broken[name].errors)
    return host


def only_error(host: Host, name: str = "x") -> str:
    (error,) = host.broken[name].errors
    return error


def test_the_plugin_without_an_attempt_loads(platform_env: PlatformEnv) -> None:
    """Control: the base plugin of every test below is fine."""
    platform_env.plugins.add("x", source(""))
    host = platform_env.set(PLATFORM_PLUGINS="x,admin").host()
    assert sorted(host.plugins) == ["admin", "x"]


# --- names ----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "what", "name"), [
    ("""
        @task(name="admin.send_email", queue="x")
        def steal(to, subject, body):
            return to

        @hookimpl
        def register_tasks(register):
            register(job)
            register(steal)
     """, "task", "admin.send_email"),
    ("""
        @hookimpl
        def register_queues(register):
            register(Queue(name="x"))
            register(Queue(name="admin.email"))
     """, "queue", "admin.email"),
    ("""
        @hookimpl
        def register_queues(register):
            register(Queue(name="x"))
            register(Queue(name="email"))
     """, "queue", "email"),
    ("""
        @hookimpl
        def register_beat_entries(register):
            register(BeatEntry(name="admin.weekly-report", task="x.job", schedule=5))
     """, "beat entry", "admin.weekly-report"),
    ("""
        @task(name="job", queue="x")
        def bare():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)
            register(bare)
     """, "task", "job"),
], ids=["another-plugins-task", "another-plugins-queue", "unprefixed-queue",
        "another-plugins-beat-entry", "unprefixed-task"])
def test_names_outside_the_plugins_namespace(platform_env: PlatformEnv, body: str, what: str,
                                             name: str) -> None:
    host = attempt(platform_env, body)
    assert only_error(host) == (
        f"{LABEL} declares {what} `{name}` outside its namespace; a plugin's tasks, queues and "
        f"beat entries are named `x` or `x.<name>`: rename it `x.{name}` or similar"
    )


def test_default_task_names_are_outside_the_namespace(platform_env: PlatformEnv) -> None:
    """Without name=, a task is named after its module, which is not the plugin's name."""
    host = attempt(platform_env, """
        @task(queue="x")
        def unnamed():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)
            register(unnamed)
    """)
    assert "declares task `throwaway_x_" in only_error(host)


@pytest.mark.parametrize("pattern", ["admin.*", "*", "admin.send_*", "x*", "?.job"])
def test_route_patterns_outside_the_namespace(platform_env: PlatformEnv, pattern: str) -> None:
    host = attempt(platform_env, f"""
        @hookimpl
        def register_routes(register):
            register(Route(pattern="x.*", queue="x"))
            register(Route(pattern={pattern!r}, queue="x"))
    """)
    assert only_error(host) == (
        f"{LABEL} declares route pattern `{pattern}`, which could match other plugins' tasks; a "
        "plugin's route patterns start with `x.` (for example `x.*`)"
    )


def test_the_shared_default_queue_may_be_declared_by_one_plugin(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("x", source("""
        @hookimpl
        def register_queues(register):
            register(Queue(name="x"))
            register(Queue(name="default"))
    """))
    host = platform_env.set(PLATFORM_PLUGINS="x,quant").host()
    assert host.registry.queue_map()["default"].plugin.name == "x"


# --- queues of another plugin ---------------------------------------------------------


def test_task_sent_to_another_plugins_queue(platform_env: PlatformEnv) -> None:
    host = attempt(platform_env, """
        @task(name="x.spam", queue="admin.email")
        def spam():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)
            register(spam)
    """)
    assert only_error(host) == (
        f"{LABEL} sends task `x.spam` to queue `admin.email` of plugin `admin` (platform-admin "
        "0.1.0); a plugin sends only to its own queues, which its workers (--plugins x) consume: "
        "declare a queue `x.<name>` and use it"
    )


def test_route_to_another_plugins_queue(platform_env: PlatformEnv) -> None:
    host = attempt(platform_env, """
        @hookimpl
        def register_routes(register):
            register(Route(pattern="x.*", queue="admin"))
    """)
    assert only_error(host).startswith(
        f"{LABEL} routes `x.*` to queue `admin` of plugin `admin` (platform-admin 0.1.0); ")


def test_beat_entry_sent_to_another_plugins_queue(platform_env: PlatformEnv) -> None:
    host = attempt(platform_env, """
        @hookimpl
        def register_beat_entries(register):
            register(BeatEntry(name="x.tick", task="x.job", schedule=5, queue="admin"))
    """)
    assert only_error(host).startswith(
        f"{LABEL} sends beat entry `x.tick` to queue `admin` of plugin `admin` ")


def test_beat_entry_running_another_plugins_task(platform_env: PlatformEnv) -> None:
    host = attempt(platform_env, """
        @hookimpl
        def register_beat_entries(register):
            register(BeatEntry(name="x.spam", task="admin.send_email", schedule=1,
                               args=("a@example.com", "s", "b")))
    """)
    assert only_error(host) == (
        f"{LABEL} beat entry `x.spam` runs task `admin.send_email` of plugin `admin` "
        "(platform-admin 0.1.0); a plugin schedules only its own tasks (that plugin can declare "
        "the entry)"
    )


def test_nested_plugin_names_cannot_route_each_others_tasks_silently(
    platform_env: PlatformEnv,
) -> None:
    """Plugin `x` may name things `x.y.*`, which plugin `x.y` owns too: neither is at fault."""
    platform_env.plugins.add("x", source("""
        @hookimpl
        def register_routes(register):
            register(Route(pattern="x.y.jo*", queue="x"))
    """))
    platform_env.plugins.add("x.y", """
        from platform_sdk import Queue, Route, hookimpl, task

        @task(name="x.y.job")
        def job():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)

        @hookimpl
        def register_queues(register):
            register(Queue(name="x.y"))

        @hookimpl
        def register_routes(register):
            register(Route(pattern="x.y.*", queue="x.y"))
    """, distribution="throwaway-xy", module="throwaway_xy_nested")
    with pytest.raises(ConfigurationError) as caught:
        platform_env.set(PLATFORM_PLUGINS="x,x.y").host()
    assert caught.value.problems == [
        "task `x.y.job` of plugin `x.y` (throwaway-xy 0.0.1) matches route `x.y.jo*` of "
        f"{LABEL}, which sends it to queue `x`; give the task queue=... or make the route "
        "more specific"
    ]


# --- settings -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["worker", "plugin", "broker_url", "retry-policies"])
def test_plugin_named_like_a_platform_setting(platform_env: PlatformEnv, name: str) -> None:
    key = name.replace("-", "_")
    platform_env.plugins.add(name, f"""
        from platform_sdk import Queue, hookimpl

        @hookimpl
        def register_queues(register):
            register(Queue(name={name!r}))
    """, module=f"throwaway_reserved_{key}")
    host = platform_env.set(PLATFORM_PLUGINS=f"{name},admin").host()
    assert list(host.plugins) == ["admin"]
    assert only_error(host, name) == (
        f"plugin `{name}` (throwaway-{name} 0.0.1) has a name the platform's settings use "
        f"(`{key}`, PLATFORM_{key.upper()}__*); its distribution must name its entry point "
        "differently"
    )


def test_two_plugins_reading_the_same_variables_conflict(platform_env: PlatformEnv) -> None:
    settings = """
        from pydantic import BaseModel
        from platform_sdk import hookimpl

        class Config(BaseModel):
            token: str = ""

        @hookimpl
        def register_settings(register):
            register(Config)
    """
    platform_env.plugins.add("my-plug", settings, module="throwaway_my_plug_dash",
                             distribution="throwaway-dash")
    platform_env.plugins.add("my_plug", settings, module="throwaway_my_plug_under",
                             distribution="throwaway-under")
    with pytest.raises(ConfigurationError) as caught:
        platform_env.set(PLATFORM_PLUGINS="my-plug,my_plug").host()
    assert caught.value.problems == [
        "plugin `my_plug` (throwaway-under 0.0.1) and plugin `my-plug` (throwaway-dash "
        "0.0.1) would both read their settings from PLATFORM_MY_PLUG__* variables; uninstall or "
        "disable one of them"
    ]


def test_a_settings_model_sees_only_its_own_values(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("x", source("""
        class Config(BaseModel):
            broker_url: str = "unset"
            smtp_password: str = "unset"

        @hookimpl
        def register_settings(register):
            register(Config)
    """))
    platform_env.set(PLATFORM_PLUGINS="x,admin",
                     PLATFORM_BROKER_URL="filesystem://", PLATFORM_ADMIN__SMTP_PASSWORD="hunter2")
    host = platform_env.host()
    (model,) = [m for m in host.plugin_settings if m.__name__ == "Config"]
    assert host.plugin_settings[model].model_dump() == {"broker_url": "unset",
                                                        "smtp_password": "unset"}


# --- task options, worker hints -------------------------------------------------------


@pytest.mark.parametrize("option", [
    "serializer='pickle'", "backend='redis://elsewhere'", "Request='celery.worker.request:Request'",
    "Strategy='celery.worker.strategy:default'", "on_failure=print", "apply_async=print",
    "run=print", "typing=True", "from_config=()", "request_stack=None",
])
def test_task_options_that_would_change_the_core(platform_env: PlatformEnv, option: str) -> None:
    key = option.split("=", 1)[0]
    host = attempt(platform_env, f"""
        @task(name="x.sneaky", queue="x", {option})
        def sneaky():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)
            register(sneaky)
    """)
    assert only_error(host) == (
        f"{LABEL} task `x.sneaky` sets option `{key}`, which the platform controls; remove it "
        "(use the task decorator's own parameters)"
    )


@pytest.mark.parametrize("option", ["pydantic=True", "compression='zlib'", "max_retry=3"])
def test_unknown_task_options(platform_env: PlatformEnv, option: str) -> None:
    key = option.split("=", 1)[0]
    host = attempt(platform_env, f"""
        @task(name="x.odd", queue="x", {option})
        def odd():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)
            register(odd)
    """)
    assert only_error(host).startswith(f"{LABEL} task `x.odd` sets unknown option `{key}`; ")


def test_allowed_task_options_reach_celery(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("x", source("""
        @task(name="x.tuned", queue="x", priority=3, expires=60, track_started=True,
              max_retries=9, autoretry_for=(KeyError,), dont_autoretry_for=(IndexError,))
        def tuned():
            return 1

        @hookimpl
        def register_tasks(register):
            register(tuned)
    """))
    task: Any = platform_env.set(PLATFORM_PLUGINS="x").host().app.tasks["x.tuned"]
    assert (task.priority, task.expires, task.track_started, task.max_retries) == (3, 60, True, 9)
    from platform_sdk.exceptions import InvalidTaskCall

    assert task.dont_autoretry_for == (IndexError, InvalidTaskCall)
    assert task.typing is False  # the platform checks arguments itself
    assert task.serializer == "json" or task.serializer is None


@pytest.mark.parametrize("hint", ["visibility_timeout=10", "broker_url='redis://x'",
                                  "task_serializer='pickle'"])
def test_worker_hints_cannot_set_broker_or_serializer(platform_env: PlatformEnv,
                                                      hint: str) -> None:
    host = attempt(platform_env, f"""
        @hookimpl
        def register_worker_hints(register):
            register(WorkerHints({hint}))
    """)
    error = only_error(host)
    assert error.startswith(f"{LABEL} declared an invalid model in register_worker_hints: ")
    assert "Extra inputs are not permitted" in error


def test_worker_hints_as_a_dict_are_checked_the_same(platform_env: PlatformEnv) -> None:
    host = attempt(platform_env, """
        @hookimpl
        def register_worker_hints(register):
            register({"concurrency": 2, "worker_prefetch_multiplier": 100})
    """)
    assert only_error(host).startswith(
        f"{LABEL} registered an invalid item in register_worker_hints: ")


# --- selection ------------------------------------------------------------------------


def test_a_plugin_outside_the_allowlist_is_never_imported(
    platform_env: PlatformEnv, tmp_path: Any,
) -> None:
    marker = tmp_path / "imported.marker"
    platform_env.plugins.add("spy", f"from pathlib import Path\nPath({str(marker)!r}).touch()\n")
    host = platform_env.set(PLATFORM_PLUGINS="admin").host()
    assert list(host.plugins) == ["admin"] and host.broken == {}
    assert not marker.exists()
    platform_env.set(PLATFORM_PLUGINS="admin,spy").host()
    assert marker.exists()  # control: the marker is written when the plugin is imported
