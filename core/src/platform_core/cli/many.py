"""``platform send TASK --many FILE``: JSON lines, every one checked, then sent in bulk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from platform_core.app.arguments import EnqueueChecks
from platform_core.app.bulk.calls import check
from platform_core.errors import PlatformError
from platform_sdk.exceptions import InvalidTaskCall, PartiallySent

#: Lines sent per bulk call: the progress bar moves once per step.
STEP = 5_000


def read_lines(source: IO[str]) -> tuple[list[Any], list[int]]:
    """The calls of ``source`` and the line number of each; blank lines are skipped."""
    calls, numbers = [], []
    name = getattr(source, "name", "-")
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            call = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PlatformError(
                f"{name}, line {number}: not JSON ({exc.msg} at column {exc.colno}); write one "
                'call per line: [1, 2], {"to": "a@example.com"} or [[1], {"b": 2}]'
            ) from None
        if isinstance(call, list) and not (
                len(call) == 2 and isinstance(call[0], list) and isinstance(call[1], dict)):
            call = tuple(call)
        elif isinstance(call, list):
            call = (tuple(call[0]), call[1])
        calls.append(call)
        numbers.append(number)
    return calls, numbers


def _unsent_file(source: IO[str], task: str) -> Path:
    name = getattr(source, "name", "-")
    if name in ("-", "<stdin>"):
        return Path.cwd() / f"unsent-{task}.jsonl"
    return Path(f"{name}.unsent")


def send_lines(app: Any, task: str, source: IO[str], options: dict[str, Any]) -> None:
    from rich.progress import Progress

    from platform_core.broker.config import check_broker
    from platform_core.cli.common import console

    calls, numbers = read_lines(source)
    name = getattr(source, "name", "-")
    checks: EnqueueChecks = app.enqueue_checks or EnqueueChecks({}, 2**62)
    try:  # every line before anything is sent
        check(checks, task, calls, options)
    except InvalidTaskCall as exc:
        index = getattr(exc, "index", None)
        where = f"{name}, line {numbers[index]}: " if index is not None else ""
        text = str(exc).split(": ", 1)[1] if index is not None else str(exc)
        raise PlatformError(f"{where}{text}") from None
    check_broker(app)
    sent = 0
    with Progress(console=console(stderr=True), transient=True) as progress:
        bar = progress.add_task(f"sending {task}", total=len(calls))
        for start in range(0, len(calls), STEP):
            chunk = calls[start:start + STEP]
            try:
                results = app.send_many(task, chunk, options)
            except PartiallySent as exc:
                for result in exc.results:
                    print(result.id)
                published = sent + len(exc.published)
                unsent = [start + i for i in exc.unsent] + list(range(start + len(chunk),
                                                                      len(calls)))
                doubt = [start + i for i in exc.in_doubt]
                target = _unsent_file(source, task)
                lines = [json.dumps(_as_json(calls[i])) for i in sorted(unsent)]
                target.write_text("".join(f"{line}\n" for line in lines))
                doubt_text = (f"; {len(doubt)} may or may not have reached it (lines "
                              f"{_ranges([numbers[i] for i in doubt])}), not in that file"
                              if doubt else "")
                raise PlatformError(
                    f"the broker failed after {published} of {len(calls)} messages "
                    f"({exc.__cause__ or exc}); the {len(unsent)} unsent lines are in "
                    f"{target}{doubt_text}; send them with "
                    f"`platform send {task} --many {target}`"
                ) from None
            for result in results:
                print(result.id)
            sent += len(chunk)
            progress.update(bar, advance=len(chunk))


def _as_json(call: Any) -> Any:
    if isinstance(call, tuple) and len(call) == 2 and isinstance(call[0], tuple) and isinstance(
            call[1], dict):
        return [list(call[0]), call[1]]
    return list(call) if isinstance(call, tuple) else call


def _ranges(numbers: list[int]) -> str:
    if not numbers:
        return ""
    return f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])
