"""Entry point and error handling of the ``platform`` command."""

from __future__ import annotations

import sys

import click

from platform_core.errors import PlatformError


class State:
    debug = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, envvar="PLATFORM_DEBUG",
              help="Show full tracebacks for errors.")
def cli(debug: bool) -> None:
    """Run and operate the plugin-based worker platform."""
    State.debug = debug
    if debug:
        from platform_core.loading import import_errors

        import_errors.full_tracebacks = True


def _register() -> None:
    from platform_core.cli import (
        api,
        dlq,
        doctor,
        flower,
        inspect,
        plugins,
        queues,
        scaffold,
        tasks,
        worker,
    )

    for module in (worker, plugins, queues, tasks, inspect, dlq, doctor, flower, api, scaffold):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="platform", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = 1
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except PlatformError as exc:
        if State.debug:
            raise
        click.echo(f"Error: {exc}", err=True)
        code = 2
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:
        if State.debug:
            raise
        click.echo(
            f"Error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for details)",
            err=True,
        )
        code = 1
    sys.exit(code if isinstance(code, int) else 0)
