"""The strict model of Celery's task protocol 2 that every delivered message passes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kombu.serialization import loads

from platform_core.host import build
from platform_core.stores.jsontext import depth_over
from platform_core.worker.receive.protocol import Limits, message_problem
from tests.receive.mutants import PROTOCOL_HEADERS, deep, json_values

LIMITS = Limits.for_payload(1_048_576)
SECRET = "s3cr3t-value-7731"


@pytest.fixture(scope="module")
def real() -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """Headers, properties and body of a message Celery itself builds for a platform task."""
    app = build().app
    message = app.amqp.as_task_v2(
        "4b0c2f6e-0000-4000-8000-000000000001", "admin.send_email",
        args=["a@example.com", "hi", "body"], kwargs={}, countdown=5, expires=60,
        time_limit=30, soft_time_limit=20, retries=1, group_id="g1", group_index=0,
        root_id="r", parent_id="p", argsrepr="(...)", kwargsrepr="{}",
        callbacks=[{"task": "admin.cleanup", "args": [], "kwargs": {}, "options": {},
                    "subtask_type": None, "immutable": False, "chord_size": None}],
    )
    body = json.dumps(message.body).encode()
    properties = {**message.properties, "priority": 0}
    return dict(message.headers), properties, body


def problem(headers: Any, properties: Any, body: bytes, *, content_type: Any = "application/json",
            encoding: Any = "utf-8") -> str | None:
    return message_problem(headers, properties, content_type, encoding, body,
                           lambda: loads(body, content_type, encoding,
                                         accept={"application/json"}), LIMITS)


def test_a_message_celery_builds_is_valid(real: tuple[dict[str, Any], dict[str, Any], bytes]
                                          ) -> None:
    headers, properties, body = real
    assert problem(headers, properties, body) is None
    # unknown headers of any shape are no problem: other tools add their own
    assert problem({**headers, "traceparent": "00-x", "x-any": {"a": [1, None]}}, properties,
                   body) is None


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("task", ["x"], "header task should be text"),
    ("id", {"a": 1}, "header id should be text"),
    ("id", None, "header id should be text"),
    ("id", "", "header id string should have at least 1 character"),
    ("timelimit", "abc", "header timelimit should be a list"),
    ("timelimit", [1, 2, 3], "header timelimit list should have at most 2 items"),
    ("timelimit", [float("inf"), None], "header timelimit[0] should be a number of seconds"),
    ("eta", "", "header eta should be an ISO 8601 date and time"),
    ("expires", "soon", "header expires should be an ISO 8601 date and time"),
    ("retries", True, "header retries should be an integer"),
    ("retries", -1, "header retries should be greater than or equal to 0"),
    ("stamps", [], "header stamps should be a mapping"),
    ("ignore_result", "yes", "header ignore_result should be true or false"),
])
def test_each_header_is_checked_by_type(real: tuple[dict[str, Any], dict[str, Any], bytes],
                                        field: str, value: Any, reason: str) -> None:
    headers, properties, body = real
    found = problem({**headers, field: value}, properties, body)
    assert found is not None and found.startswith(reason), found


@pytest.mark.parametrize(("body", "reason"), [
    (b"[[], \"x\", {}]", "body kwargs should be a mapping"),
    (b"[[], {}, \"x\"]", "body embed should be a mapping"),
    (b"[[], {}]", "body embed is missing"),
    (b"42", "body should be [args, kwargs, embed], not a number"),
    (b"[[], {}, {\"password=hunter2\": \"x\"}]",
     "body embed has a key Celery's protocol does not define here"),
    (b"[[], {}, {\"chord\": {\"args\": []}}]", "body embed.chord.task is missing"),
    (b"[[], {}, {\"callbacks\": [{\"task\": 5}]}]", "body embed.callbacks[0].task should be text"),
    (b"\xff\xfe", "body is not JSON in UTF-8"),
    (json.dumps([[deep(101)], {}, {}]).encode(), "body nests lists and mappings deeper than 100"),
])
def test_the_body_is_checked(real: tuple[dict[str, Any], dict[str, Any], bytes], body: bytes,
                             reason: str) -> None:
    headers, properties, _ = real
    found = problem(headers, properties, body)
    assert found is not None and found.startswith(reason), found


def test_content_type_encoding_size_and_protocol_one(
        real: tuple[dict[str, Any], dict[str, Any], bytes]) -> None:
    headers, properties, body = real
    assert "content type should be application/json" in str(
        problem(headers, properties, body, content_type="application/x-python-serialize"))
    assert "content encoding should be utf-8, not 'binary'" in str(
        problem(headers, properties, body, encoding="binary"))
    big = json.dumps([[], {"blob": "x" * LIMITS.body_bytes}, {}]).encode()
    assert "over the 16,777,216 a worker accepts" in str(problem(headers, properties, big))
    assert "protocol 1" in str(problem({}, properties, body))
    assert problem(headers, {**properties, "priority": -1}, body) == \
        "property priority should be greater than or equal to 0"
    assert "content type should be application/json" in str(
        problem(headers, properties, body, content_type="application/x-hunter2"))
    assert "hunter2" not in str(problem(headers, properties, body,
                                        content_type="application/x-hunter2"))


def test_what_celery_accepts_the_model_accepts(
        real: tuple[dict[str, Any], dict[str, Any], bytes]) -> None:
    headers, properties, body = real
    long_id = "job:" + "x" * 300  # Celery sets no length on ids; children inherit root ids
    assert problem({**headers, "id": long_id, "root_id": long_id, "shadow": long_id},
                   {**properties, "correlation_id": long_id, "priority": 300}, body) is None
    assert problem({**headers, "argsrepr": "x" * 100_000}, properties, body) is None


@pytest.mark.parametrize("value", [[10**400, None], [None, 10**400]])
def test_an_integer_past_any_float_is_refused_not_raised(
        real: tuple[dict[str, Any], dict[str, Any], bytes], value: Any) -> None:
    headers, properties, body = real
    assert "header timelimit" in str(problem({**headers, "timelimit": value}, properties, body))
    assert "header countdown" in str(problem({**headers, "countdown": 10**400}, properties,
                                             body))


@pytest.mark.parametrize("eta", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_an_eta_the_system_time_zone_cannot_hold_is_refused(
        real: tuple[dict[str, Any], dict[str, Any], bytes], eta: str) -> None:
    headers, properties, body = real
    assert problem({**headers, "eta": eta}, properties, body) == \
        "header eta should be an ISO 8601 date and time"


def test_depth_is_measured_without_recursion() -> None:
    assert not depth_over(deep(100), 100)
    assert depth_over(deep(101), 100)
    assert depth_over(deep(200_000), 100)  # would overflow any recursive walk
    assert not depth_over("text", 0) and depth_over([], 0)


@settings(max_examples=300, deadline=None)
@given(field=st.one_of(st.sampled_from(PROTOCOL_HEADERS), st.text(max_size=10)),
       value=json_values, wrap=st.sampled_from(["plain", "list", "mapping"]))
def test_a_reason_never_quotes_a_value(real: tuple[dict[str, Any], dict[str, Any], bytes],
                                       field: str, value: Any, wrap: str) -> None:
    """Whatever a header holds, the reason names the field and the type, never the value."""
    headers, properties, body = real
    secret: Any = {"plain": SECRET, "list": [value, SECRET], "mapping": {"k": SECRET}}[wrap]
    for candidate in (value, secret):
        found = problem({**headers, field: candidate}, properties, body)
        assert found is None or SECRET not in found, found
        found = problem(headers, {**properties, field: candidate}, body)
        assert found is None or SECRET not in found, found


def test_a_uuid_task_id_is_sent_as_text() -> None:
    """kombu's JSON would carry a ``uuid.UUID`` id as a typed value the worker refuses."""
    import uuid

    from kombu import Connection

    app = build().app
    chosen = uuid.uuid4()
    with Connection("memory://") as conn, conn.Producer() as producer:
        result = app.tasks["admin.print_hello"].apply_async(task_id=chosen, producer=producer,
                                                            connection=conn)
    assert result.id == str(chosen)
