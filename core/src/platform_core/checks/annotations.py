"""Type annotations as people write and read them, for signatures and errors.

:func:`type_name` writes an annotation as it would appear in code, without the
constraints pydantic keeps (``int | None``, not ``Optional[Annotated[int,
FieldInfo(...)]]``); :func:`expected` says in words what a value must be
(``an integer between 16 and 2048 or null``); :func:`kind_of` names what a value is
(``a string``), never the value itself.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import types
import typing
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

_NAMES: dict[Any, str] = {
    type(None): "null",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    bytes: "a string",
    dict: "an object",
    list: "a list",
    tuple: "a list",
    set: "a list",
    frozenset: "a list",
    datetime.datetime: "a date and time (ISO 8601)",
    datetime.date: "a date (YYYY-MM-DD)",
    datetime.time: "a time of day (HH:MM:SS)",
    datetime.timedelta: "a duration",
    decimal.Decimal: "a decimal number",
    uuid.UUID: "a UUID",
}
_SEQUENCES = {list, tuple, set, frozenset}
_PLURAL = {"a boolean": "booleans", "an integer": "integers", "a number": "numbers",
           "a string": "strings", "an object": "objects", "a list": "lists",
           "a decimal number": "decimal numbers", "a UUID": "UUIDs"}


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def type_name(annotation: Any) -> str:
    """``annotation`` as code would write it: ``int | None``, ``list[str]``, ``Order``."""
    if annotation is type(None) or annotation is None:
        return "None"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_name(args[0])
    if _is_union(annotation):
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin is not None and args:
        base = getattr(origin, "__name__", None) or repr(origin).replace("typing.", "")
        return f"{base}[{', '.join('...' if a is Ellipsis else type_name(a) for a in args)}]"
    if isinstance(annotation, type):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "").replace("typing_extensions.", "")


def _limits(metadata: Iterable[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            found.update(_limits(item.metadata))
        else:
            for name in ("gt", "ge", "lt", "le", "min_length", "max_length", "multiple_of",
                         "pattern"):
                value = getattr(item, name, None)
                if value is not None:
                    found[name] = value
    return found


def _bounded(words: str, limits: dict[str, Any]) -> str:
    """``words`` (``an integer``) with its constraints in words."""
    low = ("ge", limits["ge"]) if "ge" in limits else ("gt", limits["gt"]) if "gt" in limits \
        else None
    high = ("le", limits["le"]) if "le" in limits else ("lt", limits["lt"]) if "lt" in limits \
        else None
    parts = [words]
    if low and high and low[0] == "ge" and high[0] == "le":
        parts.append(f"between {low[1]} and {high[1]}")
    else:
        if low:
            parts.append(f"of at least {low[1]}" if low[0] == "ge" else f"greater than {low[1]}")
        if high:
            parts.append(("and " if low else "")
                         + (f"of at most {high[1]}" if high[0] == "le" else f"less than {high[1]}"))
    if "multiple_of" in limits:
        parts.append(f"that is a multiple of {limits['multiple_of']}")
    short, long = limits.get("min_length"), limits.get("max_length")
    unit = "characters" if words == "a string" else "items"
    if short is not None and long is not None:
        parts.append(f"of {short} to {long} {unit}")
    elif short is not None:
        parts.append(f"of at least {short} {unit}")
    elif long is not None:
        parts.append(f"of at most {long} {unit}")
    if "pattern" in limits:
        parts.append(f"matching {limits['pattern']}")
    return " ".join(parts)


def _or(choices: list[str]) -> str:
    unique = list(dict.fromkeys(choices))
    return unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " or " + unique[-1]


def expected(annotation: Any) -> str:
    """What a value for ``annotation`` must be, in words."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _bounded(expected(args[0]), _limits(args[1:]))
    if _is_union(annotation):
        # the null choice last: "an integer or null"
        ordered = [a for a in args if a is not type(None)] + \
                  [a for a in args if a is type(None)]
        return _or([expected(a) for a in ordered])
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args) if len(args) > 1 else repr(args[0])
    if origin in _SEQUENCES:
        items = [a for a in args if a is not Ellipsis]
        if len(items) != 1:
            return "a list"
        item = expected(items[0])
        return f"a list of {_PLURAL[item]}" if item in _PLURAL else f"a list, each item {item}"
    if origin is dict:
        return f"an object, each value {expected(args[1])}" if len(args) == 2 else "an object"
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return "one of " + ", ".join(repr(m.value) for m in annotation)
        if issubclass(annotation, BaseModel):
            return f"an object with the fields of {annotation.__qualname__}"
        for base in type.mro(annotation):
            if base in _NAMES:
                return _NAMES[base]
    if annotation in _NAMES:
        return _NAMES[annotation]
    if isinstance(annotation, typing.TypeVar):
        return "any value"
    return type_name(annotation)


def kind_of(value: Any) -> str:
    """What ``value`` is, in words (``a string``, ``null``): never the value itself."""
    for base in type(value).__mro__:
        if base in _NAMES:
            return _NAMES[base]
    name = type(value).__qualname__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
