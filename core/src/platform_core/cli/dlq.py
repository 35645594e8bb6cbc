"""``platform dlq``: list, show, replay and purge dead letters."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from platform_core.cli.common import console, dumps, load_host, name_width, table_fits
from platform_core.errors import PlatformError

if TYPE_CHECKING:
    from platform_core.host import Host
    from platform_core.stores.base import DeadLetterStore
    from platform_core.stores.records import DeadLetter

#: The narrowest the reason column of ``dlq list`` gets before it becomes blocks.
REASON_WIDTH = 24
SHORT_ID = 12


def _open() -> tuple[Host, DeadLetterStore]:
    from platform_core import stores

    host = load_host()
    return host, stores.for_app(host.app).dead_letters


def _find(letters: DeadLetterStore, ident: str) -> DeadLetter:
    entry = letters.get(ident)
    if entry is not None:
        return entry
    matches = [e for e in letters.list() if e.id.startswith(ident)] if ident else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise PlatformError(f"no dead letter has the id {ident!r}; see `platform dlq list`")
    raise PlatformError(
        f"{ident!r} starts {len(matches)} dead-letter ids "
        f"({', '.join(m.id[:SHORT_ID] for m in matches[:5])}...); give more of the id"
    )


def _chosen(letters: DeadLetterStore, ident: str | None, every: bool) -> list[DeadLetter]:
    if (ident is None) == (not every):
        raise click.UsageError("give a dead-letter ID or --all, not both")
    return letters.list() if every else [_find(letters, ident or "")]


@click.group()
def dlq() -> None:
    """Dead letters: messages the workers could not process."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--task", "task_name", metavar="NAME", help="Only dead letters of this task.")
@click.option("--plugin", metavar="NAME", help="Only dead letters of this plugin's tasks.")
def list_(as_json: bool, task_name: str | None, plugin: str | None) -> None:
    """List dead letters, oldest first."""
    from rich.table import Table
    from rich.text import Text

    _, letters = _open()
    entries = [e for e in letters.list()
               if (task_name is None or e.task == task_name)
               and (plugin is None or e.plugin == plugin)]
    if as_json:
        click.echo(json.dumps([e.summary() for e in entries], indent=2))
        return
    out = console()
    if not entries:
        out.print("No dead letters.", highlight=False)
        return
    # Names stay whole: a terminal too narrow for the table gets one block per letter.
    widths = {"id": SHORT_ID, "failed at (UTC)": len("2026-01-01 00:00:00"),
              **{column: name_width(column, (getattr(e, column) or "-" for e in entries))
                 for column in ("task", "plugin", "queue")},
              "deliveries": len("deliveries"), "reason": REASON_WIDTH}
    if not table_fits(widths.values(), out.width):
        out.print(f"{len(entries)} dead letters", highlight=False)
        for e in entries:
            out.print(f"\n[bold]{e.id[:SHORT_ID]}[/bold]  failed at "
                      f"{e.failed_at.strftime('%Y-%m-%d %H:%M:%S')} UTC, "
                      f"{e.deliveries} deliveries", highlight=False)
            out.print(Text(f"  task {e.task or '-'}\n  plugin {e.plugin or '-'}, queue "
                           f"{e.queue or '-'}\n  reason {e.reason}"))
        return
    table = Table(title=f"{len(entries)} dead letters", header_style="bold")
    for column, width in widths.items():
        table.add_column(column, no_wrap=column != "reason", min_width=width,
                         justify="right" if column == "deliveries" else "left",
                         overflow="fold" if column == "reason" else "ellipsis")
    for e in entries:
        table.add_row(e.id[:SHORT_ID], e.failed_at.strftime("%Y-%m-%d %H:%M:%S"),
                      e.task or "-", e.plugin or "-", e.queue or "-", str(e.deliveries),
                      e.reason)
    out.print(table)


@dlq.command()
@click.argument("entry_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with the whole message.")
def show(entry_id: str, as_json: bool) -> None:
    """Show one dead letter and its message (ID or a unique start of it)."""
    from rich.table import Table

    _, letters = _open()
    entry = _find(letters, entry_id)
    if as_json:
        click.echo(dumps(entry.to_dict()))
        return
    message = entry.message
    table = Table(show_header=False, title=f"dead letter {entry.id}")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, Any]] = [
        *((k, v) for k, v in entry.summary().items() if k != "id"),
        ("exchange / routing key", f"{message.exchange or '(default)'} / {message.routing_key}"),
        ("content type", f"{message.content_type} ({message.content_encoding})"),
        ("headers", dumps(message.headers)),
        ("properties", dumps(message.properties)),
        ("body" + (" (base64)" if message.binary else ""), message.body),
    ]
    if message.raw:
        rows.append(("replay", "not possible: these bytes were never a message"))
    for key, value in rows:
        table.add_row(key, "-" if value is None else str(value))
    console().print(table, highlight=False)


def _refusal(entry: DeadLetter, queues: Any, limits: Any) -> str | None:
    """Why ``entry`` cannot be replayed, or None: the same check a worker's receive path
    makes, so a replay never sends what a worker would refuse."""
    from kombu.serialization import loads

    from platform_core.worker.receive.protocol import message_problem

    message = entry.message
    if message.raw:
        return "the bytes were never a message; purge it instead"
    if entry.queue not in queues:
        return (f"its queue {entry.queue!r} is declared by no enabled plugin; enable the "
                "plugin that declares it (PLATFORM_PLUGINS)")
    body = message.body_bytes
    try:
        problem = message_problem(
            message.headers, message.properties, message.content_type,
            message.content_encoding, body,
            lambda: loads(body, message.content_type, message.content_encoding,
                          accept={"application/json"}), limits)
    except Exception as exc:  # noqa: BLE001 - what cannot even be checked is refused
        problem = f"it cannot be checked ({type(exc).__name__})"
    if problem is not None:
        return f"a worker would refuse it ({problem}); purge it instead"
    return None


@dlq.command()
@click.argument("entry_id", metavar="[ID]", required=False)
@click.option("--all", "every", is_flag=True, help="Replay every dead letter, oldest first.")
def replay(entry_id: str | None, every: bool) -> None:
    """Publish dead letters again, unchanged, to the queue they came from.

    Each is checked as a worker checks a message first; an entry is removed only
    after its message was published. ``--all`` stops at the first entry it refuses.
    """
    from platform_core.broker.config import check_broker
    from platform_core.worker.receive.gate import limits_for

    host, letters = _open()
    chosen = _chosen(letters, entry_id, every)
    if not chosen:
        click.echo("No dead letters.")
        return
    check_broker(host.app)
    queues = host.app.amqp.queues
    limits = limits_for(host.app)
    with host.app.producer_or_acquire() as producer:
        for done, entry in enumerate(chosen):
            label = f"{entry.id[:SHORT_ID]} ({entry.task or 'no task'}[{entry.task_id or '-'}])"
            refusal = _refusal(entry, queues, limits)
            if refusal is not None:
                if len(chosen) == 1:
                    raise PlatformError(f"cannot replay dead letter {label}: {refusal}")
                left = len(chosen) - done
                raise PlatformError(
                    f"replayed {done} of {len(chosen)} dead letters, then stopped at "
                    f"{label}: {refusal}. It and the {left - 1} after it are still in the "
                    "store; replay again once it is gone")
            entry.message.publish(producer, exchange="", routing_key=str(entry.queue),
                                  declare=[queues[entry.queue]])
            letters.remove(entry.id)
            click.echo(f"replayed {label} to queue {entry.queue}")


@dlq.command()
@click.argument("entry_id", metavar="[ID]", required=False)
@click.option("--all", "every", is_flag=True, help="Delete every dead letter.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(entry_id: str | None, every: bool, yes: bool) -> None:
    """Delete dead letters for good."""
    _, letters = _open()
    chosen = _chosen(letters, entry_id, every)
    if not chosen:
        click.echo("No dead letters.")
        return
    what = f"all {len(chosen)} dead letters" if every else f"dead letter {chosen[0].id}"
    if not yes:
        click.confirm(f"Delete {what}?", abort=True)
    removed = sum(letters.remove(entry.id) for entry in chosen)
    click.echo(f"deleted {removed} dead letter{'s' if removed != 1 else ''}")


COMMANDS = [dlq]
