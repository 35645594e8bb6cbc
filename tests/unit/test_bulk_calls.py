"""Bulk sends without a broker: the forms of a call, ids, and when a template is refused."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kombu.utils.json import dumps

from platform_core.app.arguments import EnqueueChecks
from platform_core.app.bulk.calls import Checked, check, read
from platform_core.app.bulk.send import Sent, new_ids
from platform_core.app.bulk.template import EnvelopeTemplate
from platform_sdk.exceptions import InvalidTaskCall


def test_a_call_is_positional_keyword_or_a_pair() -> None:
    assert read((1, 2)) == ((1, 2), {})
    assert read([1, 2]) == ([1, 2], {})
    assert read({"a": 1}) == ((), {"a": 1})
    assert read(((1,), {"b": 2})) == ((1,), {"b": 2})
    assert read(([1], {"b": 2})) == ([1], {"b": 2})
    assert read(((), {})) == ((), {})
    assert read((([1, 2], {"a": 1}), {})) == (([1, 2], {"a": 1}), {})  # a list and a dict
    assert read(5) is None and read("abc") is None and read({1, 2}) is None


def test_checks_name_the_first_bad_call_and_refuse_per_message_options() -> None:
    checks = EnqueueChecks({}, max_payload_bytes=100)
    with pytest.raises(InvalidTaskCall, match=r"^call 1 of 3: .*a int; pass a tuple"):
        check(checks, "t.x", [(1,), 7, (3,)], {})
    with pytest.raises(InvalidTaskCall, match=r"^call 2 of 3: task `t.x`: its arguments are"):
        check(checks, "t.x", [(1,), (2,), ("y" * 200,)], {})
    for option in ("task_id", "link", "chord", "group_id"):
        with pytest.raises(InvalidTaskCall, match=f"{option} cannot be shared"):
            check(checks, "t.x", [(1,)], {option: "x"})
    with pytest.raises(InvalidTaskCall, match="serializer 'pickle' is refused"):
        check(checks, "t.x", [(1,)], {"serializer": "pickle"})
    items = check(checks, "t.x", iter([(1, "a"), {"k": None}]), {})  # any iterable
    assert [(i.args_json, i.kwargs_json, i.argsrepr, i.kwargsrepr) for i in items] == [
        ('[1, "a"]', "{}", "(<int>, <str>)", "{}"), ("[]", '{"k": null}', "()", "{'k': <NoneType>}")]


@given(st.integers(1, 300))
def test_new_ids_are_distinct_version_4_uuids(count: int) -> None:
    ids = new_ids(count)
    assert len(set(ids)) == count
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


class _App:
    def AsyncResult(self, task_id: str, task_name: str = "") -> tuple[str, str]:
        return (task_id, task_name)


def test_sent_is_a_sequence_in_input_order_made_lazily() -> None:
    sent = Sent(_App(), "t.x", ["a", "b", "c"])
    assert len(sent) == 3 and sent.ids == ["a", "b", "c"]
    assert sent[0] == ("a", "t.x") and sent[-1] == ("c", "t.x")
    assert sent[1:] == [("b", "t.x"), ("c", "t.x")]
    assert [r[0] for r in sent] == ["a", "b", "c"]
    assert sent[0] is sent[0]


def message(task_id: str, item: Checked, **extra_headers: Any) -> dict[str, Any]:
    body = f"[{item.args_json}, {item.kwargs_json}, {{\"callbacks\": null}}]"
    return {
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"id": task_id, "root_id": task_id, "argsrepr": item.argsrepr,
                    "kwargsrepr": item.kwargsrepr, "task": "t.x", **extra_headers},
        "properties": {"correlation_id": task_id, "delivery_tag": "tag-1",
                       "body_encoding": "base64", "delivery_info": {"exchange": "x"}},
    }


def test_a_template_reproduces_the_first_message_and_fills_the_others() -> None:
    checks = EnqueueChecks({}, 10_000)
    first, other = check(checks, "t.x", [(1,), ("ü{}\"",)], {})
    template = EnvelopeTemplate.derive(message("id-1", first), "id-1", first, None)
    assert template is not None
    filled = template.fill("id-2", "tag-2", other, None)
    assert filled == dumps(message("id-2", other) | {"properties": {
        "correlation_id": "id-2", "delivery_tag": "tag-2", "body_encoding": "base64",
        "delivery_info": {"exchange": "x"}}})


def test_no_template_when_the_id_appears_where_it_would_not_be_replaced() -> None:
    checks = EnqueueChecks({}, 10_000)
    (first,) = check(checks, "t.x", [(1,)], {})
    derived = message("id-1", first, trace_note="sent as id-1")  # a header built from the id
    assert EnvelopeTemplate.derive(derived, "id-1", first, None) is None
    compressed = message("id-1", first)
    compressed["body"] = base64.b64encode(b"not the arguments").decode()
    assert EnvelopeTemplate.derive(compressed, "id-1", first, None) is None
