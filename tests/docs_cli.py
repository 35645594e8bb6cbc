"""The ``--help`` blocks of docs/cli.md, compared with what the ``platform`` command prints.

A help block is a fenced ``console`` block whose first line is ``$ platform ... --help``
and whose other lines are exactly that command's help, as click renders it on an
80-column terminal. Every command and subcommand has one. To bring them up to date:

    python -m tests.docs_cli            # list the commands whose block is stale or missing
    python -m tests.docs_cli --write    # rewrite those blocks in docs/cli.md

``--write`` replaces the body of each stale block and puts a missing command's block
right under the heading that names it (``## `platform queues` ``); a command without
such a heading is reported, for its block to be placed by hand. The prose around the
blocks stays as it is: read it again when an option changes.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
from click.testing import CliRunner

from tests.markdown import Block, Heading, parse

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = ROOT / "docs" / "cli.md"
WIDTH = 80
PROMPT = re.compile(r"^\$ platform((?: [a-z][a-z0-9_-]*)*) --help$")
REGENERATE = "python -m tests.docs_cli --write"

CommandPath = tuple[str, ...]


def root() -> click.Group:
    from platform_core.cli.main import cli

    return cli


def subcommand(group: click.Command, name: str) -> click.Command | None:
    """``group``'s subcommand ``name`` as the command line finds it (lazy groups too)."""
    if not isinstance(group, click.Group):
        return None
    return group.get_command(click.Context(group), name)


def _walk(command: click.Command, path: CommandPath) -> Iterator[CommandPath]:
    yield path
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            sub = subcommand(command, name)
            if sub is not None and not sub.hidden:
                yield from _walk(sub, (*path, name))


def commands() -> list[CommandPath]:
    """Every command of ``platform``, the group itself first (``()``), then depth first."""
    return list(_walk(root(), ()))


def command_line(path: CommandPath) -> str:
    return " ".join(("platform", *path))


def render_help(path: CommandPath) -> str:
    """``platform PATH --help`` as a terminal WIDTH columns wide shows it, whatever the
    caller's terminal: click wraps help two columns short of the terminal's width (the
    runner would otherwise wrap at 80 whatever ``COLUMNS`` says)."""
    result = CliRunner().invoke(root(), [*path, "--help"], prog_name="platform",
                                terminal_width=WIDTH - 2)
    if result.exit_code != 0 or result.stderr:
        raise RuntimeError(f"`{command_line(path)} --help` failed ({result.exit_code}): "
                           f"{result.output}")
    return result.stdout


def expected_body(path: CommandPath) -> tuple[str, ...]:
    """The lines of PATH's help block: the prompt, then the help."""
    return (f"$ {command_line(path)} --help", *render_help(path).rstrip("\n").splitlines())


@dataclass(frozen=True)
class HelpBlock:
    path: CommandPath
    block: Block


def help_blocks(text: str) -> list[HelpBlock]:
    found = []
    for block in parse(text).blocks:
        prompt = PROMPT.match(block.body[0]) if block.body else None
        if prompt:
            found.append(HelpBlock(tuple(prompt[1].split()), block))
    return found


def command_of(words: list[str]) -> CommandPath:
    """The command ``platform WORDS...`` names, ignoring arguments: ``plugins show NAME``
    is ``("plugins", "show")``."""
    command: click.Command = root()
    path: list[str] = []
    for word in words:
        sub = subcommand(command, word)
        if sub is None:
            break
        command = sub
        path.append(word)
    return tuple(path)


def diff(path: CommandPath, documented: tuple[str, ...], actual: tuple[str, ...]) -> str:
    return "\n".join(difflib.unified_diff(
        documented, actual, "docs/cli.md", f"{command_line(path)} --help", lineterm="",
    ))


def problems(text: str) -> dict[CommandPath, str]:
    """Per command, what is wrong with its help block in ``text`` (nothing if all is well)."""
    blocks: dict[CommandPath, list[HelpBlock]] = {}
    for found in help_blocks(text):
        blocks.setdefault(found.path, []).append(found)
    known = commands()
    wrong: dict[CommandPath, str] = {}
    for path, found_blocks in blocks.items():
        if path not in known:
            lines = ", ".join(str(f.block.opening) for f in found_blocks)
            wrong[path] = (f"docs/cli.md (line {lines}) shows `{command_line(path)} --help`, "
                           "but there is no such command; remove the block")
    for path in known:
        name = f"`{command_line(path)} --help`"
        found_blocks = blocks.get(path, [])
        if not found_blocks:
            wrong[path] = (f"docs/cli.md has no block for {name}; `{REGENERATE}` puts one under "
                           f"a heading naming `{command_line(path)}`, else add a console block "
                           f"whose first line is `$ {command_line(path)} --help` and rerun it")
        elif len(found_blocks) > 1:
            lines = ", ".join(str(f.block.opening) for f in found_blocks)
            wrong[path] = f"docs/cli.md shows {name} {len(found_blocks)} times (lines {lines}); keep one"
        else:
            documented = found_blocks[0].block.body
            actual = expected_body(path)
            if documented != actual:
                wrong[path] = (f"docs/cli.md (line {found_blocks[0].block.opening}) shows {name} "
                               f"other than the command prints it; regenerate it with "
                               f"`{REGENERATE}`\n{diff(path, documented, actual)}")
    return wrong


def rewrite(text: str) -> str:
    """``text`` with every help block current, and a block for each command that had none
    under the first heading that names it."""
    lines = text.splitlines()
    known = set(commands())
    found = {f.path: f for f in help_blocks(text) if f.path in known}
    # bottom up, so the line numbers of the blocks still to do stay valid
    for path, help_block in sorted(found.items(), key=lambda item: -item[1].block.opening):
        block = help_block.block
        lines[block.opening:block.closing - 1] = expected_body(path)
    document = parse("\n".join(lines) + "\n")
    homes: dict[CommandPath, Heading] = {}
    for heading in document.headings:
        words = heading.plain.split()
        if words[:1] == ["platform"]:
            homes.setdefault(command_of(words[1:]), heading)
    placed = sorted(((homes[path].line, path) for path in known - set(found) if path in homes),
                    reverse=True)
    for line, path in placed:
        lines[line:line] = ["", "```console", *expected_body(path), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.docs_cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true",
                        help="rewrite stale or missing help blocks in docs/cli.md")
    options = parser.parse_args(argv)
    text = CLI_DOC.read_text(encoding="utf-8")
    if options.write:
        new = rewrite(text)
        if new != text:
            CLI_DOC.write_text(new, encoding="utf-8")
        text = new
    wrong = problems(text)
    for path, problem in wrong.items():
        print(f"{command_line(path)}: {problem}")
    if not wrong:
        print(f"docs/cli.md: the help of all {len(commands())} commands is current")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
