"""The JSON schema of a task's request body, from its annotated parameters.

Schemas are inlined (no ``$ref``), so each operation of ``/openapi.json`` is complete
on its own; a recursive model is described as an object from its second level on.
"""

from __future__ import annotations

import inspect
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from platform_core.checks.signatures import CallSpec

_P = inspect.Parameter
OPTIONS: dict[str, Any] = {
    "countdown": {"type": "number", "minimum": 0,
                  "description": "Seconds to wait before the task may run."},
    "eta": {"type": "string", "format": "date-time",
            "description": "The earliest time the task may run (ISO 8601)."},
    "priority": {"type": "integer", "minimum": 0, "maximum": 255},
}


def _inline(schema: Any, defs: dict[str, Any], seen: frozenset[str] = frozenset()) -> Any:
    if isinstance(schema, list):
        return [_inline(item, defs, seen) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in seen or name not in defs:
            return {"type": "object", "title": name}
        rest = {k: v for k, v in schema.items() if k not in ("$ref", "$defs")}
        return {**_inline(defs[name], defs, seen | {name}), **rest}
    return {k: _inline(v, defs, seen) for k, v in schema.items() if k != "$defs"}


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def parameter_schema(call: CallSpec, name: str) -> dict[str, Any]:
    adapter = call.adapters.get(name)
    if adapter is None:
        return {}
    schema = adapter.json_schema()
    return dict(_inline(schema, schema.get("$defs", {})))


def arguments_schema(call: CallSpec | None) -> dict[str, Any]:
    """``{"args": ..., "kwargs": ...}`` of a task's call."""
    if call is None:
        return {"args": {"type": "array"}, "kwargs": {"type": "object"}}
    params = list(call.signature.parameters.values())
    named = [p for p in params if p.kind in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY)]
    properties = {}
    for p in named:
        prop = parameter_schema(call, p.name)
        if p.default is not _P.empty and _is_json(p.default):
            prop = {**prop, "default": p.default}
        properties[p.name] = prop
    required = [p.name for p in named if p.default is _P.empty]
    kwargs: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": call.var_keyword is not None,
                              "description": "The task's parameters by name."}
    if required:
        kwargs["required"] = required
    positional = [p for p in params if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)]
    args: dict[str, Any] = {
        "type": "array",
        "prefixItems": [parameter_schema(call, p.name) for p in positional],
        "description": "Positional arguments, if not given by name in `kwargs`.",
    }
    if call.var_positional is None:
        args["maxItems"] = len(positional)
    return {"args": args, "kwargs": kwargs}


def body_schema(call: CallSpec | None) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False,
            "properties": {**arguments_schema(call), **OPTIONS}}


def many_schema(call: CallSpec | None) -> dict[str, Any]:
    one = {"type": "object", "additionalProperties": False,
           "properties": arguments_schema(call)}
    return {"type": "object", "additionalProperties": False, "required": ["calls"],
            "properties": {"calls": {"type": "array", "minItems": 1, "items": one},
                           **OPTIONS}}
