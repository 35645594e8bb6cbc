"""Mutations of a real captured task envelope, as Hypothesis strategies.

An envelope is kombu's virtual-transport form of a message (what Redis lists and the
embedded broker's files hold): ``{"body": base64 text, "content-type", "content-encoding",
"headers", "properties": {..., "body_encoding", "delivery_tag", "delivery_info"}}``.
RabbitMQ gets the same message as a frame (:func:`tests.receive.lab.to_amqp`).

A :class:`Mutant` is a list of edits applied to a copy of the captured envelope, or
raw bytes that replace the whole queue item. Every mutant carries its marker in
four places (the task id, the ``x-fuzz-mark`` header, the correlation id, a keyword
argument), and an edit changes at most one of them, so its dead letter or its run
can be found.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

MARK_HEADER = "x-fuzz-mark"

PROTOCOL_HEADERS = (
    "task", "id", "lang", "root_id", "parent_id", "group", "group_index", "shadow", "eta",
    "expires", "countdown", "retries", "timelimit", "argsrepr", "kwargsrepr", "origin",
    "ignore_result", "replaced_task_nesting", "stamped_headers", "stamps", "meth",
    "compression",
)
PROPERTIES = ("correlation_id", "reply_to", "priority", "delivery_mode", "delivery_tag",
              "delivery_info", "body_encoding")
BUILTIN_TASKS = ("celery.chord_unlock", "celery.backend_cleanup", "celery.accumulate",
                 "celery.map", "celery.starmap", "celery.chunks", "celery.group",
                 "celery.chain", "celery.chord")
CONTENT_TYPES = ("application/json", "application/x-python-serialize", "application/x-yaml",
                 "application/data", "text/plain", "", "APPLICATION/JSON", "application/x-msgpack")


def deep(depth: int, leaf: Any = 0) -> Any:
    """``{"a": [{"a": ...}]}`` nested ``depth`` times, built without recursion."""
    value: Any = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


@dataclass(frozen=True)
class Deep:
    """A value nested ``depth`` times, written as JSON text without recursion (json.dumps
    would recurse, and give up near 1,000 levels)."""

    depth: int

    def text(self) -> str:
        parts_open, parts_close = [], []
        for level in range(self.depth):
            if level % 2:
                parts_open.append("[")
                parts_close.append("]")
            else:
                parts_open.append('{"a": ')
                parts_close.append("}")
        return "".join(reversed(parts_open)) + "0" + "".join(parts_close)


def encode(value: Any) -> str:
    """JSON text of ``value``, with each :class:`Deep` written out in full."""
    found: list[Deep] = []

    def placeholder(obj: Any) -> str:
        if isinstance(obj, Deep):
            found.append(obj)
            return f"@@deep{len(found) - 1}@@"
        raise TypeError(type(obj).__name__)

    text = json.dumps(value, default=placeholder)
    for index, item in enumerate(found):
        text = text.replace(f'"@@deep{index}@@"', item.text(), 1)
    return text


def plain(value: Any) -> Any:
    """``value`` with each :class:`Deep` built as nested objects (for AMQP headers)."""
    if isinstance(value, Deep):
        return deep(value.depth)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["", " ", "!!!", "NDI=", "bnVsbA==", "abc", "x" * 300,
                     "2020-01-01T00:00:00", "2020-13-45T99:99:99", "1999-01-01T00:00:00+00:00",
                     "0001-01-01T00:00:00+14:00", "now", "00000000-0000-0000-0000-000000000000",
                     "\u0000", "\ud800x", "fuzz.record", "celery.chord_unlock"]),
)
# kombu's JSON reader turns {"__type__": ..., "__value__": ...} into Python values (bytes,
# datetime, Decimal, UUID); a marker with a wrong value makes it raise inside the transport
typed = st.fixed_dictionaries({
    "__type__": st.sampled_from(["bytes", "uuid", "datetime", "date", "time", "decimal",
                                 "set", "unknown"]),
    "__value__": st.one_of(scalars, st.sampled_from(
        ["eA==", "2020-01-01T00:00:00", "1.5", "12:00:00", "00000000-0000-0000-0000-0000000000"
         "01"])),
})
json_values = st.recursive(
    st.one_of(scalars, typed),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
nested = st.one_of(
    st.integers(min_value=1, max_value=120).map(Deep),
    st.integers(min_value=180, max_value=220).map(Deep),  # around the envelope's limit
    st.integers(min_value=900, max_value=1000).map(Deep),  # where kombu's own writers recurse
    st.sampled_from([400, 3000, 10_000]).map(Deep),
)
values = st.one_of(json_values, json_values, json_values, nested)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@st.composite
def bodies(draw: st.DrawFn) -> Any:
    """A replacement for the decoded body ``[args, kwargs, embed]``."""
    return draw(st.one_of(
        values,
        st.tuples(values, values, values).map(list),
        st.tuples(st.lists(json_values, max_size=3), values, st.just({})).map(list),
        st.tuples(st.just([]), st.just({}), values).map(list),
        st.tuples(st.just([]), st.just({}), st.dictionaries(
            st.sampled_from(["callbacks", "errbacks", "chain", "chord", "extra"]),
            st.one_of(values, st.lists(st.fixed_dictionaries(
                {"task": st.one_of(st.text(max_size=10), values)},
                optional={"args": values, "kwargs": values, "options": values,
                          "subtask_type": values, "immutable": values}), max_size=2)),
            max_size=3)).map(list),
        st.lists(st.just([]), min_size=0, max_size=5),
        st.tuples(st.just([Deep(150)]), st.just({}), st.just({})).map(list),
        st.integers(min_value=1, max_value=300_000).map(
            lambda n: [[], {"blob": "x" * n}, {}]),
    ))


Edit = tuple[str, ...] | tuple[str, str, Any]


@st.composite
def edits(draw: st.DrawFn) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(
        ["header", "header", "header", "drop-header", "headers", "property", "property",
         "drop-property", "info", "content-type", "content-encoding", "body", "body",
         "body-text", "body-bytes", "encoding"]))
    if kind == "header":
        key = draw(st.one_of(st.sampled_from(PROTOCOL_HEADERS), st.text(max_size=12)))
        if key == MARK_HEADER:
            key = "x-other"
        value = draw(st.one_of(values, st.sampled_from(BUILTIN_TASKS))) if key == "task" \
            else draw(values)
        if key == "id" and isinstance(value, str) and value:
            value = None  # a valid other id would hide the marker: use an invalid one
        return ("header", key, value)
    if kind == "drop-header":
        return ("drop-header", draw(st.sampled_from([h for h in PROTOCOL_HEADERS
                                                      if h != "compression"])))
    if kind == "headers":
        return ("headers", draw(st.one_of(st.just({}), values.filter(
            lambda v: not isinstance(v, dict)))))
    if kind == "property":
        key = draw(st.sampled_from(PROPERTIES))
        value = draw(values)
        if key == "correlation_id" and isinstance(value, str) and value:
            value = None
        return ("property", key, value)
    if kind == "drop-property":
        return ("drop-property", draw(st.sampled_from(PROPERTIES)))
    if kind == "info":
        return ("info", draw(st.sampled_from(["exchange", "routing_key"])), draw(values))
    if kind == "content-type":
        return ("content-type", draw(st.one_of(st.sampled_from(CONTENT_TYPES), values)))
    if kind == "content-encoding":
        return ("content-encoding", draw(st.one_of(
            st.sampled_from(["utf-8", "binary", "ascii", "latin-1", "UTF-8", ""]), values)))
    if kind == "body":
        return ("body", draw(bodies()))
    if kind == "body-text":
        return ("body-text", draw(st.one_of(st.text(max_size=60), st.sampled_from(
            ["!!!", "", "NDI=", "bnVsbA==", "W10=", "e30=", "W1tdLHt9XQ=="]))))
    if kind == "body-bytes":
        return ("body-bytes", draw(st.binary(max_size=80)))
    return ("encoding", draw(st.sampled_from(
        ["json-text", "drop-base64", "kombu-types"])))


@dataclass
class Mutant:
    edits: list[tuple[Any, ...]] = field(default_factory=list)
    raw: bytes | None = None  # replaces the whole queue item (Redis, embedded broker)

    def describe(self) -> str:
        if self.raw is not None:
            return f"raw item of {len(self.raw)} bytes: {self.raw[:60]!r}"
        shown = []
        for edit in self.edits:
            text = repr(edit)
            shown.append(text if len(text) < 160 else text[:157] + "...")
        return "; ".join(shown)


raw_items = st.one_of(
    st.binary(max_size=120),
    st.sampled_from([b"", b"null", b"[]", b"{}", b"42", b'"text"', b"{truncated",
                     b'{"body": "W10=", "properties": {}}',
                     b'{"properties": {"delivery_info": {"exchange": "", "routing_key": "x"}}}']),
    json_values.map(lambda v: json.dumps(v).encode()),
)

mutants = st.one_of(
    st.lists(edits(), min_size=1, max_size=2).map(lambda e: Mutant(edits=e)),
    st.lists(edits(), min_size=1, max_size=2).map(lambda e: Mutant(edits=e)),
    st.lists(edits(), min_size=1, max_size=2).map(lambda e: Mutant(edits=e)),
    raw_items.map(lambda raw: Mutant(raw=raw)),
)


def marked(captured: dict[str, Any], mark: str) -> dict[str, Any]:
    """A copy of the captured envelope carrying ``mark`` as id, header, correlation id and
    keyword argument."""
    envelope = copy.deepcopy(captured)
    args, kwargs, embed = json.loads(base64.b64decode(envelope["body"]))
    envelope["body"] = _b64(json.dumps([args, {**kwargs, "mark": mark}, embed]).encode())
    envelope["headers"]["id"] = mark
    envelope["headers"]["root_id"] = mark
    envelope["headers"][MARK_HEADER] = mark
    envelope["properties"]["correlation_id"] = mark
    return envelope


def apply(envelope: dict[str, Any], edit: tuple[Any, ...]) -> None:
    kind = edit[0]
    headers = envelope.get("headers")
    properties = envelope.get("properties")
    if kind == "header" and isinstance(headers, dict):
        headers[edit[1]] = edit[2]
    elif kind == "drop-header" and isinstance(headers, dict):
        headers.pop(edit[1], None)
    elif kind == "headers":
        envelope["headers"] = edit[1]
    elif kind == "property" and isinstance(properties, dict):
        properties[edit[1]] = edit[2]
    elif kind == "drop-property" and isinstance(properties, dict):
        properties.pop(edit[1], None)
    elif kind == "info" and isinstance(properties, dict) \
            and isinstance(properties.get("delivery_info"), dict):
        properties["delivery_info"][edit[1]] = edit[2]
    elif kind in ("content-type", "content-encoding"):
        envelope[kind] = edit[1]
    elif kind == "body":
        envelope["body"] = _b64(encode(edit[1]).encode())
    elif kind == "body-text":
        envelope["body"] = edit[1]
    elif kind == "body-bytes":
        envelope["body"] = _b64(edit[1])
    elif kind == "encoding" and isinstance(properties, dict):
        if edit[1] == "json-text":  # the body as plain text, no base64
            properties.pop("body_encoding", None)
            try:
                raw = base64.b64decode(envelope["body"])
            except (ValueError, TypeError):  # an earlier edit put text that is no base64
                return
            try:
                envelope["body"] = raw.decode()
            except UnicodeDecodeError:  # an earlier edit put bytes there: keep them as text
                envelope["body"] = raw.decode("latin-1")
        elif edit[1] == "drop-base64":
            properties.pop("body_encoding", None)
        else:  # kombu's typed JSON in the body: a datetime, a decimal, bytes
            envelope["body"] = _b64(json.dumps([[{"__type__": "datetime",
                                                  "__value__": "2020-01-01T00:00:00"},
                                                 {"__type__": "decimal", "__value__": "1.5"},
                                                 {"__type__": "bytes", "__value__": "eA=="}],
                                                {}, {}]).encode())


def build(captured: dict[str, Any], mutant: Mutant, mark: str) -> tuple[dict[str, Any] | None,
                                                                          bytes]:
    """The mutated envelope (None for a raw item) and the queue item's bytes."""
    if mutant.raw is not None:
        return None, mutant.raw + f" {mark}".encode()
    envelope = marked(captured, mark)
    for edit in mutant.edits:
        apply(envelope, edit)
    return envelope, encode(envelope).encode()
