"""Every start-up validation error, raised through real plugins and the real pluggy manager.

Plugins are throwaway distributions with real ``platform.plugins`` entry points
(``platform_env.plugins.add``) or in-process objects (``host.build(extra_plugins=...)``).
Most tests restrict the host to their throwaway plugins with ``PLATFORM_PLUGINS`` so
that the bundled ``admin``/``quant`` plugins neither help (``default`` queue) nor
add noise to the problem list.
"""

from __future__ import annotations

import logging
import re
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

from platform_core import host as host_module
from platform_core.errors import ConfigurationError
from platform_core.settings import Settings
from platform_sdk import BeatEntry, Queue, Route, hookimpl, task
from tests.support import PlatformEnv

HEADER = "from platform_sdk import BeatEntry, Queue, RetryPolicy, Route, WorkerHints, hookimpl, task\n"


def plugin(name: str, extra: str = "", *, queue: bool = True, route: bool = True,
           job: str = "") -> str:
    """Source of a well-formed plugin ``name`` (task ``NAME.job`` routed to queue ``NAME``).

    ``job`` replaces the arguments of the ``@task(...)`` decorator; ``extra`` is appended,
    so it may add hooks or redefine the ones above.
    """
    job = job or f"name={name + '.job'!r}"
    parts = [
        HEADER,
        f"@task({job})\ndef job():\n    return {name!r}\n",
        "@hookimpl\ndef register_tasks(register):\n    register(job)\n",
    ]
    if queue:
        parts.append(f"@hookimpl\ndef register_queues(register):\n    register(Queue(name={name!r}))\n")
    if route:
        parts.append(
            "@hookimpl\ndef register_routes(register):\n"
            f"    register(Route(pattern={name + '.*'!r}, queue={name!r}))\n"
        )
    return "\n".join(parts) + "\n" + textwrap.dedent(extra)


def label(name: str) -> str:
    return f"plugin `{name}` (throwaway-{name} 0.0.1)"


def problems_of(env: PlatformEnv, **kwargs: Any) -> list[str]:
    """The problems start-up reports; strict unless told (any broken plugin stops it)."""
    kwargs.setdefault("strict", True)
    with pytest.raises(ConfigurationError) as caught:
        env.host(**kwargs)
    return caught.value.problems


def only(env: PlatformEnv, *names: str) -> PlatformEnv:
    return env.set(PLATFORM_PLUGINS=",".join(names))


def test_well_formed_throwaway_plugins_build(platform_env: PlatformEnv) -> None:
    """The baseline every negative test below departs from."""
    platform_env.plugins.add("a", plugin("a"))
    platform_env.plugins.add("b", plugin("b"))
    host = only(platform_env, "a", "b").host()
    assert sorted(host.plugins) == ["a", "b"]
    assert host.plugins["a"].distribution == "throwaway-a"
    assert host.plugins["a"].version == "0.0.1"
    assert host.queue_of("a.job") == "a"
    assert host.queue_of("b.job") == "b"
    assert {"a.job", "b.job"} <= set(host.app.tasks)


# --- conflicts between plugins --------------------------------------------------------
#
# Names are namespaced by plugin (see test_namespaces.py), so two plugins can claim one
# name only when one plugin's name lies inside the other's namespace (`a` and `a.b`), or
# with the platform's shared `default` queue. Neither plugin is wrong alone: start-up
# stops and names both.

NESTED = "plugin `a.b` (throwaway-ab 0.0.1)"


def add_nested(env: PlatformEnv, extra: str = "") -> None:
    """Plugin `a.b` (task `a.b.job` on queue `a.b`), inside plugin `a`'s namespace."""
    env.plugins.add("a.b", plugin("a.b", extra), distribution="throwaway-ab",
                    module="throwaway_ab_nested")


def test_two_plugins_declare_the_same_task_name(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", job='name="a.b.job", queue="a"'))
    add_nested(platform_env)
    problems = problems_of(only(platform_env, "a", "a.b"), strict=False)
    assert problems == [
        f"{NESTED} declares task `a.b.job`, already declared by {label('a')}; "
        "rename one of them or disable one plugin"
    ]


def test_two_plugins_declare_the_same_queue(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_queues(register):
            register(Queue(name="a"))
            register(Queue(name="a.b"))
    """))
    add_nested(platform_env)
    problems = problems_of(only(platform_env, "a", "a.b"), strict=False)
    assert problems == [
        f"{NESTED} declares queue `a.b`, already declared by {label('a')}; "
        "rename one of them or disable one plugin"
    ]


def test_two_plugins_declare_the_same_beat_entry(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_beat_entries(register):
            register(BeatEntry(name="a.b.nightly", task="a.job", schedule=60))
    """))
    add_nested(platform_env, """
        @hookimpl
        def register_beat_entries(register):
            register(BeatEntry(name="a.b.nightly", task="a.b.job", schedule=60))
    """)
    problems = problems_of(only(platform_env, "a", "a.b"), strict=False)
    assert problems == [
        f"{NESTED} declares beat entry `a.b.nightly`, already declared by {label('a')}; "
        "rename one of them or disable one plugin"
    ]


def test_a_plugin_conflicting_with_a_bundled_plugin_names_both_distributions(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("zeta", plugin("zeta", """
        @hookimpl
        def register_queues(register):
            register(Queue(name="zeta"))
            register(Queue(name="default"))
    """))
    problems = problems_of(only(platform_env, "zeta", "admin"), strict=False)
    assert problems == [
        "plugin `zeta` (throwaway-zeta 0.0.1) declares queue `default`, already declared by "
        "plugin `admin` (platform-admin 0.1.0); rename one of them or disable one plugin"
    ]


def test_the_same_plugin_declares_a_queue_twice(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_queues(register):
            register(Queue(name="a"))
            register(Queue(name="a", description="again"))
    """))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} declares queue `a` twice; remove one"
    ]


def test_one_plugin_name_claimed_by_two_distributions(platform_env: PlatformEnv) -> None:
    first = platform_env.plugins.add("dup", plugin("dup"), distribution="throwaway-one")
    second = platform_env.plugins.add("dup", plugin("dup"), distribution="throwaway-two")
    (problem,) = problems_of(only(platform_env, "dup"))
    assert problem.startswith("plugin name `dup` is declared by ")
    assert f"throwaway-one 0.0.1 ({first})" in problem
    assert f"throwaway-two 0.0.1 ({second})" in problem
    assert problem.endswith("; uninstall one of them")


# --- routing and queues ---------------------------------------------------------------


def test_route_to_an_undeclared_queue(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_routes(register):
            register(Route(pattern="a.*", queue="a"))
            register(Route(pattern="a.other.*", queue="nowhere"))
    """))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} routes `a.other.*` to queue `nowhere`, which no enabled plugin declares "
        "(declared: a); declare it with register_queues or enable the plugin that does"
    ]


def test_task_routed_to_an_undeclared_queue_is_reported_once_and_truthfully(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_routes(register):
            register(Route(pattern="a.*", queue="nowhere"))
    """))
    problems = problems_of(only(platform_env, "a"))
    assert problems[0].startswith(f"{label('a')} routes `a.*` to queue `nowhere`")
    assert not any("matches no route" in p for p in problems), problems


def test_task_with_queue_that_nobody_declares(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", job='name="a.job", queue="nowhere"'))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} task `a.job` names queue `nowhere`, which no enabled plugin declares "
        "(declared: a); declare it with register_queues"
    ]


def test_task_matching_no_route_without_a_default_queue(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", route=False))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} task `a.job` matches no route and would go to the default queue "
        "`default`, which no enabled plugin declares; add a route or give the task queue=..."
    ]


def test_task_falling_to_another_plugins_default_queue_is_refused(
    platform_env: PlatformEnv,
) -> None:
    """admin's workers consume `default` but cannot run plugin a's code."""
    platform_env.plugins.add("a", plugin("a", route=False))
    assert problems_of(only(platform_env, "a", "admin")) == [
        f"{label('a')} task `a.job` matches no route and would go to the default queue "
        "`default` of plugin `admin` (platform-admin 0.1.0), whose workers (--plugins admin) "
        "cannot run it; route it to a queue of plugin `a` or give the task queue=..."
    ]


def test_task_falling_to_its_own_plugins_default_queue_is_fine(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("a", plugin("a", route=False) + """
@hookimpl
def register_queues(register):
    register(Queue(name="default"))
""")
    host = only(platform_env, "a").host()
    assert host.queue_of("a.job") == "default"


# --- beat entries ---------------------------------------------------------------------


def test_beat_entry_for_a_task_nobody_provides_suggests_the_right_name(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_beat_entries(register):
            register(BeatEntry(name="a.tick", task="b.job", schedule=5))
    """))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} beat entry `a.tick` runs task `b.job`, which no enabled plugin "
        "provides (did you mean `a.job`?); fix the name or enable the plugin providing it"
    ]


def test_beat_entry_for_a_task_with_no_near_name_has_no_hint(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_beat_entries(register):
            register(BeatEntry(name="a.tick", task="zz.unrelated", schedule=5))
    """))
    (problem,) = problems_of(only(platform_env, "a"))
    assert "runs task `zz.unrelated`, which no enabled plugin provides;" in problem
    assert "did you mean" not in problem


def test_beat_entry_with_a_typo_in_the_task_name_suggests_the_right_name(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_beat_entries(register):
            register(BeatEntry(name="a.tick", task="a.jbo", schedule=5))
    """))
    (problem,) = problems_of(only(platform_env, "a"))
    assert "(did you mean `a.job`?)" in problem


def test_beat_entry_with_an_undeclared_queue(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_beat_entries(register):
            register(BeatEntry(name="a.tick", task="a.job", schedule=5, queue="nowhere"))
    """))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} beat entry `a.tick` sends to queue `nowhere`, which no enabled plugin "
        "declares (declared: a)"
    ]


# --- malformed hooks ------------------------------------------------------------------


def test_hookimpl_with_a_misspelt_name(platform_env: PlatformEnv) -> None:
    module = platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_task(register):
            register(job)
    """))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} implements unknown hook `register_task` in {module}; "
        "did you mean `register_tasks`?"
    ]


def test_hookimpl_with_an_unrecognisable_name_lists_the_hooks(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def zzz(register):
            pass
    """))
    (problem,) = problems_of(only(platform_env, "a"))
    assert "implements unknown hook `zzz`" in problem
    assert problem.endswith(
        "hooks are: register_tasks, register_queues, register_routes, register_beat_entries, "
        "register_retry_policies, register_worker_hints, register_settings"
    )


def test_hookimpl_with_an_extra_argument(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_queues(register, extra):
            register(Queue(name="a"))
    """))
    (problem,) = problems_of(only(platform_env, "a"))
    assert problem.startswith(f"{label('a')} has a hook with a wrong signature: hook "
                              "`register_queues` at ")
    assert re.search(r" at \S+\.py:\d+ takes `extra`, which the host does not pass: it passes "
                     r"only `register` \(a function to call once per Queue\); write "
                     r"`def register_queues\(register\):`", problem), problem
    assert "PluginValidationError" not in problem and "hookspec" not in problem


def test_hookimpl_with_a_misnamed_parameter(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_tasks(reg):
            pass
    """))
    (problem,) = problems_of(only(platform_env, "a"))
    assert "hook `register_tasks` at " in problem
    assert ("takes `reg`, which the host does not pass: it passes only `register` (a function "
            "to call once per task); write `def register_tasks(register):`") in problem


def test_hook_function_without_hookimpl_marker(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        def register_beat_entries(register):
            register(BeatEntry(name="a.tick", task="a.job", schedule=5))
    """))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} defines `register_beat_entries` without @platform_sdk.hookimpl, so the "
        "host would never call it; decorate it with @hookimpl"
    ]


def test_hook_function_imported_from_elsewhere_is_not_blamed(platform_env: PlatformEnv) -> None:
    """Only functions the plugin module itself defines are checked for a missing marker."""
    platform_env.plugins.add("a", plugin("a", "from tests.unit.test_validation import "
                                              "undecorated as register_settings\n"))
    host = only(platform_env, "a").host()
    assert list(host.plugins) == ["a"]


def undecorated(register: Any) -> None:  # imported by the test above
    raise AssertionError("never called")


def test_invalid_model_built_inside_a_hook(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_queues(register):
            register(Queue(name="a"))
            register(Queue(name="bad name!"))
    """))
    (problem,) = problems_of(only(platform_env, "a"))
    assert problem.startswith(f"{label('a')} declared an invalid model in register_queues: ")
    assert "queue 'bad name!' is not a valid name" in problem


def test_plain_function_given_to_register_tasks(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        def plain():
            return 1

        @hookimpl
        def register_tasks(register):
            register(job)
            register(plain)
    """))
    (problem,) = problems_of(only(platform_env, "a"))
    assert problem.startswith(
        f"{label('a')} registered an invalid item in register_tasks: expected a function "
        "decorated with platform_sdk.task, got <function plain at "
    )


def test_wrong_types_given_to_register_queues_and_settings(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        from pydantic import BaseModel

        class Config(BaseModel):
            port: int = 1

        @hookimpl
        def register_queues(register):
            register(Queue(name="a"))
            register("b")
            register({"name": "a.dict-queue"})
            register({"name": "bad name!"})

        @hookimpl
        def register_settings(register):
            register(Config())
    """))
    problems = problems_of(only(platform_env, "a"))
    assert len(problems) == 3, problems
    assert problems[0] == (
        f"{label('a')} registered an invalid item in register_queues: expected Queue, got 'b'"
    )
    assert problems[1].startswith(f"{label('a')} registered an invalid item in register_queues:")
    assert "queue 'bad name!' is not a valid name" in problems[1]
    assert problems[2] == (
        f"{label('a')} registered an invalid item in register_settings: expected a pydantic "
        "model class, got Config(port=1)"
    )


def test_a_dict_is_accepted_as_a_declaration(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_queues(register):
            register({"name": "a", "routing_key": "rk-a"})
    """))
    host = only(platform_env, "a").host()
    assert host.registry.queue_map()["a"].item == Queue(name="a", routing_key="rk-a")


def test_hook_that_raises(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_worker_hints(register):
            raise RuntimeError("boom in hints")
    """))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} raised in register_worker_hints: RuntimeError: boom in hints"
    ]


def test_plugin_that_fails_to_import(platform_env: PlatformEnv) -> None:
    module = platform_env.plugins.add("a", "import platform_no_such_module_xyz\n")
    (problem,) = problems_of(only(platform_env, "a"))
    head, _, rest = problem.partition(", at ")
    assert head == (f"{label('a')} failed to import {module}: ModuleNotFoundError: No module "
                    "named 'platform_no_such_module_xyz'")
    where, _, tail = rest.partition(": `")
    assert where.endswith(f"{module}.py:1 in <module>")
    assert tail == ("import platform_no_such_module_xyz`; rerun with --debug (or "
                    "PLATFORM_DEBUG=1) for the whole traceback. Fix the plugin, or leave it "
                    "out with PLATFORM_DISABLED_PLUGINS=a")


def test_an_import_error_shows_the_plugins_own_frames(platform_env: PlatformEnv) -> None:
    """The frames in the plugin's files, innermost first; none of importlib's."""
    module = platform_env.plugins.add("a", textwrap.dedent("""
        def load_table():
            return parse("x")

        def parse(text):
            return int(text)

        TABLE = load_table()
    """))
    (problem,) = problems_of(only(platform_env, "a"))
    assert "ValueError: invalid literal for int() with base 10: 'x', at " in problem
    assert f"{module}.py:6 in parse: `return int(text)`" in problem
    assert (f"(plugin frames, innermost first: {module}.py:6 in parse <- {module}.py:3 in "
            f"load_table <- {module}.py:8 in <module>)") in problem
    assert "importlib" not in problem and "Traceback" not in problem


def test_with_debug_an_import_error_carries_the_whole_traceback(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("a", "import platform_no_such_module_xyz\n")
    platform_env.set(PLATFORM_DEBUG="1")
    (problem,) = problems_of(only(platform_env, "a"))
    assert "\nTraceback (most recent call last):\n" in problem
    assert "importlib" in problem  # the whole traceback, loader frames included
    assert problem.rstrip().endswith("PLATFORM_DISABLED_PLUGINS=a")


def test_a_syntax_error_in_a_plugin_names_its_file_and_line(platform_env: PlatformEnv) -> None:
    module = platform_env.plugins.add("a", "x = 1\ndef broken(:\n    pass\n")
    (problem,) = problems_of(only(platform_env, "a"))
    assert "SyntaxError: " in problem
    assert f"{module}.py:2: `def broken(:`" in problem


def test_hint_and_settings_hooks_accept_one_item(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_worker_hints(register):
            register(WorkerHints(concurrency=1))
            register(WorkerHints(concurrency=2))
    """))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} registers 2 items in register_worker_hints; register one"
    ]


# --- retry policies and time limits ---------------------------------------------------


def test_task_names_an_unknown_retry_policy(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", job='name="a.job", retry="netwrok"'))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} task `a.job` uses retry policy `netwrok`, which does not exist "
        "(known: default, network); register it with register_retry_policies or use a known one"
    ]


def test_task_may_use_a_policy_another_plugin_registers(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", job='name="a.job", retry="b.patient"'))
    platform_env.plugins.add("b", plugin("b", """
        @hookimpl
        def register_retry_policies(register):
            register(RetryPolicy(name="b.patient", max_retries=11))
    """))
    host = only(platform_env, "a", "b").host()
    assert host.app.tasks["a.job"].max_retries == 11
    assert host.app.tasks["a.job"].retry_policy_name == "b.patient"


def test_plugin_registers_a_policy_named_like_a_builtin(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @hookimpl
        def register_retry_policies(register):
            register(RetryPolicy(name="default", max_retries=0))
    """))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} declares retry policy `default`, which is built in; choose another "
        "name (operators change built-in policies in configuration)"
    ]


def test_two_plugins_register_the_same_policy(platform_env: PlatformEnv) -> None:
    """Retry policies are shared by name across plugins, so two plugins can clash."""
    for name in ("a", "b"):
        platform_env.plugins.add(name, plugin(name, """
            @hookimpl
            def register_retry_policies(register):
                register(RetryPolicy(name="patient"))
        """))
    assert problems_of(only(platform_env, "a", "b"), strict=False) == [
        f"{label('b')} declares retry policy `patient`, already declared by {label('a')}; "
        "rename one of them or disable one plugin"
    ]


@pytest.mark.parametrize(("soft", "hard"), [(10, 10), (30, 20)])
def test_soft_time_limit_not_below_time_limit(
    platform_env: PlatformEnv, soft: int, hard: int
) -> None:
    platform_env.plugins.add(
        "a", plugin("a", job=f'name="a.job", soft_time_limit={soft}, time_limit={hard}')
    )
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} task `a.job` has soft_time_limit {soft}s not below time_limit {hard}s; "
        "the soft limit must come first"
    ]


def test_inline_policy_retrying_on_an_unimportable_exception(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", job=(
        'name="a.job", retry=RetryPolicy(name="inline", retry_on=("no_such_pkg_q.Boom",))'
    )))
    (problem,) = problems_of(only(platform_env, "a"))
    assert problem.startswith(
        f"{label('a')} task `a.job`: retry policy `inline` retries on `no_such_pkg_q.Boom`, "
        "which cannot be imported ("
    )
    assert "No module named 'no_such_pkg_q'" in problem


# --- plugin settings ------------------------------------------------------------------

SETTINGS_PLUGIN = """
    from pydantic import BaseModel

    class Config(BaseModel):
        port: int = 25
        token: str

    @hookimpl
    def register_settings(register):
        register(Config)
"""


def test_invalid_plugin_setting_from_env_names_the_variable(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", SETTINGS_PLUGIN))
    platform_env.set(PLATFORM_A__PORT="abc", PLATFORM_A__TOKEN="t")
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} setting `port`: Input should be a valid integer, unable to parse string "
        "as an integer; set it under [plugin.a] in platform.toml or as PLATFORM_A__PORT"
    ]


def test_missing_required_plugin_setting(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", SETTINGS_PLUGIN))
    assert problems_of(only(platform_env, "a")) == [
        f"{label('a')} setting `token`: Field required; set it under [plugin.a] in "
        "platform.toml or as PLATFORM_A__TOKEN"
    ]


def test_invalid_setting_of_hyphenated_plugin_names_the_variable_it_reads(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("my-plug", HEADER + textwrap.dedent(SETTINGS_PLUGIN),
                             module="throwaway_my_plug_settings")
    platform_env.set(PLATFORM_MY_PLUG__PORT="abc", PLATFORM_MY_PLUG__TOKEN="t")
    (problem,) = problems_of(only(platform_env, "my-plug"))
    assert "setting `port`: Input should be a valid integer" in problem  # the value was read
    assert problem.endswith("as PLATFORM_MY_PLUG__PORT")


def test_a_misspelt_plugin_setting_is_warned_about_with_the_one_meant(
    platform_env: PlatformEnv, caplog: pytest.LogCaptureFixture,
) -> None:
    platform_env.plugins.add("a", plugin("a", SETTINGS_PLUGIN))
    platform_env.set(PLATFORM_A__TOKEN="t", PLATFORM_A__PROT="s3cr3t-26", PLATFORM_A__ZZZ="1")
    with caplog.at_level(logging.WARNING, logger="platform"):
        host = only(platform_env, "a").host(bind=False)
    assert host.plugin_settings  # the plugin starts: a stray variable is no problem
    warned = [r.getMessage() for r in caplog.records if r.name == "platform"]
    assert warned == [
        f"PLATFORM_A__PROT is ignored: {label('a')} has no setting `prot` (its settings: "
        "port, token); did you mean PLATFORM_A__PORT?",
        f"PLATFORM_A__ZZZ is ignored: {label('a')} has no setting `zzz` (its settings: "
        "port, token)",
    ]
    assert "s3cr3t" not in " ".join(warned)  # values may be secrets: never shown


def test_settings_for_a_plugin_without_a_model_are_warned_about(
    platform_env: PlatformEnv, caplog: pytest.LogCaptureFixture,
) -> None:
    platform_env.plugins.add("a", plugin("a"))
    platform_env.set(PLATFORM_A__PORT="26")
    with caplog.at_level(logging.WARNING, logger="platform"):
        only(platform_env, "a").host(bind=False)
    assert [r.getMessage() for r in caplog.records if r.name == "platform"] == [
        f"PLATFORM_A__PORT is ignored: {label('a')} registers no settings"]


# --- selecting plugins ----------------------------------------------------------------


def test_allowlist_names_an_uninstalled_plugin(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a"))
    (problem,) = problems_of(only(platform_env, "a", "nope"))
    assert problem.startswith(
        "plugin `nope` was requested (--plugins / PLATFORM_PLUGINS) but is not installed; "
        "installed plugins: a, admin, "
    )
    assert problem.endswith(". Install its package or fix the name.")


def test_plugins_argument_names_an_uninstalled_plugin(platform_env: PlatformEnv) -> None:
    (problem,) = problems_of(platform_env, plugins=["admin", "quant", "qaunt"])
    assert problem.startswith("plugin `qaunt` was requested (--plugins / PLATFORM_PLUGINS) but is "
                              "not installed; installed plugins: admin, ")
    assert ", quant" in problem


def test_plugins_argument_outside_the_configured_allowlist(platform_env: PlatformEnv) -> None:
    platform_env.set(PLATFORM_PLUGINS="admin")
    assert problems_of(platform_env, plugins=["admin", "quant"]) == [
        "--plugins asks for quant, which PLATFORM_PLUGINS (admin) does not allow; add them "
        "there or drop them"
    ]


def exploding(marker: Path) -> str:
    """A plugin whose import leaves a marker file and then fails."""
    return (f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
            "raise RuntimeError('this plugin must not be imported')\n")


def test_unselected_plugin_breaks_the_build_when_selected(
    platform_env: PlatformEnv, tmp_path: Path
) -> None:
    """Control for the two tests below: the exploding plugin does explode when imported."""
    marker = tmp_path / "imported.marker"
    platform_env.plugins.add("boom", exploding(marker))
    platform_env.plugins.add("a", plugin("a"))
    (problem,) = problems_of(only(platform_env, "a", "boom"))
    assert "plugin `boom` (throwaway-boom 0.0.1) failed to import" in problem
    assert "RuntimeError: this plugin must not be imported" in problem
    assert marker.exists()


def test_allowlist_filters_before_import(platform_env: PlatformEnv, tmp_path: Path) -> None:
    marker = tmp_path / "imported.marker"
    platform_env.plugins.add("boom", exploding(marker))
    platform_env.plugins.add("a", plugin("a"))
    host = only(platform_env, "a").host()
    assert list(host.plugins) == ["a"]
    assert not marker.exists()


def test_denylist_filters_before_import(platform_env: PlatformEnv, tmp_path: Path) -> None:
    marker = tmp_path / "imported.marker"
    platform_env.plugins.add("boom", exploding(marker))
    platform_env.set(PLATFORM_DISABLED_PLUGINS="boom")
    host = platform_env.host()
    assert {"admin", "quant"} <= set(host.plugins)
    assert "boom" not in host.plugins
    assert not marker.exists()


def test_plugins_argument_filters_before_import(
    platform_env: PlatformEnv, tmp_path: Path
) -> None:
    marker = tmp_path / "imported.marker"
    platform_env.plugins.add("boom", exploding(marker))
    host = platform_env.host(plugins=["quant"])
    assert list(host.plugins) == ["quant"]
    assert not marker.exists()


# --- all problems at once -------------------------------------------------------------


def test_one_error_lists_every_problem(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", """
        @task(name="a.slow", queue="a", soft_time_limit=5, time_limit=5)
        def slow():
            pass

        @hookimpl
        def register_tasks(register):
            register(job)
            register(slow)

        @hookimpl
        def register_routes(register):
            register(Route(pattern="a.*", queue="a"))
            register(Route(pattern="a.x.*", queue="x"))

        @hookimpl
        def register_beat_entries(register):
            register(BeatEntry(name="a.tick", task="a.nope", schedule=1))
    """))
    with pytest.raises(ConfigurationError) as caught:
        only(platform_env, "a").host(strict=True)
    message = str(caught.value)
    lines = message.splitlines()
    assert lines[0] == "the platform cannot start: 3 problems"
    assert len(lines) == 4, message
    assert all(line.startswith(f"  - {label('a')} ") for line in lines[1:])
    assert "routes `a.x.*` to queue `x`" in lines[1]
    assert "task `a.slow` has soft_time_limit 5s not below time_limit 5s" in lines[2]
    assert "beat entry `a.tick` runs task `a.nope`" in lines[3]
    assert caught.value.problems == [line[4:] for line in lines[1:]]


def test_problems_of_several_plugins_are_all_reported(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("a", plugin("a", job='name="a.job", retry="nope"'))
    platform_env.plugins.add("b", "import platform_no_such_module_xyz\n")
    platform_env.plugins.add("c", plugin("c", """
        @hookimpl
        def register_task(register):
            pass
    """))
    problems = problems_of(only(platform_env, "a", "b", "c"))
    assert len(problems) == 3, problems
    assert any(p.startswith(f"{label('a')} task `a.job` uses retry policy `nope`") for p in problems)
    assert any(p.startswith(f"{label('b')} failed to import") for p in problems)
    assert any(p.startswith(f"{label('c')} implements unknown hook `register_task`")
               for p in problems)


def test_a_single_problem_is_one_line() -> None:
    assert str(ConfigurationError(["only one"])) == "the platform cannot start: only one"


# --- in-process plugins through host.build(extra_plugins=...) -------------------------


@task(name="inproc.job", queue="inproc")
def inproc_job() -> str:
    return "inproc"


def build_extra(*, extra_plugins: list[tuple[str, Any]]) -> host_module.Host:
    """Build with the bundled plugins (and not whatever else is installed) plus ``extra``."""
    return host_module.build(Settings(plugins=["admin", "quant"]), extra_plugins=extra_plugins,
                             strict=True)


def module_plugin(**hooks: Any) -> types.ModuleType:
    module = types.ModuleType("inproc_plugin")
    for name, fn in hooks.items():
        setattr(module, name, fn)
    return module


def test_extra_module_plugin_builds_and_is_tagged_in_process() -> None:
    @hookimpl
    def register_tasks(register: Any) -> None:
        register(inproc_job)

    @hookimpl
    def register_queues(register: Any) -> None:
        register(Queue(name="inproc"))

    built = build_extra(
        extra_plugins=[("inproc", module_plugin(register_tasks=register_tasks,
                                                register_queues=register_queues))])
    assert built.plugins["inproc"].distribution == "registered in process"
    assert built.plugins["inproc"].target == "inproc_plugin"
    assert built.queue_of("inproc.job") == "inproc"
    assert built.app.tasks["inproc.job"].plugin == "inproc"


def test_extra_module_plugin_conflicting_with_admin() -> None:
    @hookimpl
    def register_queues(register: Any) -> None:
        register(Queue(name="default"))

    with pytest.raises(ConfigurationError) as caught:
        build_extra(extra_plugins=[("inproc", module_plugin(register_queues=register_queues))])
    assert caught.value.problems == [
        "plugin `inproc` (registered in process -) declares queue `default`, already declared "
        "by plugin `admin` (platform-admin 0.1.0); rename one of them or disable one plugin"
    ]


def test_extra_module_plugin_with_misspelt_hook() -> None:
    @hookimpl
    def register_queue(register: Any) -> None:
        register(Queue(name="inproc"))

    with pytest.raises(ConfigurationError) as caught:
        build_extra(extra_plugins=[("inproc", module_plugin(register_queue=register_queue))])
    assert caught.value.problems == [
        "plugin `inproc` (registered in process -) implements unknown hook `register_queue` in "
        "inproc_plugin; did you mean `register_queues`?"
    ]


class ClassPlugin:
    """A plugin written as a class; pluggy registers the instance."""

    @hookimpl
    def register_tasks(self, register: Any) -> None:
        register(inproc_job)

    @hookimpl
    def register_queues(self, register: Any) -> None:
        register(Queue(name="inproc"))

    @hookimpl
    def register_routes(self, register: Any) -> None:
        register(Route(pattern="inproc.*", queue="inproc"))

    @hookimpl
    def register_beat_entries(self, register: Any) -> None:
        register(BeatEntry(name="inproc.tick", task="inproc.job", schedule=2))


def test_extra_class_instance_plugin_builds() -> None:
    built = build_extra(extra_plugins=[("inproc", ClassPlugin())])
    assert built.queue_of("inproc.job") == "inproc"
    assert built.app.conf.beat_schedule["inproc.tick"]["task"] == "inproc.job"
    assert built.registry.counts("inproc") == {"tasks": 1, "queues": 1, "routes": 1,
                                            "beat_entries": 1}


def test_extra_class_instance_plugin_hook_raising_and_bad_beat_entry() -> None:
    class Broken(ClassPlugin):
        @hookimpl
        def register_routes(self, register: Any) -> None:
            raise ValueError("no routes today")

        @hookimpl
        def register_beat_entries(self, register: Any) -> None:
            register(BeatEntry(name="inproc.tick", task="print_hello", schedule=2))

    with pytest.raises(ConfigurationError) as caught:
        build_extra(extra_plugins=[("inproc", Broken())])
    assert caught.value.problems == [
        "plugin `inproc` (registered in process -) raised in register_routes: ValueError: "
        "no routes today",
        "plugin `inproc` (registered in process -) beat entry `inproc.tick` runs task "
        "`print_hello`, which no enabled plugin provides (did you mean `admin.print_hello`?); "
        "fix the name or enable the plugin providing it",
    ]


def test_extra_class_instance_plugin_with_wrong_signature() -> None:
    class Wrong(ClassPlugin):
        @hookimpl
        def register_queues(self, register: Any, extra: Any) -> None:
            pass

    with pytest.raises(ConfigurationError) as caught:
        build_extra(extra_plugins=[("inproc", Wrong())])
    (problem,) = caught.value.problems
    assert problem.startswith(
        "plugin `inproc` (registered in process -) has a hook with a wrong signature: "
    )
    assert "extra" in problem


def test_extra_class_instance_plugin_with_undecorated_hook_method() -> None:
    class Forgetful(ClassPlugin):
        def register_routes(self, register: Any) -> None:  # no @hookimpl
            register(Route(pattern="inproc.*", queue="inproc"))

    with pytest.raises(ConfigurationError) as caught:
        build_extra(extra_plugins=[("inproc", Forgetful())])
    assert any("defines `register_routes` without @platform_sdk.hookimpl" in p
               for p in caught.value.problems)


def test_class_instance_routes_declared_as_dicts_are_validated() -> None:
    class Dicts(ClassPlugin):
        @hookimpl
        def register_routes(self, register: Any) -> None:
            register({"pattern": "inproc.*", "queue": "inproc"})
            register({"pattern": " ", "queue": "inproc"})

    with pytest.raises(ConfigurationError) as caught:
        build_extra(extra_plugins=[("inproc", Dicts())])
    (problem,) = caught.value.problems
    assert problem.startswith(
        "plugin `inproc` (registered in process -) registered an invalid item in register_routes:"
    )
    assert "route pattern must not be empty" in problem
