"""``platform worker`` and ``platform beat``."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import click

from platform_core.cli.common import console, load_host, split_names
from platform_core.errors import PlatformError

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}


GLOB = frozenset("*?[")


def resolve_queues(host: Any, names: list[str]) -> tuple[list[str], list[str]]:
    """The queues ``names`` ask for, in order and once each, and the names that match none.

    A name is a loaded plugin's (all the queues it declares, its namesake included), a
    glob such as ``admin.*`` (every declared queue it matches), or a queue's name.
    """
    declared = host.registry.queue_map()
    chosen: dict[str, None] = {}
    unknown: list[str] = []
    for name in names:
        if name in host.plugins:
            found = [q for q, c in declared.items() if c.plugin.name == name]
        elif GLOB & set(name):
            found = [q for q in declared if fnmatchcase(q, name)]
        else:
            found = [name] if name in declared else []
        if not found:
            unknown.append(name)
        chosen.update(dict.fromkeys(found))
    return list(chosen), unknown


def select_queues(host: Any, queues: str | None) -> list[str]:
    declared = host.registry.queue_map()
    if queues is None:
        if not declared:
            raise PlatformError(
                "the selected plugins declare no queues, so this worker would consume nothing; "
                "select plugins that declare queues (--plugins) or name queues with -Q"
            )
        return list(declared)
    chosen, unknown = resolve_queues(host, split_names(queues) or [])
    if unknown or not chosen:
        raise PlatformError(
            f"-Q names {', '.join(unknown) or 'no queue'}, which no loaded plugin declares "
            f"(declared: {', '.join(declared) or 'none'}); fix -Q (queue names, plugin names "
            "or globs like admin.*) or add the plugin with --plugins"
        )
    return chosen


def tuning_table(host: Any, queues: list[str], from_flag: str | None, tuned: dict[str, Any]
                 ) -> Any:
    from rich.table import Table

    from platform_core.redaction import redact

    table = Table(title="platform worker", show_header=True, header_style="bold")
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    table.add_column("from")
    conf = host.app.conf
    table.add_row("broker", redact(conf.broker_url), "configuration")
    table.add_row("result backend", redact(str(conf.result_backend)), "configuration")
    table.add_row("queues", ", ".join(queues), f"command line (-Q {from_flag})" if from_flag
                  else "plugins")
    table.add_row("dead letters", redact(conf.platform_dead_letter_database),
                  conf.platform_dead_letter_source)
    for item in tuned.values():
        value = "CPU count" if item.value is None and item.name == "concurrency" else item.value
        table.add_row(item.name.replace("_", "-"), str("unlimited" if value is None else value),
                      item.source)
    if host.app.conf.worker_disable_prefetch:
        table.add_row("reserves", "one task per pool process (no prefetch)",
                      "platform default (Redis)")
    for info in host.plugins.values():
        counts = host.registry.counts(info.name)
        table.add_row(
            f"plugin {info.name}",
            f"{info.distribution} {info.version}",
            f"{counts['tasks']} tasks, {counts['queues']} queues",
        )
    add_broken_rows(table, host)
    return table


def add_broken_rows(table: Any, host: Any) -> None:
    for broken in host.broken.values():
        info = broken.info
        table.add_row(f"plugin {info.name}", f"{info.distribution} {info.version}",
                      f"BROKEN, left out: {len(broken.errors)} problem(s), see the log above")


STRICT_HELP = "Refuse to start if any plugin is broken (default: PLATFORM_STRICT, off)."


@click.command(context_settings=PASS_THROUGH)
@click.option("--plugins", help="Comma-separated plugins to load (default: all enabled).")
@click.option("--strict", is_flag=True, default=None, help=STRICT_HELP)
@click.option("-Q", "--queues",
              help="Queues to consume: queue names, plugin names (all their queues) or globs "
                   "like 'admin.*' (default: the loaded plugins' queues).")
@click.option("-c", "--concurrency", type=click.IntRange(min=1))
@click.option("--max-tasks-per-child", type=click.IntRange(min=1))
@click.option("--max-memory-per-child", type=click.IntRange(min=1), help="KiB.")
@click.option("--prefetch-multiplier", type=click.IntRange(min=1))
@click.option("-P", "--pool", type=click.Choice(["prefork", "threads", "solo"]))
@click.option("-l", "--loglevel", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(
    plugins: str | None,
    strict: bool | None,
    queues: str | None,
    loglevel: str,
    celery_args: tuple[str, ...],
    **cli_tuning: Any,
) -> None:
    """Start a worker for the selected plugins. Other Celery worker options pass through."""
    from platform_core.app.builder import AppOptions
    from platform_core.app.tuning import WorkerFlags
    from platform_core.broker.config import check_broker

    flags = WorkerFlags(
        concurrency=cli_tuning["concurrency"],
        max_tasks_per_child=cli_tuning["max_tasks_per_child"],
        max_memory_per_child=cli_tuning["max_memory_per_child"],
        prefetch_multiplier=cli_tuning["prefetch_multiplier"],
        pool=cli_tuning["pool"],
    )
    host = load_host(plugins, strict, AppOptions(worker_flags=flags))
    chosen = select_queues(host, queues)
    tuned = host.tuning
    console().print(tuning_table(host, chosen, queues, tuned))
    if host.app.conf.platform_dead_letter_note:
        console(stderr=True).print(f"Note: {host.app.conf.platform_dead_letter_note}",
                                   highlight=False)
    check_broker(host.app)
    argv = ["worker", "-Q", ",".join(chosen), "-l", loglevel,
            "-P", str(tuned["pool"].value),
            "--prefetch-multiplier", str(tuned["prefetch_multiplier"].value)]
    for name in ("concurrency", "max_tasks_per_child", "max_memory_per_child"):
        if tuned[name].value is not None:
            argv += [f"--{name.replace('_', '-')}", str(tuned[name].value)]
    host.app.worker_main([*argv, *celery_args])


@click.command(context_settings=PASS_THROUGH)
@click.option("--plugins", help="Run only these plugins' entries (needs --partial).")
@click.option("--partial", is_flag=True,
              help="Allow a beat that runs only some enabled plugins' entries.")
@click.option("--strict", is_flag=True, default=None, help=STRICT_HELP)
@click.option("-l", "--loglevel", default="INFO", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(plugins: str | None, partial: bool, strict: bool | None, loglevel: str,
         celery_args: tuple[str, ...]) -> None:
    """Run the scheduler with the beat entries of every enabled plugin."""
    from rich.table import Table

    from platform_core.broker.config import check_broker

    if plugins is not None and not partial:
        raise PlatformError(
            "platform beat runs every enabled plugin's entries; --plugins would silently drop "
            "the others' periodic work. Add --partial if that is what you want"
        )
    from platform_core.app.builder import AppOptions

    host = load_host(plugins, strict, AppOptions(partial_beat=plugins is not None))
    table = Table(title="platform beat", header_style="bold")
    for column in ("entry", "task", "schedule", "plugin"):
        table.add_column(column)
    for c in host.registry.beat_entries:
        table.add_row(c.item.name, c.item.task, c.item.schedule.describe(), c.plugin.name)
    console().print(table)
    check_broker(host.app)
    host.settings.resolved_home.mkdir(parents=True, exist_ok=True)  # holds the schedule file
    host.app.start(["beat", "-l", loglevel, *celery_args])


COMMANDS = [worker, beat]
