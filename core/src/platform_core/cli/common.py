"""Helpers the commands share; they import the host only when a command runs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from platform_core.app.builder import AppOptions
    from platform_core.host import Host


def split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def load_host(plugins: str | None = None, strict: bool | None = None,
              options: AppOptions | None = None) -> Host:
    """The host; ``strict=None`` leaves it to the ``strict`` setting, and ``options`` say
    what the command does with the app."""
    from platform_core.host import current

    return current(plugins=split_names(plugins), strict=strict, options=options)


def console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=True)


def parse_json(option: str, value: str | None, kind: type, example: str) -> Any:
    if value is None:
        return kind()
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"is not valid JSON ({exc.msg} at column {exc.colno}); e.g. {option} '{example}'",
            param_hint=option,
        ) from None
    if not isinstance(parsed, kind):
        raise click.BadParameter(
            f"must be a JSON {'array' if kind is list else 'object'}; e.g. {option} '{example}'",
            param_hint=option,
        )
    return parsed


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, sort_keys=True)


#: A name column is never narrower than its longest name, up to this many characters.
WHOLE_NAMES = 40


def name_width(header: str, values: Iterable[str]) -> int:
    """The width that keeps ``header`` and every one of ``values`` (names) whole in a table
    column, so a narrow terminal squeezes the other columns instead of cutting names."""
    return min(WHOLE_NAMES, max([len(header), *(len(v) for v in values)]))


def table_fits(widths: Iterable[int], console_width: int) -> bool:
    """Whether a bordered rich table with columns at least ``widths`` wide fits: each
    column adds a border and a space either side."""
    columns = list(widths)
    return sum(columns) + 3 * len(columns) + 1 <= console_width
