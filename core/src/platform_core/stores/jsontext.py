"""JSON text of any parsed value, however deep, written without recursion.

Used to keep a queue item that nests too deep for ``json.dumps`` (which recurses
and gives up near the interpreter's recursion limit) as a dead letter, and to tell
how deep a value nests, also without recursion.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> str:
    parts: list[str] = []
    stack: list[tuple[bool, Any]] = [(False, value)]  # (is literal text, item)
    while stack:
        literal, item = stack.pop()
        if literal:
            parts.append(item)
        elif isinstance(item, dict):
            pending: list[tuple[bool, Any]] = []
            for index, (key, child) in enumerate(item.items()):
                text = json.dumps(key if isinstance(key, str) else str(key))
                pending += [(True, (", " if index else "") + text + ": "), (False, child)]
            stack += [(True, "}"), *reversed(pending)]
            parts.append("{")
        elif isinstance(item, (list, tuple)):
            pending = []
            for index, child in enumerate(item):
                pending += [(True, ", ")] if index else []
                pending.append((False, child))
            stack += [(True, "]"), *reversed(pending)]
            parts.append("[")
        else:
            parts.append(json.dumps(item, default=str))
    return "".join(parts)


def depth_over(value: Any, limit: int) -> bool:
    """Whether lists and mappings in ``value`` nest deeper than ``limit`` (no recursion:
    one level at a time)."""
    level = [value] if isinstance(value, (dict, list, tuple)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for item in level:
            for child in item.values() if isinstance(item, dict) else item:
                if isinstance(child, (dict, list, tuple)):
                    below.append(child)
        level = below
    return False
