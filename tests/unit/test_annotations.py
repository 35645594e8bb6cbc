"""Annotations in words, for the errors of task calls."""

from __future__ import annotations

import enum
from datetime import date
from typing import Annotated, Any, Literal, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from platform_core.checks.annotations import expected, kind_of, type_name


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Order(BaseModel):
    qty: int


@pytest.mark.parametrize(("annotation", "words"), [
    (Annotated[int, Field(ge=16, le=2048)] | None, "an integer between 16 and 2048 or null"),
    (Optional[Annotated[int, Field(ge=16, le=2048)]], "an integer between 16 and 2048 or null"),  # noqa: UP045
    (Annotated[int, Field(gt=0)], "an integer greater than 0"),
    (Annotated[float, Field(ge=0, lt=1)], "a number of at least 0 and less than 1"),
    (Annotated[str, Field(min_length=1, max_length=64)], "a string of 1 to 64 characters"),
    (Annotated[str, Field(pattern=r"^[A-Z]{3}$")], "a string matching ^[A-Z]{3}$"),
    (list[str] | None, "a list of strings or null"),
    (list[Annotated[int, Field(ge=1)]], "a list, each item an integer of at least 1"),
    (dict[str, int], "an object, each value an integer"),
    (Literal["asc", "desc"], "one of 'asc', 'desc'"),
    (Colour, "one of 'red', 'blue'"),
    (Order | None, "an object with the fields of Order or null"),
    (date, "a date (YYYY-MM-DD)"),
    (bool, "a boolean"),
    (int | str, "an integer or a string"),
])
def test_an_annotation_reads_as_what_the_value_must_be(annotation: Any, words: str) -> None:
    assert expected(annotation) == words


def test_signatures_show_types_without_pydantic_internals() -> None:
    assert type_name(Optional[Annotated[int, Field(ge=16)]]) == "int | None"  # noqa: UP045
    assert type_name(list[str] | None) == "list[str] | None"
    assert type_name(Literal["a", "b"]) == "Literal['a', 'b']"


def test_a_value_is_named_by_its_kind_never_shown() -> None:
    assert [kind_of(v) for v in ("secret", 3, True, None, 1.5, [1], {"a": 1})] == [
        "a string", "an integer", "a boolean", "null", "a number", "a list", "an object"]
    assert kind_of(Order(qty=1)) == "an Order"


LEAVES = st.sampled_from([int, str, float, bool, date, Order, Colour, type(None), Any])
CONSTRAINED = st.builds(lambda t, lo: Annotated[t, Field(ge=lo)], st.sampled_from([int, float]),
                        st.integers(-5, 5))


def trees() -> st.SearchStrategy[Any]:
    return st.recursive(LEAVES | CONSTRAINED, lambda inner: (
        st.builds(lambda a, b: a | b, inner, inner).filter(lambda t: t is not None)
        | st.builds(lambda a: list[a], inner)
        | st.builds(lambda a: dict[str, a], inner)
        | st.builds(lambda a: Optional[a], inner)  # noqa: UP045
    ), max_leaves=6)


@given(trees())
def test_no_annotation_reads_as_pydantic_or_typing_internals(annotation: Any) -> None:
    for text in (expected(annotation), type_name(annotation)):
        for internal in ("FieldInfo", "Annotated", "Optional[", "typing.", "NoneType", "metadata"):
            assert internal not in text, text
