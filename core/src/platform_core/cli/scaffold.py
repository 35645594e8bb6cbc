"""``platform new NAME``: a complete, installable plugin project.

The project passes its own tests once installed (``pip install ./NAME && pytest``),
and ``platform worker --plugins NAME`` runs its task.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

import click

from platform_core.errors import PlatformError

#: A plugin's name: its tasks, queues and beat entries are named ``NAME.<something>``.
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

FILES: dict[str, str] = {
    "pyproject.toml": '''\
[build-system]
requires = ["hatchling>=1.21"]
build-backend = "hatchling.build"

[project]
name = "$dist"
version = "0.1.0"
description = "The $name plugin for Platform."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["platform-sdk>=0.1,<0.2", "pydantic>=2.7"]

[project.optional-dependencies]
test = ["platform-core>=0.1,<0.2", "pytest>=8"]

[project.entry-points."platform.plugins"]
$name = "$package.plugin"

[tool.hatch.build.targets.wheel]
packages = ["src/$package"]

[tool.pytest.ini_options]
testpaths = ["tests"]
''',
    "README.md": '''\
# $name

A plugin for Platform: one task (`$name.hello`), its queue (`$name`), a route and
a beat entry, and a settings model.

```console
$$ pip install -e '.[test]'
$$ pytest
$$ platform worker --plugins $name
$$ platform send $name.hello --args '["Ada"]' --wait
```

Settings (`[plugin.$name]` in `platform.toml`, or `PLATFORM_${upper}__GREETING`):

| setting | default | meaning |
|---------|---------|---------|
| `greeting` | `Hello` | The word the task greets with. |
''',
    "src/$package/__init__.py": '''\
"""The $name plugin for Platform."""
''',
    "src/$package/py.typed": "",
    "src/$package/settings.py": '''\
"""The plugin's settings: ``[plugin.$name]`` in platform.toml or ``PLATFORM_${upper}__*``."""

from pydantic import BaseModel, Field


class ${model}Settings(BaseModel):
    greeting: str = Field(default="Hello", min_length=1)
''',
    "src/$package/tasks.py": '''\
"""The plugin's tasks; the host registers them from ``plugin.register_tasks``."""

from platform_sdk import settings, task

from $package.settings import ${model}Settings


@task(name="$name.hello", queue="$name")
def hello(name: str) -> str:
    """Greet ``name`` with the configured greeting."""
    return f"{settings(${model}Settings).greeting}, {name}!"
''',
    "src/$package/plugin.py": '''\
"""What the $name plugin contributes to the host."""

from collections.abc import Callable
from typing import Any

from platform_sdk import BeatEntry, Every, Queue, Route, hookimpl

from $package.settings import ${model}Settings
from $package.tasks import hello


@hookimpl
def register_tasks(register: Callable[[Any], None]) -> None:
    register(hello)


@hookimpl
def register_queues(register: Callable[[Queue], None]) -> None:
    register(Queue(name="$name"))


@hookimpl
def register_routes(register: Callable[[Route], None]) -> None:
    register(Route(pattern="$name.*", queue="$name"))


@hookimpl
def register_beat_entries(register: Callable[[BeatEntry], None]) -> None:
    register(BeatEntry(name="$name.hello-hourly", task="$name.hello", args=("world",),
                       schedule=Every(seconds=3600)))


@hookimpl
def register_settings(register: Callable[[type], None]) -> None:
    register(${model}Settings)
''',
    "tests/test_$package.py": '''\
"""The plugin's tests; the fixtures come with the SDK (platform_app, platform_worker)."""

import pytest
from platform_sdk import StartupError

from $package.tasks import hello


def test_hello_uses_the_configured_greeting(platform_app):
    platform_app("$name", settings={"$name": {"greeting": "Bonjour"}})
    assert hello.delay("Ada").get() == "Bonjour, Ada!"


def test_the_greeting_may_not_be_empty(platform_app):
    with pytest.raises(StartupError) as caught:
        platform_app("$name", settings={"$name": {"greeting": ""}})
    assert "setting `greeting`" in str(caught.value)


def test_a_real_worker_runs_it(platform_worker):
    worker = platform_worker("$name")
    assert worker.wait(hello.delay("Ada")) == "Hello, Ada!"
''',
}


def check_name(name: str) -> None:
    if not NAME.match(name) or keyword.iskeyword(name):
        raise PlatformError(
            f"`{name}` cannot name a plugin: use 1 to 40 lower-case letters, digits and "
            "underscores, starting with a letter, and not a Python keyword (e.g. `acme` or "
            "`acme_billing`); it names the plugin, its package and its tasks' namespace"
        )


def write(name: str, folder: Path) -> list[Path]:
    """Write the project of plugin ``name`` into ``folder`` (which must not exist)."""
    check_name(name)
    if folder.exists():
        raise PlatformError(f"{folder} already exists; choose another --path or remove it")
    values = {"name": name, "package": name, "dist": name.replace("_", "-"),
              "upper": name.upper(), "model": "".join(p.title() for p in name.split("_"))}
    written = []
    for relative, text in FILES.items():
        path = folder / Template(relative).substitute(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(text).substitute(values))
        written.append(path)
    return written


@click.command()
@click.argument("name")
@click.option("--path", "path", type=click.Path(path_type=Path),
              help="Folder to create (default: ./NAME).")
def new(name: str, path: Path | None) -> None:
    """Write a new plugin project NAME: package, task, queue, route, beat entry,
    settings, tests."""
    folder = path or Path(name)
    written = write(name, folder)
    click.echo(f"wrote {len(written)} files in {folder}/")
    click.echo(f"next: pip install -e '{folder}[test]' && (cd {folder} && pytest) && "
               f"platform worker --plugins {name}")


COMMANDS = [new]
