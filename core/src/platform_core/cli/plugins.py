"""``platform plugins list|show``."""

from __future__ import annotations

import json
from typing import Any

import click

from platform_core.cli.common import console, load_host, name_width, table_fits
from platform_core.errors import PlatformError

KINDS = ("tasks", "queues", "routes", "beat_entries")


def _hooks_of(host: Any, name: str) -> list[str]:
    hooks = {kind for kind, _ in host.registry.of_plugin(name)}
    return sorted("settings" if k == "settings_models" else k for k in hooks)


def _summary(host: Any) -> list[dict[str, Any]]:
    rows = []
    for info in host.plugins.values():
        rows.append({
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "module": info.target,
            "status": "ok",
            "errors": [],
            "hooks": _hooks_of(host, info.name),
            **host.registry.counts(info.name),
        })
    for broken in host.broken.values():
        info = broken.info
        rows.append({
            "name": info.name,
            "distribution": info.distribution,
            "version": info.version,
            "module": info.target,
            "status": "broken",
            "errors": list(broken.errors),
            "hooks": [],
            **dict.fromkeys(KINDS, 0),
        })
    return sorted(rows, key=lambda row: row["name"])


#: The narrowest the contributes column of ``plugins list`` gets before it becomes blocks.
CONTRIBUTES_WIDTH = 12
_ONE = {"tasks": "task", "queues": "queue", "routes": "route", "beat_entries": "beat entry"}


def _contributes(row: dict[str, Any]) -> str:
    """``3 tasks, 2 queues, 1 beat entry, settings``: the counts, then the other hooks."""
    parts = [f"{row[kind]} {_ONE[kind] if row[kind] == 1 else kind.replace('_', ' ')}"
             for kind in KINDS if row[kind]]
    parts += [hook.removeprefix("register_").replace("_", " ") for hook in row["hooks"]
              if hook.removeprefix("register_") not in KINDS]
    return ", ".join(parts) or "-"


def _load_quietly() -> Any:
    """The host, broken plugins left out (not logged: these commands show them); its
    warnings go to standard error."""
    import logging

    logging.getLogger("platform").setLevel(logging.ERROR)
    host = load_host(strict=False)
    for warning in host.warnings:
        console(stderr=True).print(f"Warning: {warning}", highlight=False, markup=False)
    return host


@click.group()
def plugins() -> None:
    """Inspect installed plugins."""


@plugins.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """The enabled plugins, whether each loaded, and what each contributes."""
    from rich.table import Table
    from rich.text import Text

    host = _load_quietly()
    rows = _summary(host)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    # Names stay whole: what a plugin contributes wraps by words, and a terminal too
    # narrow for the names gets one block per plugin instead of a table.
    out = console()
    widths = {column: name_width(column, (row[key] for row in rows))
              for column, key in (("plugin", "name"), ("distribution", "distribution"),
                                  ("version", "version"))}
    widths.update(status=len("BROKEN"), contributes=CONTRIBUTES_WIDTH)
    if not table_fits(widths.values(), out.width):
        for row in rows:
            status = "ok" if row["status"] == "ok" else "[bold red]BROKEN[/bold red]"
            out.print(f"[bold]{row['name']}[/bold]  {row['distribution']} {row['version']}  "
                      f"{status}", highlight=False)
            out.print(Text(f"  {_contributes(row)}"))
    else:
        table = Table(header_style="bold")
        for column, width in widths.items():
            table.add_column(column, no_wrap=column != "contributes", min_width=width)
        for row in rows:
            status = "ok" if row["status"] == "ok" else "[bold red]BROKEN[/bold red]"
            table.add_row(row["name"], row["distribution"], row["version"], status,
                          _contributes(row))
        out.print(table)
    for row in rows:
        for error in row["errors"]:
            out.print(f"broken: {error}", highlight=False, markup=False)


def _error_name(cls: type) -> str:
    name = cls.__qualname__
    return name if cls.__module__ == "builtins" else f"{cls.__module__}.{name}"


def _seconds(value: Any) -> str:
    return f"{value:g} s" if isinstance(value, (int, float)) else str(value)


def retries(task: Any) -> str:
    """What Celery will do when ``task`` raises, read from the task as built: the errors
    it retries on automatically, how often and after which delays."""
    from platform_sdk.exceptions import InvalidTaskCall

    kwargs = dict(getattr(task, "retry_kwargs", None) or {})
    most = kwargs.get("max_retries", task.max_retries)
    limit = "no limit" if most is None else f"at most {most}"
    on = tuple(getattr(task, "autoretry_for", None) or ())
    if not on:
        return (f"no automatic retry; an explicit self.retry() retries {limit}, after "
                f"{_seconds(kwargs.get('countdown', task.default_retry_delay))}")
    backoff = task.retry_backoff
    if "countdown" in kwargs:
        delay = f"after {_seconds(kwargs['countdown'])} each time"
    elif backoff:
        first = 1 if backoff is True else backoff
        delay = (f"after {_seconds(first)}, doubling each time up to "
                 f"{_seconds(task.retry_backoff_max)}"
                 + (", with full jitter (a random part of that delay)" if task.retry_jitter
                    else ""))
    else:
        delay = f"after {_seconds(task.default_retry_delay)} each time"
    never = [c for c in getattr(task, "dont_autoretry_for", ()) or () if c is not InvalidTaskCall]
    text = f"retries on {', '.join(_error_name(c) for c in on)}: {limit}, {delay}"
    if never:
        text += f"; never on {', '.join(_error_name(c) for c in never)}"
    return text


def _describe(kind: str, item: Any, host: Any) -> str:
    if kind == "tasks":
        spec = item.spec
        real = host.app.tasks[spec.name]
        own = "autoretry_for" in spec.options or "retry_kwargs" in spec.options
        policy = "own Celery options" if own and real.retry_policy_name == "default" \
            else real.retry_policy_name
        parts = [f"queue={host.queue_of(spec.name)}", f"retry={policy}"]
        for key in ("time_limit", "soft_time_limit", "rate_limit", "global_rate_limit"):
            if getattr(spec, key) is not None:
                parts.append(f"{key}={getattr(spec, key)}")
        if spec.bind:
            parts.append("bind")
        if spec.idempotent:
            parts.append("idempotent")
        return f"{spec.name}  ({', '.join(parts)})\n      {retries(real)}"
    if kind == "queues":
        return f"{item.name}  (routing key {item.key})"
    if kind == "routes":
        return f"{item.pattern} → {item.queue}"
    if kind == "beat_entries":
        return f"{item.name}: {item.task} {item.schedule.describe()}"
    if kind == "retry_policies":
        return (f"{item.name}: max {item.max_retries} retries, backoff {item.backoff_base}s "
                f"→ {item.backoff_cap}s, jitter {'on' if item.jitter else 'off'}, "
                f"on {', '.join(item.retry_on) or 'explicit retry only'}")
    if kind == "worker_hints":
        return ", ".join(f"{k}={v}" for k, v in item.model_dump(exclude_none=True).items())
    if kind == "settings_models":
        value = host.plugin_settings.get(item)
        from platform_core.redaction import shown

        dumped = value.model_dump(mode="json") if value is not None else {}
        return f"{item.__name__}: {json.dumps(shown(dumped), default=repr)}"
    return repr(item)


@plugins.command()
@click.argument("name")
def show(name: str) -> None:
    """Every item plugin NAME contributes."""
    host = _load_quietly()
    info = host.plugins.get(name)
    if info is None and name in host.broken:
        broken = host.broken[name]
        raise PlatformError(
            f"plugin `{name}` ({broken.info.distribution} {broken.info.version}) is broken and "
            f"was left out: {'; '.join(broken.errors)}"
        )
    if info is None:
        raise PlatformError(
            f"plugin `{name}` is not loaded (loaded: {', '.join(host.plugins) or 'none'}); "
            "check the name with `platform plugins list`"
        )
    out = console()
    out.print(f"[bold]{info.name}[/bold]  {info.distribution} {info.version}  ({info.target})")
    grouped: dict[str, list[str]] = {}
    for kind, c in host.registry.of_plugin(name):
        grouped.setdefault(kind, []).append(_describe(kind, c.item, host))
    for kind, lines in grouped.items():
        out.print(f"\n[bold]{kind.replace('_', ' ').replace('models', 'model')}[/bold]")
        for line in lines:
            out.print(f"  {line}", highlight=False)


COMMANDS = [plugins]
