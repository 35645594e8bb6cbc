"""``platform inspect``: ask running workers over the broker."""

from __future__ import annotations

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
    if not replies:
        raise PlatformError(
            f"no worker answered within {timeout:g}s; start one with `platform worker`, or "
            "raise --timeout"
        )
    click.echo(dumps(replies))


COMMANDS = [inspect]
