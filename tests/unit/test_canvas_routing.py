"""Which queue each of Celery's built-in canvas tasks goes to, and the stamped steps.

A real host of real throwaway plugins (nothing is sent): the decision
``PlatformCelery.send_task`` applies to every message, called with the arguments and
options Celery passes it.
"""

from __future__ import annotations

from typing import Any

import pytest
from celery import chain, chord, group

from platform_core.app.builder import host_queue
from platform_core.app.canvas import CanvasRouting
from platform_core.host import Host
from platform_sdk.exceptions import InvalidTaskCall
from tests.canvas_plugins import write_plugins
from tests.support import PlatformEnv

# What Celery's Task.apply_async passes for a task without options of its own.
NO_DESTINATION = {"queue": None, "exchange": None, "routing_key": None, "link": None,
                  "link_error": None}


@pytest.fixture
def host(platform_env: PlatformEnv) -> Host:
    write_plugins(platform_env.plugins)
    return platform_env.set(PLATFORM_PLUGINS="abacus,tally").host()


def route(host: Host, name: str, args: Any = (), kwargs: Any = None, **options: Any
          ) -> tuple[dict[str, Any], Any]:
    routing = host.app.canvas_routing
    assert isinstance(routing, CanvasRouting)
    sent = {**NO_DESTINATION, **options}
    _, kwargs = routing(name, args, kwargs, sent)
    return sent, kwargs


def sig(host: Host, name: str, *args: Any) -> Any:
    return host.app.tasks[name].s(*args)


def test_a_plain_message_is_left_as_it_is(host: Host) -> None:
    options, kwargs = route(host, "abacus.add", (1, 2), {})
    assert options == NO_DESTINATION and kwargs == {}


@pytest.mark.parametrize("builtin", ["celery.starmap", "celery.chunks"])
def test_starmap_and_chunks_go_to_the_queue_of_the_task_they_run(host: Host,
                                                                 builtin: str) -> None:
    kwargs = {"task": dict(sig(host, "tally.count")), "it": [([1],), ([2, 3],)], "n": 1}
    options, sent = route(host, builtin, (), kwargs)
    assert options["queue"] == "tally"
    assert sent["it"] == [[[1]], [[2, 3]]]  # checked, in JSON form
    assert sent["task"]["options"]["queue"] == "tally"  # and the task itself stamped


def test_map_items_are_single_arguments_checked_against_the_task(host: Host) -> None:
    options, sent = route(host, "celery.map", (), {"task": sig(host, "abacus.double"),
                                                   "it": [1, "2"]})
    assert options["queue"] == "abacus" and sent["it"] == [1, 2]
    with pytest.raises(InvalidTaskCall) as caught:
        route(host, "celery.map", (), {"task": sig(host, "abacus.double"), "it": [1, "two"]})
    assert str(caught.value).startswith(
        "`celery.map` item 1: task `abacus.double` was called with invalid arguments: `x`: ")


def test_a_starmap_item_that_is_no_argument_list_is_refused(host: Host) -> None:
    with pytest.raises(InvalidTaskCall) as caught:
        route(host, "celery.starmap", (), {"task": sig(host, "abacus.add"), "it": [(1, 2), 3]})
    assert str(caught.value) == (
        "`celery.starmap` of task `abacus.add`: item 1 is a int, not a list of arguments; "
        "pass one list (or tuple) of arguments per call")


def test_the_callers_destination_is_kept(host: Host) -> None:
    kwargs = {"task": sig(host, "abacus.add"), "it": [(1, 2)]}
    assert route(host, "celery.starmap", (), kwargs, queue="tally")[0]["queue"] == "tally"
    options, _ = route(host, "celery.starmap", (), kwargs, exchange="x", routing_key="k")
    assert options["queue"] is None and options["routing_key"] == "k"


def test_a_starmap_of_a_task_no_enabled_plugin_provides_is_refused(host: Host) -> None:
    with pytest.raises(InvalidTaskCall) as caught:
        route(host, "celery.starmap", (), {"task": host.app.signature("gone.task"), "it": []})
    assert str(caught.value) == (
        "`celery.starmap` runs task `gone.task`, which no plugin enabled in this process "
        "provides, so the platform cannot tell which queue its workers consume; enable the "
        "plugin that provides it (PLATFORM_PLUGINS) or pass queue=... to apply_async")


@pytest.mark.parametrize("body", ["task", "chain", "group"])
def test_chord_unlock_goes_to_the_queue_of_the_chord_body(host: Host, body: str) -> None:
    count = sig(host, "tally.count")
    callback = {"task": count, "chain": chain(count, sig(host, "abacus.double")),
                "group": group(count, sig(host, "abacus.double"))}[body]
    # As Celery's fallback_chord_unlock sends it: the body's queue, routed by its name.
    options, _ = route(host, "celery.chord_unlock", ("group-id", callback),
                       {"result": []}, queue="default", countdown=1)
    assert options["queue"] == "tally"


def test_chord_unlock_respects_a_queue_given_to_the_body(host: Host) -> None:
    callback = sig(host, "tally.count").set(queue="elsewhere")
    options, _ = route(host, "celery.chord_unlock", ("group-id", callback), {},
                       queue="elsewhere")
    assert options["queue"] == "elsewhere"


@pytest.mark.parametrize("builtin", ["celery.accumulate", "celery.backend_cleanup"])
def test_builtins_without_a_task_go_to_the_callers_queue(host: Host, builtin: str) -> None:
    assert route(host, builtin, ())[0]["queue"] == "abacus"  # no caller: the host queue
    routing = host.app.canvas_routing
    assert isinstance(routing, CanvasRouting)
    inside = CanvasRouting(routing.queues, routing.host_queue, routing.calls,
                           lambda: host.app.tasks["tally.count"])  # as in a tally worker
    options = dict(NO_DESTINATION)
    inside(builtin, (), {}, options)
    assert options["queue"] == "tally"


def test_the_host_queue_is_default_when_a_plugin_declares_it(platform_env: PlatformEnv
                                                             ) -> None:
    write_plugins(platform_env.plugins)
    with_admin = platform_env.set(PLATFORM_PLUGINS="admin,tally").host()
    assert host_queue(with_admin.registry) == "default"


def test_legacy_group_sent_by_name_goes_to_its_first_task(host: Host) -> None:
    tasks = [dict(sig(host, "tally.count")), dict(sig(host, "abacus.add"))]
    options, _ = route(host, "celery.group", (tasks, None, "gid", ()), {})
    assert options["queue"] == "tally"


def test_steps_sent_later_are_stamped_with_their_queues(host: Host) -> None:
    count, double = sig(host, "tally.count"), sig(host, "abacus.double")
    elsewhere = sig(host, "abacus.add").set(queue="elsewhere")
    nested = group(double.clone(), chord([count.clone()], elsewhere))
    unknown = host.app.signature("gone.task")
    steps = [count, nested, unknown]
    link = sig(host, "abacus.total")
    options, _ = route(host, "abacus.add", (1, 2), {}, chain=steps, link=[link])
    assert options["queue"] is None  # the message itself is routed as before
    assert count.options["queue"] == "tally" and link.options["queue"] == "abacus"
    assert "queue" not in nested.options  # a group's queue would apply to all its tasks
    (first, inner_chord) = nested.tasks
    assert first.options["queue"] == "abacus"
    assert inner_chord.tasks[0].options["queue"] == "tally"
    assert inner_chord.body.options["queue"] == "elsewhere"
    assert "queue" not in unknown.options  # unknown here: Celery's own routing decides


def test_the_chord_body_of_a_replacing_group_goes_to_the_replacing_task(host: Host) -> None:
    """`self.replace(group)` sends the group with `celery.accumulate` as chord body."""
    routing = host.app.canvas_routing
    assert isinstance(routing, CanvasRouting)
    inside = CanvasRouting(routing.queues, routing.host_queue, routing.calls,
                           lambda: host.app.tasks["tally.count"])
    body = host.app.tasks["celery.accumulate"].s(index=0)
    options = {**NO_DESTINATION, "chord": body}
    inside("abacus.double", (1,), {}, options)
    assert body.options["queue"] == "tally"
