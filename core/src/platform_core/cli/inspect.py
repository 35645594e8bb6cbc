"""``platform inspect``: ask running workers over the broker.

``scheduled`` also lists the tasks the platform holds for a long delay (a countdown
beyond the broker's visibility timeout): no worker has them until shortly before
they are due.
"""

from __future__ import annotations

from typing import Any

import click

from platform_core.cli.common import dumps, load_host
from platform_core.errors import PlatformError

METHODS = ("active", "registered", "stats", "scheduled", "reserved", "active_queues", "ping")


@click.command()
@click.argument("what", type=click.Choice(METHODS))
@click.option("--timeout", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds to wait for replies.")
@click.option("-d", "--destination", help="Comma-separated worker names to ask.")
def inspect(what: str, timeout: float, destination: str | None) -> None:
    """Ask the running workers what they are doing (like `celery inspect`)."""
    from platform_core.broker.config import check_broker

    host = load_host()
    check_broker(host.app)
    targets = [d.strip() for d in destination.split(",") if d.strip()] if destination else None
    # With named workers, stop waiting as soon as each has answered.
    limit = len(targets) if targets else None
    inspector = host.app.control.inspect(timeout=timeout, destination=targets, limit=limit)
    replies = getattr(inspector, what)()
    silent = (f"no worker answered within {timeout:g}s; start one with `platform worker`, or "
              "raise --timeout")
    if what == "scheduled":
        held = held_entries(host.app)
        if held:
            if not replies:
                click.echo(f"warning: {silent}", err=True)
            replies = {**(replies or {}), HELD: held}
    if not replies:
        raise PlatformError(silent)
    click.echo(dumps(without_arguments(replies)))


def without_arguments(value: Any) -> Any:
    """``value`` with the arguments of every task request in it replaced by their types
    (as the platform's ``argsrepr`` shows them): workers report a request's arguments,
    which may hold secrets, and nothing the platform prints shows them."""
    from platform_core.app.arguments import shape

    if isinstance(value, list):
        return [without_arguments(item) for item in value]
    if not isinstance(value, dict):
        return value
    found = {key: without_arguments(item) for key, item in value.items()}
    if "id" in found and "args" in found and "kwargs" in found:
        args, kwargs = found["args"], found["kwargs"]
        if isinstance(args, (list, tuple)) and isinstance(kwargs, dict):
            found["args"], found["kwargs"] = shape(args, kwargs)
        else:  # a text another producer wrote (it may quote the values) or anything else
            found["args"], found["kwargs"] = "(hidden)", "{hidden}"
    return found


#: The key under which ``platform inspect scheduled`` lists the delays no worker holds.
HELD = "held by the platform (delay store)"


def held_entries(app: Any) -> list[dict[str, Any]]:
    """Tasks held for a long delay, in the shape of Celery's scheduled entries (due time,
    task id, name and queue; never the arguments), earliest first."""
    from platform_core import stores
    from platform_core.ops.task_diagnosis import when

    return [{"eta": when(item.due), "held": True,
             "request": {"id": item.task_id, "name": item.task,
                         "queue": item.message.queue}}
            for item in stores.for_app(app).delays.pending()]


COMMANDS = [inspect]
