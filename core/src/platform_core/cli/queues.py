"""``platform queues``: the declared queues, the routes into them and each one's backlog."""

from __future__ import annotations

from typing import Any

import click

from platform_core.cli.common import console, dumps, load_host


def _declared(host: Any) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    tasks_by_queue: dict[str, list[str]] = {}
    for c in host.registry.tasks:
        tasks_by_queue.setdefault(host.queue_of(c.item.name), []).append(c.item.name)
    queues = [{"name": q.item.name, "routing_key": q.item.key, "plugin": q.plugin.name,
               "tasks": tasks_by_queue.get(q.item.name, [])} for q in host.registry.queues]
    routes = [{"pattern": r.item.pattern, "queue": r.item.queue, "plugin": r.plugin.name}
              for r in host.router.routes]
    return queues, routes


def _measure(host: Any, queues: list[dict[str, Any]]) -> Any:
    from platform_core.telemetry.backlog import measure

    return measure(host.app, [q["name"] for q in queues], host.settings.backlog_due_soon)


@click.command()
@click.option("--json", "json_output", is_flag=True, help="Print JSON.")
def queues(json_output: bool) -> None:
    """Queues, the routes into them, the plugins that declare them, and each queue's
    backlog (ready + reserved + running + held delays due soon)."""
    from rich.table import Table

    host = load_host()
    declared, routes = _declared(host)
    if json_output:
        backlog = _measure(host, declared).as_dict()
        parts = backlog.pop("queues")
        rows = [{**q, **parts[q["name"]]} for q in declared]
        click.echo(dumps({**backlog, "queues": rows, "routes": routes}))
        return
    table = Table(title="queues", header_style="bold")
    for column in ("queue", "routing key", "plugin", "tasks"):
        table.add_column(column)
    for q in declared:
        table.add_row(q["name"], q["routing_key"], q["plugin"], ", ".join(q["tasks"]))
    routed = Table(title="routes (most specific first)", header_style="bold")
    for column in ("pattern", "queue", "plugin"):
        routed.add_column(column)
    for r in routes:
        routed.add_row(r["pattern"], r["queue"], r["plugin"])
    out = console()
    out.print(table)
    out.print(routed)
    measured = _measure(host, declared)
    title = (f"backlog ({measured.broker}; {measured.workers} worker(s) reporting; held "
             f"delays due within {measured.due_soon:g} s count)")
    backlog = Table(title=title, header_style="bold")
    for column in ("queue", "ready", "reserved", "running", "held soon", "held later",
                   "backlog"):
        backlog.add_column(column, justify="left" if column == "queue" else "right")
    for name, b in measured.queues.items():
        backlog.add_row(name, *(str(n) for n in (b.ready, b.reserved, b.running,
                                                b.held_due_soon, b.held_later, b.backlog)))
    out.print(backlog)


COMMANDS = [queues]
