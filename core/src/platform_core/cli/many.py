"""``platform send TASK --many FILE``: JSON lines, every one checked, then sent in bulk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from platform_core.errors import PlatformError
from platform_sdk.exceptions import InvalidTaskCall, PartiallySent

#: Lines sent per step: the progress bar moves once per step.
STEP = 5_000


def read_lines(source: IO[str]) -> tuple[list[Any], list[str], list[int]]:
    """The calls of ``source`` (each line's JSON, read as ``delay_many`` reads a call),
    the lines themselves and their numbers; blank lines are skipped."""
    calls, lines, numbers = [], [], []
    name = getattr(source, "name", "-")
    for number, line in enumerate(source, 1):
        if not line.strip():
            continue
        try:
            calls.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise PlatformError(
                f"{name}, line {number}: not JSON ({exc.msg} at column {exc.colno}); write one "
                'call per line: [1, 2], {"to": "a@example.com"} or [[1], {"b": 2}]'
            ) from None
        lines.append(line.strip())
        numbers.append(number)
    return calls, lines, numbers


def _unsent_file(source: IO[str], task: str) -> Path:
    name = getattr(source, "name", "-")
    if name in ("-", "<stdin>"):
        return Path.cwd() / f"unsent-{task}.jsonl"
    return Path(f"{name}.unsent")


def send_lines(app: Any, task: str, source: IO[str], options: dict[str, Any]) -> None:
    from rich.progress import Progress

    from platform_core.app import bulk
    from platform_core.broker.config import check_broker
    from platform_core.cli.common import console

    calls, lines, numbers = read_lines(source)
    name = getattr(source, "name", "-")
    try:  # every line before anything is sent
        batch = bulk.prepare(app, task, calls, options)
    except InvalidTaskCall as exc:
        index = getattr(exc, "index", None)
        if index is None:
            raise PlatformError(str(exc)) from None
        raise PlatformError(f"{name}, line {numbers[index]}: {exc.reason}") from None  # type: ignore[attr-defined]
    check_broker(app)
    total = len(calls)
    with Progress(console=console(stderr=True), transient=True) as progress, \
            bulk.span(app, task, total):
        bar = progress.add_task(f"sending {task}", total=total)
        for start in range(0, total, STEP):
            end = min(total, start + STEP)
            try:
                batch.publish(list(range(start, end)))
            except PartiallySent as exc:
                for result in exc.results:
                    print(result.id)
                unsent = [*exc.unsent, *range(end, total)]
                target = _unsent_file(source, task)
                target.write_text("".join(f"{lines[i]}\n" for i in unsent))
                doubt = (f"; {len(exc.in_doubt)} may or may not have reached it (lines "
                         f"{numbers[exc.in_doubt[0]]}-{numbers[exc.in_doubt[-1]]}), not in "
                         "that file" if exc.in_doubt else "")
                raise PlatformError(
                    f"the broker failed after {start + len(exc.published)} of {total} "
                    f"messages ({exc.__cause__ or exc}); the {len(unsent)} unsent lines are "
                    f"in {target}{doubt}; send them with `platform send {task} --many "
                    f"{target}`"
                ) from None
            for task_id in batch.ids[start:end]:
                print(task_id)
            progress.update(bar, advance=end - start)
