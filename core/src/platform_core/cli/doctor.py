"""``platform doctor``: find why tasks do not run, and say what to do."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from platform_core.cli.common import console, load_host

if TYPE_CHECKING:
    from platform_core.host import Host
    from platform_core.ops.diagnosis import Diagnosis

STYLE = {"error": "bold red", "warning": "bold yellow", "info": "green"}
LABEL = {"error": "error", "warning": "warning", "info": "ok"}


def as_json(host: Host, report: Diagnosis, task_id: str | None) -> str:
    from platform_core.ops.diagnosis import report_data

    data = report_data(host, report)
    if task_id is not None:
        data["task_id"] = task_id
    return json.dumps(data, indent=2)


def show(host: Host, report: Diagnosis) -> None:
    from rich.markup import escape
    from rich.table import Table

    from platform_core.ops.diagnosis import report_data

    out = console()
    rows = report_data(host, report)["queues"]
    if rows:
        table = Table(title="queues", header_style="bold")
        for column in ("queue", "plugin", "waiting", "consumed by"):
            table.add_column(column)
        for row in rows:
            consumers = ", ".join(row["consumers"]) or "[red]nobody[/red]"
            table.add_row(escape(row["name"]), row["plugin"] or "-", str(row["waiting"]),
                          consumers)
        out.print(table)
    for f in report.findings:
        out.print(f"[{STYLE[f.severity]}]{LABEL[f.severity]:>7}[/]  {escape(f.problem)}")
        if f.culprit and f.severity != "info":
            out.print(f"         culprit: {escape(f.culprit)}", highlight=False)
        if f.fix:
            out.print(f"         fix: {escape(f.fix)}", highlight=False)
    problems = [f for f in report.findings if f.severity != "info"]
    if problems:
        errors = sum(f.severity == "error" for f in problems)
        out.print(f"\n{errors} error(s), {len(problems) - errors} warning(s)")
    else:
        out.print("\nno problems found")


@click.command()
@click.option("--task-id", metavar="ID", help="Explain the state of this task instead.")
@click.option("--json", "json_output", is_flag=True, help="Print JSON.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Seconds to wait for the broker and for the workers' replies.")
@click.pass_context
def doctor(ctx: click.Context, task_id: str | None, json_output: bool, timeout: float) -> None:
    """Find what keeps tasks from running (exit status 1 if anything is wrong)."""
    from platform_core.app.builder import AppOptions
    from platform_core.ops import diagnosis, task_diagnosis
    from platform_core.redaction import redact

    host = load_host(options=AppOptions(io_timeout=timeout))
    deadline = 10 * timeout + 10
    done, report = diagnosis.run_bounded(
        (lambda: task_diagnosis.explain_task(host, task_id, timeout)) if task_id
        else (lambda: diagnosis.diagnose(host, timeout)),
        deadline,
    )
    if not done:
        report = diagnosis.Diagnosis(broker=redact(host.app.conf.broker_url))
        report.findings.append(diagnosis.Finding(
            "broker", "error",
            f"the checks did not finish within {deadline:g}s: the broker stopped answering "
            "while they ran",
            f"broker {report.broker} (PLATFORM_BROKER_URL)",
            "check the broker's health and network, then run `platform doctor` again",
        ))
    if json_output:
        click.echo(as_json(host, report, task_id))
    else:
        show(host, report)
    ctx.exit(0 if report.healthy else 1)


COMMANDS = [doctor]
