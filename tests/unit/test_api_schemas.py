"""The request-body schema of a task, from its annotated parameters, as /openapi.json
documents it: complete without references, required parameters and defaults kept."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, Field

from platform_core.checks.signatures import CallSpec
from platform_core.web.schemas import body_schema, many_schema


class Point(BaseModel):
    x: int
    y: int = 0


class Tree(BaseModel):
    label: str
    children: list[Tree] = []


def refs(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        found = [schema["$ref"]] if "$ref" in schema else []
        return found + [r for value in schema.values() for r in refs(value)]
    if isinstance(schema, list):
        return [r for item in schema for r in refs(item)]
    return []


def test_parameters_become_kwargs_properties() -> None:
    def job(day: date, size: Annotated[int, Field(ge=16, le=2048)] | None = None,
            tags: list[str] = [], anything=None) -> None: ...  # noqa: B006

    schema = body_schema(CallSpec("acme.job", job))
    kwargs = schema["properties"]["kwargs"]
    assert kwargs["required"] == ["day"]
    assert kwargs["properties"]["day"] == {"type": "string", "format": "date"}
    assert kwargs["properties"]["size"]["default"] is None
    assert {"type": "integer", "minimum": 16, "maximum": 2048} in \
        kwargs["properties"]["size"]["anyOf"]
    assert kwargs["properties"]["tags"] == {"type": "array", "items": {"type": "string"},
                                            "default": []}
    assert kwargs["properties"]["anything"] == {"default": None}
    assert kwargs["additionalProperties"] is False
    assert schema["properties"]["args"]["maxItems"] == 4
    assert set(schema["properties"]) == {"args", "kwargs", "countdown", "eta", "priority"}


def test_models_are_inlined_and_recursion_stops() -> None:
    def draw(points: list[Point], tree: Tree, **extra: int) -> None: ...

    schema = many_schema(CallSpec("acme.draw", draw))
    assert refs(schema) == []
    one = schema["properties"]["calls"]["items"]["properties"]["kwargs"]
    point = one["properties"]["points"]["items"]
    assert point["properties"]["x"] == {"title": "X", "type": "integer"}
    assert point["required"] == ["x"]
    children = one["properties"]["tree"]["properties"]["children"]["items"]
    assert children == {"type": "object", "title": "Tree"}
    assert one["additionalProperties"] is True  # **extra


def test_a_bound_task_leaves_out_its_instance() -> None:
    def count(self: Any, total: int) -> None: ...

    kwargs = body_schema(CallSpec("acme.count", count, bind=True))["properties"]["kwargs"]
    assert list(kwargs["properties"]) == ["total"]
