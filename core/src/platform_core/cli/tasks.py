"""``platform send`` and ``platform result``."""

from __future__ import annotations

import difflib
import time
from datetime import UTC, datetime
from typing import Any

import click

from platform_core.cli.common import console, dumps, load_host, parse_json
from platform_core.errors import PlatformError, UnknownTask

READY = {"SUCCESS", "FAILURE", "REVOKED"}  # celery.states.READY_STATES, without importing it


def parse_eta(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        eta = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time; e.g. --eta 2026-01-01T12:00:00+08:00",
            param_hint="--eta",
        ) from None
    return eta if eta.tzinfo else eta.replace(tzinfo=UTC)


def _show_state(out: Any, state: str, info: Any) -> None:
    if state == "PROGRESS" and isinstance(info, dict):
        done, total = info.get("progress"), info.get("total")
        extra = {k: v for k, v in info.items() if k not in ("progress", "total")}
        head = f"PROGRESS {done}/{total}" if total is not None else f"PROGRESS {done}"
        out.print(head + (f" {dumps(extra)}" if extra else ""), highlight=False)
    else:
        out.print(state, highlight=False)


def _finish(out: Any, result: Any, show_traceback: bool) -> None:
    state = result.state
    if state == "SUCCESS":
        out.print(dumps(result.result), highlight=False)
        return
    if state == "FAILURE":
        error = result.result
        message = f"task failed: {type(error).__name__}: {error}"
        if show_traceback and result.traceback:
            out.print(result.traceback, highlight=False)
        raise click.ClickException(message)
    raise click.ClickException(f"task ended as {state}")


def wait_for(app: Any, task_id: str, timeout: float | None, show_traceback: bool) -> None:
    result = app.AsyncResult(task_id)
    out = console()
    deadline = None if timeout is None else time.monotonic() + timeout
    last: tuple[str, str] | None = None
    while True:
        meta = app.backend.get_task_meta(task_id)  # state and info of one moment
        state, info = meta["status"], meta["result"]
        seen = (state, repr(info) if state == "PROGRESS" else "")
        if seen != last:
            _show_state(out, state, info)
            last = seen
        if state in READY:
            _finish(out, result, show_traceback)
            return
        if deadline is not None and time.monotonic() > deadline:
            raise PlatformError(
                f"task {task_id} is still {state} after {timeout:g}s; if it stays PENDING, "
                "no worker consumes its queue (check with `platform queues` and "
                "`platform inspect active`)"
            )
        time.sleep(0.2)


@click.command()
@click.argument("task_name")
@click.option("--args", "args_json", metavar="JSON", help="Positional arguments, a JSON array.")
@click.option("--kwargs", "kwargs_json", metavar="JSON", help="Keyword arguments, a JSON object.")
@click.option("--countdown", type=click.FloatRange(min=0), help="Run after S seconds.")
@click.option("--eta", callback=lambda _c, _p, v: parse_eta(v), metavar="TIME",
              help="Run at this ISO 8601 time, e.g. 2026-01-01T12:00:00+08:00 (no offset: UTC).")
@click.option("--queue", help="Send to this queue instead of the task's route.")
@click.option("--wait", is_flag=True, help="Show state and progress until the task ends.")
@click.option("--timeout", type=click.FloatRange(min=0), help="With --wait: give up after S s.")
@click.option("--many", "many", type=click.File("r"), metavar="FILE",
              help="Send one message per line of FILE (JSON lines; - for stdin): an array of "
                   "positional arguments, an object of keyword arguments, or [array, object].")
def send(
    task_name: str,
    args_json: str | None,
    kwargs_json: str | None,
    countdown: float | None,
    eta: datetime | None,
    queue: str | None,
    wait: bool,
    timeout: float | None,
    many: Any,
) -> None:
    """Enqueue TASK_NAME and print its id (with --many, one id per line)."""
    if many is not None and (args_json or kwargs_json or wait):
        raise click.UsageError("--many takes the calls from FILE: drop --args, --kwargs and "
                               "--wait")
    args = parse_json("--args", args_json, list, "[1, 2]")
    kwargs = parse_json("--kwargs", kwargs_json, dict, '{"to": "a@example.com"}')
    from platform_core.broker.config import check_broker
    from platform_core.checks.namespaces import owns
    from platform_sdk.exceptions import InvalidTaskCall

    host = load_host()
    known = host.registry.task_map()
    if task_name not in known:
        broken = next((b for name, b in host.broken.items() if owns(name, task_name)), None)
        if broken is not None:
            raise UnknownTask(
                f"task `{task_name}` belongs to plugin `{broken.info.name}`, which is broken and "
                f"was left out: {broken.errors[0]}"
            )
        close = difflib.get_close_matches(task_name, list(known), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see `platform plugins show NAME`"
        raise UnknownTask(f"no enabled plugin provides task `{task_name}`; {hint}")
    if queue is not None and queue not in host.registry.queue_map():
        raise PlatformError(
            f"--queue {queue} is declared by no enabled plugin; see `platform queues`"
        )
    if wait and host.app.tasks[task_name].ignore_result:
        raise PlatformError(
            f"task `{task_name}` does not store results (ignore_result), so --wait would never "
            "see it finish; send it without --wait and follow it in the worker log"
        )
    options: dict[str, Any] = {}
    if countdown is not None:
        options["countdown"] = countdown
    if eta is not None:
        options["eta"] = eta
    if queue is not None:
        options["queue"] = queue
    if many is not None:
        from platform_core.cli.many import send_lines

        send_lines(host.app, task_name, many, options)
        return
    checks = host.app.enqueue_checks
    try:  # before reaching for the broker: a bad call fails the same everywhere
        if checks is not None:
            checks(task_name, args, kwargs, {})
    except InvalidTaskCall as exc:
        raise PlatformError(str(exc)) from None
    check_broker(host.app)
    result = host.app.tasks[task_name].apply_async(args, kwargs, **options)
    click.echo(result.id)
    if wait:
        wait_for(host.app, result.id, timeout, show_traceback=True)


def _pending(app: Any, task_id: str) -> str:
    """What PENDING means for ``task_id``: held for a long delay, dead-lettered, or not
    known (yet)."""
    from platform_core.ops.task_diagnosis import kept, when

    held, letter = kept(app, task_id)
    if held is not None:
        queue = held.message.queue or "its queue"
        return (f"SCHEDULED until {when(held.due)} (held by the platform: its countdown or eta "
                f"is beyond the broker's visibility timeout; a worker consuming `{queue}` sends "
                "it shortly before it is due)")
    if letter is not None:
        return (f"DEAD-LETTERED: {letter.reason} (see `platform dlq show {letter.id}`; "
                f"`platform dlq replay {letter.id}` sends it again)")
    return ("PENDING (unknown id, or not started yet: if it stays so, no worker consumes its "
            "queue; see `platform queues` and `platform inspect active`)")


@click.command()
@click.argument("task_id")
@click.option("--traceback", "show_traceback", is_flag=True, help="Show a failure's traceback.")
def result(task_id: str, show_traceback: bool) -> None:
    """Show the state and result of TASK_ID."""
    host = load_host()
    res = host.app.AsyncResult(task_id)
    out = console()
    state = res.state
    if state == "PENDING":
        out.print(_pending(host.app, task_id), highlight=False)
        return
    _show_state(out, state, res.info)
    if state in READY:
        _finish(out, res, show_traceback)


COMMANDS = [send, result]
