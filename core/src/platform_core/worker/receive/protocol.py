"""Celery's task message protocol 2 as a strict model: what a worker accepts.

Every message a worker takes is checked against this model before Celery's own
code sees it (:mod:`.gate`); so is every dead letter before ``platform dlq replay``
publishes it again. The model follows Celery's ``docs/internals/protocol.rst`` and
the types Celery's strategy and request read:

- properties: ``correlation_id``, ``reply_to`` (text), ``priority`` (0-255);
- headers: ``task`` and ``id`` (non-empty text), ``root_id``, ``parent_id``,
  ``group`` (text or null), ``eta`` and ``expires`` (ISO 8601 or null), ``retries``
  (a count), ``timelimit`` (``[hard, soft]`` seconds or nulls), ``shadow``,
  ``argsrepr``, ``kwargsrepr``, ``origin``, ``lang`` (text or null), ``stamps``, ...;
  other headers may be any JSON value;
- body: ``[args: list, kwargs: mapping, embed: {callbacks, errbacks, chain, chord}]``,
  JSON in UTF-8, at most :data:`Limits.body_bytes` long and :data:`Limits.depth` deep.

A problem is reported as the field and what was expected, never the value: task
arguments and header values may hold secrets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NotRequired, Required

from celery.utils.time import maybe_iso8601, maybe_make_aware, timezone
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from platform_core.stores.jsontext import depth_over

JSON_TYPES = ("application/json",)
JSON_ENCODINGS = ("utf-8", "utf8")

DEPTH = 100  # nesting of lists and mappings in headers and body; canvas nests a few per level
BODY_FACTOR = 16  # a body may carry a canvas besides the arguments the producer capped
TEXT = 1_048_576  # longest header text (ids, reprs): Celery sets no limit of its own


@dataclass(frozen=True)
class Limits:
    body_bytes: int
    depth: int = DEPTH

    @classmethod
    def for_payload(cls, max_payload_bytes: int) -> Limits:
        return cls(body_bytes=max(BODY_FACTOR * max_payload_bytes, 65_536))


def _instant(value: str) -> str:
    """Celery parses the value with ``maybe_iso8601``, makes it aware and turns it into a
    timestamp of the system's time zone (for an ETA); so do we, so whatever passes here
    Celery can schedule."""
    try:
        parsed = maybe_iso8601(value)
        if parsed is None:
            raise ValueError("empty")
        aware: datetime = maybe_make_aware(parsed)
        timezone.to_system(aware).timestamp()
    except (ValueError, TypeError, OverflowError, AttributeError):
        raise ValueError("an ISO 8601 date and time") from None
    return value


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):  # not a number, or an integer past float
        seconds = math.nan
    if not isinstance(value, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a number of seconds (finite, not negative) or null")
    return seconds


Text = Annotated[StrictStr, Field(max_length=TEXT)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=TEXT)]
TaskId = Annotated[StrictStr, Field(min_length=1, max_length=TEXT)]
Instant = Annotated[StrictStr, AfterValidator(_instant)]
Count = Annotated[StrictInt, Field(ge=0, le=2**31)]
Seconds = Annotated[Any, AfterValidator(_seconds)]


class Headers(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    task: Required[Name]
    id: Required[TaskId]
    lang: Text | None
    root_id: TaskId | None
    parent_id: TaskId | None
    group: TaskId | None
    group_index: Count | None
    shadow: Name | None
    eta: Instant | None
    expires: Instant | None
    countdown: Seconds
    retries: Count | None
    timelimit: Annotated[list[Seconds], Field(min_length=2, max_length=2)] | None
    argsrepr: Text | None
    kwargsrepr: Text | None
    origin: Text | None
    ignore_result: StrictBool | None
    replaced_task_nesting: Count | None
    stamped_headers: list[Text] | None
    stamps: dict[StrictStr, Any] | None
    meth: Text | None


class Properties(TypedDict, total=False):
    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    correlation_id: TaskId | None
    reply_to: Text | None
    priority: Annotated[StrictInt, Field(ge=0)] | None  # kombu clamps it per transport


class Signature(TypedDict, total=False):
    """A task signature as Celery embeds it for callbacks, errbacks, chains and chords."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    task: Required[Name]
    args: list[Any] | None
    kwargs: dict[StrictStr, Any] | None
    options: dict[StrictStr, Any] | None
    subtask_type: Text | None
    immutable: StrictBool | None
    chord_size: StrictInt | None


class Embed(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    callbacks: NotRequired[list[Signature] | None]
    errbacks: NotRequired[list[Signature] | None]
    chain: NotRequired[list[Signature] | None]
    chord: NotRequired[Signature | None]


Body = tuple[list[Any], dict[StrictStr, Any], Embed]

_HEADERS: TypeAdapter[Headers] = TypeAdapter(Headers)
_PROPERTIES: TypeAdapter[Properties] = TypeAdapter(Properties)
_BODY: TypeAdapter[Body] = TypeAdapter(Body)
_BODY_PARTS = ("args", "kwargs", "embed")


def _where(part: str, loc: tuple[int | str, ...]) -> str:
    if part == "body" and loc and isinstance(loc[0], int) and loc[0] < len(_BODY_PARTS):
        part, loc = f"body {_BODY_PARTS[loc[0]]}", loc[1:]
    elif part == "body" and not loc:
        part = "body"
    first = " " if part in ("header", "property") else "."
    path = "".join(f"[{p}]" if isinstance(p, int) else f"{first if i == 0 else '.'}{p}"
                   for i, p in enumerate(loc))
    return f"{part}{path}" if path else part


_PHRASES = {
    "missing": "is missing",
    "extra_forbidden": "has a key Celery's protocol does not define here",
    "string_type": "should be text",
    "int_type": "should be an integer",
    "float_type": "should be a number",
    "bool_type": "should be true or false",
    "dict_type": "should be a mapping",
    "list_type": "should be a list",
    "tuple_type": "should be a list",
}


def _explain(part: str, error: ValidationError) -> str:
    issues = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        message = _PHRASES.get(item["type"]) or str(item["msg"])
        message = message.removeprefix("Value error, ").removeprefix("Input ")
        message = message.replace(" after validation", "")
        if message.startswith(("an ", "a ")):
            message = f"should be {message}"
        elif message[:1].isupper():
            message = message[0].lower() + message[1:]
        loc = tuple(item["loc"])
        if item["type"] == "extra_forbidden":
            loc = loc[:-1]  # the key came from the sender: do not quote it
        issues.append(f"{_where(part, loc)} {message}")
        if len(issues) == 3:
            break
    more = error.error_count() - len(issues)
    tail = f" (and {more} more)" if more > 0 else ""
    return "; ".join(issues) + tail


def _mapping_problem(value: Any, adapter: TypeAdapter[Any], part: str, plural: str
                     ) -> str | None:
    if not isinstance(value, Mapping):
        return f"{plural} should be a mapping, not {kind(value)}"
    try:
        adapter.validate_python(value)
    except ValidationError as exc:
        return _explain(part, exc)
    return None


def headers_problem(headers: Any) -> str | None:
    return _mapping_problem(headers, _HEADERS, "header", "headers")


def properties_problem(properties: Any) -> str | None:
    return _mapping_problem(properties, _PROPERTIES, "property", "properties")


def content_problem(content_type: Any, content_encoding: Any, size: int,
                    limits: Limits) -> str | None:
    if not isinstance(content_type, str) or content_type.lower() not in JSON_TYPES:
        return ("content type should be application/json (the platform sends and accepts "
                f"JSON only), not {kind(content_type, text=True)}")
    if not isinstance(content_encoding, str) or content_encoding.lower() not in JSON_ENCODINGS:
        return f"content encoding should be utf-8, not {kind(content_encoding, text=True)}"
    if size > limits.body_bytes:
        return (f"body is {size:,} bytes, over the {limits.body_bytes:,} a worker accepts "
                f"({BODY_FACTOR} × max_payload_bytes)")
    return None


def body_problem(body: Any, limits: Limits, raw: Any = None) -> str | None:
    """``raw``, the body's JSON text, lets a body with fewer brackets than the depth limit
    skip the walk (most bodies; the walk costs as much as decoding a large one)."""
    if not isinstance(body, (list, tuple)):
        return f"body should be [args, kwargs, embed], not {kind(body)}"
    few = isinstance(raw, (bytes, str)) and _brackets(raw) <= limits.depth
    if not few and depth_over(body, limits.depth):
        return f"body nests lists and mappings deeper than {limits.depth} levels"
    try:
        _BODY.validate_python(body)
    except ValidationError as exc:
        return _explain("body", exc)
    return None


def envelope_problem(headers: Any, properties: Any, limits: Limits) -> str | None:
    """What is wrong with the headers and properties, before the body is decoded."""
    if isinstance(headers, Mapping) and "task" not in headers and "id" not in headers:
        return ("headers name no task: a protocol 1 message or not a task message; the "
                "platform accepts Celery's task protocol 2 only")
    if depth_over(headers, limits.depth) or depth_over(properties, limits.depth):
        return f"headers or properties nest deeper than {limits.depth} levels"
    return headers_problem(headers) or properties_problem(properties)


def message_problem(headers: Any, properties: Any, content_type: Any, content_encoding: Any,
                    body: Any, decode: Callable[[], Any], limits: Limits) -> str | None:
    """Why a message is not a task message a worker takes, or None. ``decode`` turns the
    body into Python values (only called once the rest passed)."""
    found = envelope_problem(headers, properties, limits)
    if found is not None:
        return found
    size = len(body) if isinstance(body, (bytes, str)) else 0
    found = content_problem(content_type, content_encoding, size, limits)
    if found is not None:
        return found
    try:
        payload = decode()
    except Exception as exc:  # noqa: BLE001 - any decode failure is the same problem
        if isinstance(exc, RecursionError) or isinstance(exc.__context__, RecursionError):
            return f"body nests lists and mappings deeper than {limits.depth} levels"
        return f"body is not JSON in UTF-8 ({type(exc).__name__})"
    return body_problem(payload, limits, body)


def _brackets(raw: bytes | str) -> int:
    if isinstance(raw, bytes):
        return raw.count(b"[") + raw.count(b"{")
    return raw.count("[") + raw.count("{")


KNOWN_CONTENT = ("application/json", "application/x-python-serialize", "application/x-yaml",
                 "application/x-msgpack", "application/data", "text/plain", "binary", "utf-8",
                 "utf8", "ascii", "latin-1", "")


def kind(value: Any, *, text: bool = False) -> str:
    """Describe a value by its type only (a well-known content type or encoding by
    name when ``text``)."""
    if value is None:
        return "null"
    if text and isinstance(value, str):
        return repr(value) if value.lower() in KNOWN_CONTENT else "another one"
    return {dict: "a mapping", list: "a list", tuple: "a list", str: "text", bool: "a boolean",
            int: "a number", float: "a number", bytes: "bytes"}.get(type(value),
                                                                     type(value).__name__)
