"""The docs say what the code does: every hook is in the hooks reference under its exact
signature, and docs/cli.md shows every command's ``--help`` as the command prints it.

A failing help check names the command; ``python -m tests.docs_cli --write`` rewrites the
stale blocks (see tests/docs_cli.py).
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pluggy
import pytest

from platform_sdk import hookspecs
from tests import docs_cli
from tests.markdown import Block, Document, Heading, parse

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GUIDE = DOCS / "writing-plugins.md"
REFERENCE = "Hooks"  # the `## Hooks` section of docs/writing-plugins.md
CALL = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*\((?P<args>.*)\)$")

SPECS: dict[str, Callable[..., Any]] = {
    name: fn for name, fn in vars(hookspecs).items()
    if inspect.isfunction(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec")
}


def signature(spec: Callable[..., Any]) -> str:
    """``register_tasks(register)``: the hook's name and parameters as an implementation
    spells them, from the spec's own signature (annotations left out)."""
    params = [p.replace(annotation=inspect.Parameter.empty)
              for p in inspect.signature(spec).parameters.values()]
    return f"{spec.__name__}{inspect.Signature(params)}"


def documents() -> dict[str, Document]:
    return {path.name: parse(path.read_text(encoding="utf-8"))
            for path in sorted(DOCS.glob("*.md"))}


def reference(guide: Document) -> Heading:
    found = [h for h in guide.headings if h.level == 2 and h.plain == REFERENCE]
    assert len(found) == 1, f"docs/{GUIDE.name} needs one `## {REFERENCE}` section, has {len(found)}"
    return found[0]


def hook_headings() -> list[tuple[str, Heading]]:
    """Every heading that documents a hook: each heading of the hooks reference, and any
    heading elsewhere that names a ``register_*`` hook or is shaped like a call of one."""
    found = []
    docs = documents()
    in_reference = {h.line for h in docs[GUIDE.name].headings_in(reference(docs[GUIDE.name]))}
    for name, doc in docs.items():
        for heading in doc.headings:
            call = CALL.match(heading.plain)
            named = call["name"] if call else heading.plain
            if ((name == GUIDE.name and heading.line in in_reference)
                    or named in SPECS or named.startswith("register_")):
                found.append((name, heading))
    return found


def hook_section(name: str) -> tuple[Document, Heading]:
    guide = parse(GUIDE.read_text(encoding="utf-8"))
    wanted = signature(SPECS[name])
    for heading in guide.headings_in(reference(guide)):
        if heading.plain == wanted:
            return guide, heading
    pytest.fail(f"docs/{GUIDE.name} has no heading `### {wanted}` in its `## {REFERENCE}` section")


def test_the_hookspecs_are_found() -> None:
    assert "register_tasks" in SPECS
    assert len(SPECS) >= 7


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_has_one_heading_with_its_signature(name: str) -> None:
    wanted = signature(SPECS[name])
    places = [f"docs/{doc}:{heading.line}" for doc, heading in hook_headings()
              if heading.plain == wanted]
    assert len(places) == 1, (
        f"hook {name} should have exactly one heading `### {wanted}` in the `## {REFERENCE}` "
        f"section of docs/{GUIDE.name}; found {len(places)}: {places}"
    )
    guide = parse(GUIDE.read_text(encoding="utf-8"))
    assert any(h.plain == wanted for h in guide.headings_in(reference(guide))), (
        f"the heading `{wanted}` belongs in the `## {REFERENCE}` section of docs/{GUIDE.name}"
    )


def test_every_hook_heading_names_a_hook_with_its_signature() -> None:
    wrong = []
    for doc, heading in hook_headings():
        call = CALL.match(heading.plain)
        name = call["name"] if call else heading.plain
        if name not in SPECS:
            wrong.append(f"docs/{doc}:{heading.line} `{heading.text}`: there is no hook {name}")
        elif heading.plain != signature(SPECS[name]):
            wrong.append(f"docs/{doc}:{heading.line} `{heading.text}`: the hook's signature is "
                         f"`{signature(SPECS[name])}`")
    assert not wrong, "hook headings that do not match sdk/src/platform_sdk/hookspecs.py:\n  " + (
        "\n  ".join(wrong))


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_section_gives_the_type_of_register(name: str) -> None:
    guide, heading = hook_section(name)
    start, end = guide.section(heading)
    text = "\n".join(guide.lines[start:end - 1])
    params = inspect.signature(SPECS[name]).parameters.values()
    for param in params:
        spelled = f"`{param.name}: {param.annotation}`"
        assert spelled in " ".join(text.split()), (
            f"docs/{GUIDE.name}:{heading.line}, {heading.text}: say what the hook receives as "
            f"{spelled}, as sdk/src/platform_sdk/hookspecs.py declares it"
        )


def example(name: str) -> tuple[Block, types.ModuleType]:
    """The hook section's Python example, run as a plugin module."""
    guide, heading = hook_section(name)
    blocks = [b for b in guide.blocks_in(heading) if b.info == "python"]
    assert blocks, f"docs/{GUIDE.name}:{heading.line}, {heading.text}: give a Python example"
    block = blocks[0]
    module = types.ModuleType(f"docs_example_{name}")
    code = compile("\n".join(block.body), f"docs/{GUIDE.name}:{block.opening + 1}", "exec")
    exec(code, module.__dict__)
    return block, module


def item_type(name: str) -> Any:
    """What ``register`` takes, from the spec's annotation: ``Callable[[Queue], None]``."""
    (accepted,), _ = get_args(get_type_hints(SPECS[name])["register"])
    return accepted


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_example_is_a_working_implementation(name: str) -> None:
    block, module = example(name)
    where = f"docs/{GUIDE.name}:{block.opening}"
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(module)  # checks the argument names against the spec
    pm.check_pending()  # no @hookimpl of a hook that does not exist
    impls = getattr(pm.hook, name).get_hookimpls()
    assert [i.plugin for i in impls] == [module], f"{where}: the example does not implement {name}"
    items: list[Any] = []
    getattr(pm.hook, name)(register=items.append)
    assert items, f"{where}: the example of {name} registers nothing"
    accepted = item_type(name)
    for item in items:
        if get_origin(accepted) is type:
            (base,) = get_args(accepted)
            ok = isinstance(item, type) and issubclass(item, base)
        else:
            ok = isinstance(item, get_origin(accepted) or accepted)
        assert ok, f"{where}: the example of {name} registers {item!r}, not a {accepted}"


# --- docs/cli.md --------------------------------------------------------------------------

COMMANDS = docs_cli.commands()


def test_the_command_tree_is_walked() -> None:
    assert () in COMMANDS
    assert ("dlq", "replay") in COMMANDS
    assert ("plugins", "show") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=docs_cli.command_line)
def test_cli_doc_shows_the_help_of(path: docs_cli.CommandPath) -> None:
    problem = docs_cli.problems(docs_cli.CLI_DOC.read_text(encoding="utf-8")).get(path)
    assert problem is None, f"{docs_cli.command_line(path)}: {problem}"


def test_cli_doc_shows_no_help_of_a_missing_command() -> None:
    wrong = docs_cli.problems(docs_cli.CLI_DOC.read_text(encoding="utf-8"))
    stale = [problem for path, problem in wrong.items() if path not in COMMANDS]
    assert not stale, "\n".join(stale)


@pytest.mark.parametrize("path", [(), ("worker",)], ids=docs_cli.command_line)
def test_help_is_rendered_as_an_80_column_terminal_shows_it(
    path: docs_cli.CommandPath,
) -> None:
    real = subprocess.run(
        [sys.executable, "-m", "platform_core", *path, "--help"],
        capture_output=True, text=True, check=True,
        env={**os.environ, "COLUMNS": str(docs_cli.WIDTH)},
    )
    assert real.stdout == docs_cli.render_help(path)


def current_cli_doc() -> str:
    """docs/cli.md with its help blocks current, so these tests check the regeneration even
    while a block is stale (which the tests above report)."""
    return docs_cli.rewrite(docs_cli.CLI_DOC.read_text(encoding="utf-8"))


def test_regenerating_fixes_a_stale_block_and_keeps_the_prose() -> None:
    text = current_cli_doc()
    stale = text.replace("  --wait                   Show state", "  --wait  Show state", 1)
    assert stale != text, "the send block is not where this test expects it"
    assert ("send",) not in docs_cli.problems(text)
    assert ("send",) in docs_cli.problems(stale)
    assert "docs_cli --write" in docs_cli.problems(stale)[("send",)]
    assert docs_cli.rewrite(stale) == text


def test_regenerating_puts_a_missing_block_under_its_heading() -> None:
    text = current_cli_doc()
    block = "\n".join(["```console", *docs_cli.expected_body(("queues",)), "```"]) + "\n\n"
    without = text.replace(block, "", 1)
    assert without != text, "the queues block is not where this test expects it"
    assert ("queues",) not in docs_cli.problems(text)
    assert "has no block" in docs_cli.problems(without)[("queues",)]
    assert docs_cli.rewrite(without) == text
