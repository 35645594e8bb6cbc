"""Every message shape known to have stopped a worker or been lost: regression cases.

Each entry is a name and a :class:`~tests.receive.mutants.Mutant` of a real captured
envelope. Add a shape here whenever the fuzzing finds one: to :data:`POISON` if the
worker must dead-letter it, to :data:`VALID` if it must run (or expire, as Celery
decides). :data:`CORPUS` is both, poison first.
"""

from __future__ import annotations

from tests.receive.mutants import Deep, Mutant


def _edits(*edits: tuple[object, ...]) -> Mutant:
    return Mutant(edits=list(edits))


POISON: list[tuple[str, Mutant]] = [
    # bodies that base64-decode to nothing or to a JSON scalar (TypeError in the strategy)
    *[(f"body text {text!r}", _edits(("body-text", text))) for text in ("!!!", "", "NDI=",
                                                                       "bnVsbA==")],
    # unhashable task names and ids
    ("task a list", _edits(("header", "task", ["fuzz"]))),
    ("task a mapping", _edits(("header", "task", {"a": 1}))),
    ("id a mapping", _edits(("header", "id", {"a": 1}))),
    ("id a list", _edits(("header", "id", [1]))),
    ("id null", _edits(("header", "id", None))),
    ("id a number", _edits(("header", "id", 42))),
    ("unknown task and an id that is a mapping",
     _edits(("header", "task", "no.such.task"), ("header", "id", {"a": 1}))),
    # time limits and dates Celery cannot read
    *[(f"timelimit {value!r}", _edits(("header", "timelimit", value)))
      for value in ("abc", 5, [1, 2, 3], ["x", "y"], [-1, None], [None])],
    ("eta empty", _edits(("header", "eta", ""))),
    ("expires empty", _edits(("header", "expires", ""))),
    ("eta not a date", _edits(("header", "eta", "tomorrow"))),
    ("eta a number", _edits(("header", "eta", 1700000000))),
    ("eta out of range", _edits(("header", "eta", "0001-01-01T00:00:00+14:00"))),
    ("retries text", _edits(("header", "retries", "3"))),
    ("retries negative", _edits(("header", "retries", -1))),
    ("group a list", _edits(("header", "group", []))),
    ("stamps a list", _edits(("header", "stamps", [1]))),
    ("stamped_headers text", _edits(("header", "stamped_headers", "abc"))),
    ("headers a list", _edits(("headers", ["task"]))),
    ("compression gzip", _edits(("header", "compression", "application/x-gzip"))),
    ("compression unknown", _edits(("header", "compression", "bogus"))),
    # content type and encoding
    ("content-encoding a number", _edits(("content-encoding", 7))),
    ("content-encoding binary", _edits(("content-encoding", "binary"))),
    ("content-type pickle", _edits(("content-type", "application/x-python-serialize"))),
    ("content-type a mapping", _edits(("content-type", {"a": 1}))),
    # properties and the transport's bookkeeping
    ("delivery_info missing", _edits(("drop-property", "delivery_info"))),
    ("routing_key a mapping", _edits(("info", "routing_key", {"a": 1}))),
    ("body_encoding unknown", _edits(("property", "body_encoding", "rot13"))),
    ("priority text", _edits(("property", "priority", "high"))),
    ("correlation_id a mapping", _edits(("property", "correlation_id", {"a": 1}))),
    # kombu's typed-JSON markers it cannot read, anywhere in the envelope
    ("a header kombu reads as bytes of a number",
     _edits(("header", "x-typed", {"__type__": "bytes", "__value__": 5}))),
    ("a property kombu reads as a uuid of garbage",
     _edits(("property", "reply_to", {"__type__": "uuid", "__value__": "x"}))),
    ("the task header a datetime marker",
     _edits(("header", "task", {"__type__": "datetime", "__value__": 5}))),
    ("headers null", _edits(("headers", None))),
    ("priority infinite", _edits(("property", "priority", float("inf")))),
    ("a task name with a NUL, unknown", _edits(("header", "task", "no.such\x00task"))),
    ("a task name of 300 characters, unknown", _edits(("header", "task", "t" * 300))),
    # no database takes a lone surrogate: the store refuses the entry, not the body alone
    ("a task name with a lone surrogate", _edits(("header", "task", "\ud800bad"))),
    ("timelimit past any float", _edits(("header", "timelimit", [10**400, None]))),
    ("eta past the system time zone's range",
     _edits(("header", "eta", "9999-12-31T23:59:59-14:00"))),
    ("an embed key that quotes a secret", _edits(("body", [[], {}, {"password=x": 1}]))),
    ("a forged unreadable mark", _edits(("content-type", "application/x-platform-unreadable"),
                                         ("header", "x-platform-problem", "forged"))),
    # nesting and size
    ("a header nested 10,000 deep", _edits(("header", "deep", Deep(10_000)))),
    ("a header nested 990 deep", _edits(("header", "deep", Deep(990)))),
    *[(f"a header nested {depth} deep (kombu's writers)", _edits(("header", "deep", Deep(depth))))
      for depth in (199, 201, 950, 955, 960, 966)],
    ("args nested 150 deep", _edits(("body", [[Deep(150)], {}, {}]))),
    ("args nested 5,000 deep", _edits(("body", [[Deep(5_000)], {}, {}]))),
    ("body over the size limit", _edits(("body", [[], {"blob": "x" * 1_200_000}, {}]))),
    # bodies of the wrong shape (silently dropped before)
    ("kwargs not a mapping", _edits(("body", [[], "x", {}]))),
    ("kwargs a list", _edits(("body", [[], [], {}]))),
    ("embed not a mapping", _edits(("body", [[], {}, "x"]))),
    ("embed with an unknown key", _edits(("body", [[], {}, {"id": "other"}]))),
    ("callbacks not a list", _edits(("body", [[], {}, {"callbacks": "x"}]))),
    ("a callback without a task", _edits(("body", [[], {}, {"callbacks": [{"args": []}]}]))),
    ("chord a list", _edits(("body", [[], {}, {"chord": []}]))),
    ("body of two items", _edits(("body", [[], {}]))),
    ("body a mapping", _edits(("body", {"args": []}))),
    ("protocol 1 body without an id",
     _edits(("drop-header", "task"), ("drop-header", "id"), ("body", {"task": "x",
                                                                      "args": []}))),
    # whole queue items that are no envelope
    ("raw bytes", Mutant(raw=b"\x00\xff garbage")),
    ("raw JSON list", Mutant(raw=b"[1, 2]")),
    ("raw truncated envelope", Mutant(raw=b'{"body": "W10=", "properties": {')),
    ("raw envelope without delivery info", Mutant(raw=b'{"body": "W10=", "properties": {}}')),
]

# valid messages: they must run (or expire, as Celery decides)
VALID: list[tuple[str, Mutant]] = [
    ("kombu typed JSON in the args", _edits(("encoding", "kombu-types"))),
    ("eta in the past", _edits(("header", "eta", "2020-01-01T00:00:00+00:00"))),
    ("expires in the past", _edits(("header", "expires", "2020-01-01T00:00:00+00:00"))),
    ("a built-in task with garbage arguments",
     _edits(("header", "task", "celery.chord_unlock"))),
    ("an unknown header of any shape", _edits(("header", "x-anything", {"a": [1, None]}))),
    # the worker gives every message a delivery tag of its own, whatever the envelope says
    ("delivery_tag a mapping", _edits(("property", "delivery_tag", {"a": 1}))),
    ("delivery_tag a list", _edits(("property", "delivery_tag", [1]))),
    # kombu clamps a priority to what each broker supports (Redis takes any integer)
    ("priority 300", _edits(("property", "priority", 300))),
    # a body with no body_encoding is read as it is, as kombu does
    ("body plain JSON text without base64", _edits(("encoding", "json-text"))),
]

CORPUS: list[tuple[str, Mutant]] = POISON + VALID

# Poison only where the envelope is JSON read by kombu (Redis, the embedded broker): on
# RabbitMQ the same header is a plain table, which any task message may carry.
JSON_ONLY = ("a header kombu reads as bytes of a number",)
