"""Every task's parameters as a call spec, and every beat entry's arguments against it."""

from __future__ import annotations

from platform_core.checks import arguments
from platform_core.loading.problems import blame
from platform_core.loading.registry import Registry
from platform_sdk.exceptions import InvalidTaskCall


def check(registry: Registry, problems: list[str]) -> dict[str, arguments.CallSpec]:
    """The argument checks of every task; beat entries' arguments are checked with them."""
    calls: dict[str, arguments.CallSpec] = {}
    for c in registry.tasks:
        try:
            calls[c.item.name] = arguments.build(c.item.spec)
        except arguments.UnsupportedSignature as exc:
            problems.append(blame(c.plugin, f"task `{c.item.name}` {exc}"))
    for beat in registry.beat_entries:
        call = calls.get(beat.item.task)
        if call is None:
            continue
        try:
            call.for_message(beat.item.args, beat.item.kwargs)
        except InvalidTaskCall as exc:
            problems.append(blame(beat.plugin, f"beat entry `{beat.item.name}`: {exc}"))
    return calls
