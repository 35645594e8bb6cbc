"""``platform inspect`` never prints a task's arguments, whatever the workers reply."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from platform_core.cli.inspect import without_arguments

SECRET = "hunter2-in-an-argument"

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


def request(args: Any, kwargs: Any) -> dict[str, Any]:
    return {"id": "0b0e", "name": "acme.charge", "args": args, "kwargs": kwargs,
            "type": "acme.charge", "hostname": "w1@vm", "time_start": None,
            "acknowledged": False, "delivery_info": {"routing_key": "acme"}, "worker_pid": 1}


def test_each_reply_shape_shows_the_types_only() -> None:
    replies = {
        "w1@vm": [request([SECRET, 3], {"token": SECRET})],                        # active
        "w2@vm": [{"eta": "2026-01-01T00:00:00+00:00", "priority": 6,
                   "request": request([SECRET], {})}],                             # scheduled
        "w3@vm": {"0b0e": ["active", request([], {"card": {"number": SECRET}})]},  # query_task
        "w4@vm": [request(f"('{SECRET}',)", f"{{'token': '{SECRET}'}}")],          # argsrepr
    }
    shown = without_arguments(replies)
    assert SECRET not in repr(shown)
    assert shown["w1@vm"][0]["args"] == "(<str>, <int>)"
    assert shown["w1@vm"][0]["kwargs"] == "{'token': <str>}"
    assert shown["w2@vm"][0]["request"]["args"] == "(<str>,)"
    assert shown["w3@vm"]["0b0e"][1]["kwargs"] == "{'card': <dict>}"
    assert shown["w4@vm"][0]["args"] == "(hidden)"
    assert shown["w1@vm"][0]["name"] == "acme.charge"  # everything else as it was


@given(args=st.lists(JSON, max_size=3), kwargs=st.dictionaries(st.text(max_size=5), JSON,
                                                             max_size=3))
def test_no_argument_value_survives(args: list[Any], kwargs: dict[str, Any]) -> None:
    marked = [SECRET, *args]
    shown = without_arguments({"w@h": [{"request": request(marked, {**kwargs, "k": SECRET})}]})
    assert SECRET not in repr(shown)
