"""Task arguments are checked against the task's signature where the task is sent.

A real plugin, the real host and the embedded broker: a refused call raises
``InvalidTaskCall`` in the caller and leaves nothing in the broker; an accepted
one is sent with its annotated arguments in JSON form.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from platform_core.errors import ConfigurationError
from platform_core.host import Host
from platform_sdk.exceptions import InvalidTaskCall, PayloadTooLarge
from tests.support import PlatformEnv, output_of

SECRET = "s3cr3t-Value-0451"

CALLS = """
    from datetime import date
    from typing import Annotated, Any

    from pydantic import BaseModel, Field
    from platform_sdk import Queue, Route, hookimpl, task


    class Order(BaseModel):
        sku: str
        qty: Annotated[int, Field(ge=1)]


    @task(name="calls.typed")
    def typed(count: int, day: date, order: Order, tags: list[str] | None = None, *,
              note: str = "") -> dict[str, Any]:
        return {"count": type(count).__name__, "day": type(day).__name__,
                "order": type(order).__name__, "tags": tags, "note": note}


    @task(name="calls.loose")
    def loose(a, b: Any = None, *rest, **extra):
        return [a, b, list(rest), extra]


    @task(name="calls.bound", bind=True)
    def bound(self, n: int) -> int:
        return n


    @task(name="calls.star")
    def star(*values: int, **named: float) -> list[Any]:
        return [list(values), named]


    @hookimpl
    def register_tasks(register):
        for t in (typed, loose, bound, star):
            register(t)


    @hookimpl
    def register_queues(register):
        register(Queue(name="calls"))


    @hookimpl
    def register_routes(register):
        register(Route(pattern="calls.*", queue="calls"))
"""


@pytest.fixture
def host(platform_env: PlatformEnv) -> Host:
    platform_env.plugins.add("calls", CALLS)
    return platform_env.set(PLATFORM_PLUGINS="calls").host()


def sent(env: PlatformEnv) -> list[dict[str, Any]]:
    """The messages in the embedded broker: headers plus decoded body."""
    folder = env.home / "broker" / "queue"
    messages = []
    for path in sorted(folder.iterdir()) if folder.exists() else []:
        raw = json.loads(path.read_text())
        args, kwargs, _ = json.loads(base64.b64decode(raw["body"]))
        messages.append({"task": raw["headers"]["task"], "args": args, "kwargs": kwargs,
                         "argsrepr": raw["headers"]["argsrepr"],
                         "kwargsrepr": raw["headers"]["kwargsrepr"]})
    return messages


def task(host: Host, name: str) -> Any:
    return host.app.tasks[name]


def refused(call: Callable[[], Any]) -> InvalidTaskCall:
    with pytest.raises(InvalidTaskCall) as caught:
        call()
    return caught.value


def test_a_valid_call_is_sent_in_json_form(host: Host, platform_env: PlatformEnv) -> None:
    order = {"sku": "a-1", "qty": 2}
    task(host, "calls.typed").delay(3, date(2026, 1, 31), order, tags=("x", "y"), note="n")
    (message,) = sent(platform_env)
    assert message["args"] == [3, "2026-01-31", {"sku": "a-1", "qty": 2}]
    assert message["kwargs"] == {"tags": ["x", "y"], "note": "n"}
    assert message["argsrepr"] == "(<int>, <date>, <dict>)"
    assert message["kwargsrepr"] == "{'tags': <tuple>, 'note': <str>}"


def test_values_pydantic_can_convert_are_converted(host: Host, platform_env: PlatformEnv) -> None:
    task(host, "calls.typed").delay("3", "2026-01-31", {"sku": "a", "qty": "2"})
    assert sent(platform_env)[0]["args"] == [3, "2026-01-31", {"sku": "a", "qty": 2}]


def test_invalid_arguments_name_the_task_the_parameter_and_the_type(
    host: Host, platform_env: PlatformEnv,
) -> None:
    error = refused(lambda: task(host, "calls.typed").delay(
        SECRET, "2026-02-30", {"sku": SECRET, "qty": 0}, tags=[SECRET, 5]))
    assert str(error) == (
        "task `calls.typed` was called with invalid arguments: "
        "`count`: Input should be a valid integer, unable to parse string as an integer "
        "(expected an integer, got a string); "
        "`day`: Input should be a valid date or datetime, day value is outside expected range "
        "(expected a date (YYYY-MM-DD), got a string); "
        "`order`.qty: Input should be greater than or equal to 1 (expected an object with the fields of Order, got an integer); "
        "`tags`[1]: Input should be a valid string (expected a list of strings or null, got an integer)"
    )
    assert SECRET not in str(error)
    assert error.task == "calls.typed" and len(error.problems) == 4
    assert sent(platform_env) == []


@pytest.mark.parametrize(("args", "kwargs", "problem"), [
    ((3,), {}, "missing a required argument: 'day'"),
    ((1, "2026-01-01", {}, None, "extra"), {}, "too many positional arguments"),
    ((1, "2026-01-01", {}), {"colour": "red"}, "got an unexpected keyword argument 'colour'"),
    ((1, "2026-01-01", {}), {"count": 2}, "multiple values for argument 'count'"),
])
def test_arguments_the_task_does_not_take(host: Host, platform_env: PlatformEnv,
                                          args: tuple[Any, ...], kwargs: dict[str, Any],
                                          problem: str) -> None:
    error = refused(lambda: task(host, "calls.typed").apply_async(args, kwargs))
    assert str(error) == (
        f"task `calls.typed` was called with arguments it does not take: {problem}; it takes "
        "(count: int, day: date, order: Order, tags: list[str] | None = None, *, "
        "note: str = '')"
    )
    assert sent(platform_env) == []


PATHS: dict[str, Callable[[Host, list[Any]], Any]] = {
    "delay": lambda h, a: h.app.tasks["calls.typed"].delay(*a),
    "apply_async": lambda h, a: h.app.tasks["calls.typed"].apply_async(args=a),
    "signature": lambda h, a: h.app.tasks["calls.typed"].s(*a).apply_async(),
    "immutable signature": lambda h, a: h.app.tasks["calls.typed"].si(*a).delay(),
    "signature by name": lambda h, a: h.app.signature("calls.typed", args=a).apply_async(),
    "send_task by name": lambda h, a: h.app.send_task("calls.typed", args=a),
    "group": lambda h, a: __import__("celery").group(h.app.tasks["calls.typed"].s(*a)).delay(),
    "sdk proxy": lambda h, a: __import__("platform_sdk.hosting").hosting.current_app().tasks[
        "calls.typed"].delay(*a),
}


@pytest.mark.parametrize("path", PATHS)
def test_every_way_of_sending_is_checked(host: Host, platform_env: PlatformEnv,
                                         path: str) -> None:
    error = refused(lambda: PATHS[path](host, ["x", "2026-01-01", {"sku": "a", "qty": 1}]))
    assert str(error).startswith("task `calls.typed` was called with invalid arguments: `count`")
    assert sent(platform_env) == []
    PATHS[path](host, [1, "2026-01-01", {"sku": "a", "qty": 1}])  # control: this one is sent
    assert [m["args"][0] for m in sent(platform_env)] == [1]


def test_the_sdk_task_proxy_is_checked(platform_env: PlatformEnv) -> None:
    from platform_quant.tasks import heavy_task, process_data

    platform_env.set(PLATFORM_PLUGINS="quant").host()
    error = refused(lambda: process_data.delay("seven"))
    assert str(error).startswith("task `quant.process_data` was called with invalid arguments: "
                                 "`data_id`: Input should be a valid integer")
    refused(lambda: heavy_task.s(param="x", rounds=[1]).apply_async())
    assert sent(platform_env) == []


def test_unannotated_and_any_parameters_accept_any_json(host: Host,
                                                        platform_env: PlatformEnv) -> None:
    task(host, "calls.loose").delay({"a": [1, None]}, 2.5, "r1", ("r", 2), k={"deep": True})
    (message,) = sent(platform_env)
    assert message["args"] == [{"a": [1, None]}, 2.5, "r1", ["r", 2]]
    assert message["kwargs"] == {"k": {"deep": True}}


def test_arguments_that_are_not_json_are_refused(host: Host, platform_env: PlatformEnv) -> None:
    error = refused(lambda: task(host, "calls.loose").delay({1, 2}))
    assert str(error).startswith("task `calls.loose`: its arguments cannot be sent as JSON (")
    assert sent(platform_env) == []


def test_bound_task_is_checked_without_self(host: Host, platform_env: PlatformEnv) -> None:
    error = refused(lambda: task(host, "calls.bound").delay("two"))
    assert "`n`: Input should be a valid integer" in str(error)
    task(host, "calls.bound").delay(2)
    assert sent(platform_env)[0]["args"] == [2]


def test_star_parameters_are_checked_item_by_item(host: Host, platform_env: PlatformEnv) -> None:
    error = refused(lambda: task(host, "calls.star").delay(1, "2", "three", w="heavy"))
    assert str(error) == (
        "task `calls.star` was called with invalid arguments: "
        "`*values` item 2: Input should be a valid integer, unable to parse string as an integer "
        "(expected an integer, got a string); "
        "`**named` key `w`: Input should be a valid number, unable to parse string as a number "
        "(expected a number, got a string)"
    )
    task(host, "calls.star").delay(1, "2", w="0.5")
    assert sent(platform_env)[0]["args"] == [1, 2]
    assert sent(platform_env)[0]["kwargs"] == {"w": 0.5}


def test_the_error_is_catchable_as_type_or_value_error(host: Host) -> None:
    with pytest.raises(TypeError):
        task(host, "calls.bound").delay()
    with pytest.raises(ValueError, match=r"calls\.bound"):
        task(host, "calls.bound").delay("x")


def test_a_serializer_other_than_json_is_refused(host: Host, platform_env: PlatformEnv) -> None:
    error = refused(lambda: task(host, "calls.bound").apply_async((1,), serializer="pickle"))
    assert str(error) == ("task `calls.bound`: serializer 'pickle' is refused; the platform "
                          "sends and accepts JSON only, so drop the serializer option")
    task(host, "calls.bound").apply_async((1,), serializer="json")
    assert len(sent(platform_env)) == 1


# --- payload size ---------------------------------------------------------------------


def test_payload_over_the_default_limit_is_refused(host: Host, platform_env: PlatformEnv) -> None:
    big = "x" * (1 << 20)
    with pytest.raises(PayloadTooLarge) as caught:
        task(host, "calls.loose").delay(big)
    assert caught.value.size == (1 << 20) + len('[[""], {}]')
    assert caught.value.limit == 1 << 20
    assert str(caught.value) == (
        f"task `calls.loose`: its arguments are {caught.value.size:,} bytes as JSON, over the "
        "limit of 1,048,576 (max_payload_bytes, PLATFORM_MAX_PAYLOAD_BYTES); pass a reference to "
        "the data (a path, a key, a URL) instead of the data"
    )
    assert sent(platform_env) == []
    task(host, "calls.loose").delay("x" * 100_000)
    assert len(sent(platform_env)) == 1


def test_payload_limit_is_a_setting_and_covers_tasks_sent_by_name(
    platform_env: PlatformEnv,
) -> None:
    platform_env.plugins.add("calls", CALLS)
    host = platform_env.set(PLATFORM_PLUGINS="calls", PLATFORM_MAX_PAYLOAD_BYTES="100").host()
    with pytest.raises(PayloadTooLarge):
        host.app.send_task("elsewhere.unknown_here", args=["y" * 100])
    with pytest.raises(PayloadTooLarge):
        task(host, "calls.loose").delay(None, b="é" * 20)  # JSON escapes: 6 bytes each
    host.app.send_task("elsewhere.unknown_here", args=["y" * 80])  # not checked, but sent
    assert [m["task"] for m in sent(platform_env)] == ["elsewhere.unknown_here"]


# --- in-process runs (the SDK's test helper) ------------------------------------------


def test_eager_runs_check_at_the_call_and_give_the_function_its_types(
    platform_env: PlatformEnv, tmp_path: Path,
) -> None:
    platform_env.plugins.add("calls", CALLS)
    platform_env.prepare()
    from platform_sdk.testing import platform

    with platform("calls", home=tmp_path / "eager") as app:
        typed = app.tasks["calls.typed"]
        refused(lambda: typed.delay("x", "2026-01-01", {}))
        result = typed.delay("3", date(2026, 1, 1), {"sku": "a", "qty": 1}, note="n").get()
        assert result == {"count": "int", "day": "date", "order": "Order", "tags": None,
                          "note": "n"}
        run = app.tasks["calls.bound"].apply(args=["nine"])  # runs locally, unchecked
        assert run.state == "FAILURE"
        assert isinstance(run.result, InvalidTaskCall)
        assert str(run.result).startswith("task `calls.bound` received invalid arguments: `n`")


# --- signatures the platform cannot check ---------------------------------------------


@pytest.mark.parametrize(("code", "problem"), [
    ("class Thing:\n    pass\n\n@task(name='odd.job', queue='odd')\ndef job(x: Thing):\n    pass",
     "task `odd.job` parameter `x` is annotated with Thing, which pydantic cannot validate; "
     "task arguments travel as JSON"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from decimal import Decimal\n\n"
     "@task(name='odd.job', queue='odd')\ndef job(x: 'Decimal'):\n    pass",
     "task `odd.job` parameter `x` has the annotation 'Decimal', which cannot be evaluated "
     "(NameError: name 'Decimal' is not defined); import that type at run time"),
    ("@task(name='odd.job', queue='odd', bind=True)\ndef job():\n    pass",
     "task `odd.job` has bind=True but its function takes no first parameter for the task "
     "instance; add `self` as the first parameter"),
])
def test_signatures_that_cannot_be_checked_break_the_plugin(
    platform_env: PlatformEnv, code: str, problem: str,
) -> None:
    platform_env.plugins.add("odd", (
        "from platform_sdk import Queue, hookimpl, task\n\n" + code + "\n\n"
        "@hookimpl\ndef register_tasks(register):\n    register(job)\n\n"
        "@hookimpl\ndef register_queues(register):\n    register(Queue(name='odd'))\n"))
    host = platform_env.set(PLATFORM_PLUGINS="odd,admin").host()
    (error,) = host.broken["odd"].errors
    assert error.startswith(f"plugin `odd` (throwaway-odd 0.0.1) {problem}")


def test_beat_entry_arguments_are_checked_at_start_up(platform_env: PlatformEnv) -> None:
    platform_env.plugins.add("calls", CALLS + """
    from platform_sdk import BeatEntry

    @hookimpl
    def register_beat_entries(register):
        register(BeatEntry(name="calls.tick", task="calls.bound", schedule=5, args=["n"]))
    """)
    with pytest.raises(ConfigurationError) as caught:
        platform_env.set(PLATFORM_PLUGINS="calls").host(strict=True)
    assert caught.value.problems == [
        "plugin `calls` (throwaway-calls 0.0.1) beat entry `calls.tick`: task `calls.bound` was "
        "called with invalid arguments: `n`: Input should be a valid integer, unable to parse "
        "string as an integer (expected an integer, got a string)"
    ]


# --- platform send --------------------------------------------------------------------


def test_platform_send_refuses_a_bad_call_before_reaching_the_broker(
    platform_env: PlatformEnv,
) -> None:
    platform_env.set(PLATFORM_BROKER_URL="redis://127.0.0.1:1/0")
    result = platform_env.run("send", "quant.process_data", "--args", f'["{SECRET}"]')
    assert result.returncode == 2, output_of(result)
    assert result.stderr.strip().splitlines() == [
        "Error: task `quant.process_data` was called with invalid arguments: `data_id`: Input "
        "should be a valid integer, unable to parse string as an integer (expected an integer, got a string)"
    ]
    assert SECRET not in result.stdout + result.stderr
    missing = platform_env.run("send", "quant.process_data")
    assert missing.returncode == 2, output_of(missing)
    assert "missing a required argument: 'data_id'" in missing.stderr
