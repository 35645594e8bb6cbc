"""The house rules: plugins and the SDK never reach into the host; hooks are documented."""

from __future__ import annotations

import ast
import inspect
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import platform_sdk
from platform_admin.tasks import print_hello
from platform_core import host as host_module
from platform_core.loading.hooks import HOOKS
from platform_sdk import hookspecs, hosting, task
from tests.support import PlatformEnv, output_of

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "src" / "platform_sdk"
PLUGIN_SOURCES = sorted([*ROOT.glob("plugins/*/src/*"), *ROOT.glob("examples/*/src/*")])
PLUGIN_SOURCES = [p for p in PLUGIN_SOURCES if p.is_dir() and not p.name.endswith(".egg-info")]
IMPORT_FUNCTIONS = {"import_module", "__import__"}


def imported_modules(source: str, filename: str = "<source>") -> Iterator[tuple[int, str]]:
    """Every absolute module a source imports, statically or by a literal dynamic import."""
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if (name in IMPORT_FUNCTIONS and isinstance(first, ast.Constant)
                    and isinstance(first.value, str)):
                yield node.lineno, first.value


def top(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


def python_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def offending(folder: Path, allowed: set[str]) -> list[str]:
    """``file:line module`` for each ``platform_*`` import outside ``allowed``."""
    found = []
    for path in python_files(folder):
        for line, module in imported_modules(path.read_text(), str(path)):
            if top(module).startswith("platform_") and top(module) not in allowed:
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                found.append(f"{shown}:{line} imports {module}")
    return found


def test_the_scanner_sees_every_kind_of_import() -> None:
    source = (
        "import os, platform_core.host\n"
        "from platform_core import discovery\n"
        "from . import sibling\n"
        "import importlib\n"
        "from importlib import import_module\n"
        "def later():\n"
        "    importlib.import_module('platform_core.cli')\n"
        "    import_module('platform_admin')\n"
        "    __import__('platform_quant.tasks')\n"
        "    importlib.import_module(name_from_somewhere)\n"
    )
    assert list(imported_modules(source)) == [
        (1, "os"), (1, "platform_core.host"), (2, "platform_core"), (4, "importlib"),
        (5, "importlib"), (7, "platform_core.cli"), (8, "platform_admin"),
        (9, "platform_quant.tasks"),
    ]


def test_the_scanner_reports_file_and_line(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "ok.py").write_text("import platform_sdk\nimport platform\n")
    (package / "bad.py").write_text("\n\nimport importlib\nimportlib.import_module('platform_core')\n")
    found = offending(package, {"platform_sdk"})
    assert len(found) == 1
    assert found[0].endswith("bad.py:4 imports platform_core")


def test_sources_to_check_exist() -> None:
    names = {p.name for p in PLUGIN_SOURCES}
    assert {"platform_admin", "platform_quant"} <= names
    assert python_files(SDK)


def test_sdk_never_imports_the_host_or_a_plugin() -> None:
    assert offending(SDK, {"platform_sdk"}) == []


@pytest.mark.parametrize("package", PLUGIN_SOURCES, ids=lambda p: p.name)
def test_plugins_import_only_the_sdk(package: Path) -> None:
    """Bundled and example plugins use the SDK and nothing else of the platform."""
    assert python_files(package)
    assert offending(package, {"platform_sdk", package.name}) == []


HOST_SIDE = "platform_sdk.hosting"


def host_side_imports(source: str, filename: str = "<source>") -> list[int]:
    """Lines that import the SDK's host side, as a module or from the package."""
    lines = [line for line, module in imported_modules(source, filename)
             if module == HOST_SIDE or module.startswith(f"{HOST_SIDE}.")]
    for node in ast.walk(ast.parse(source, filename)):
        if (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "platform_sdk"
                and any(alias.name == "hosting" for alias in node.names)):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_host_side_scanner() -> None:
    source = ("import platform_sdk.hosting\nfrom platform_sdk import task, hosting\n"
              "from platform_sdk.hosting import bind\nfrom platform_sdk import runtime\n")
    assert host_side_imports(source) == [1, 2, 3]


@pytest.mark.parametrize("package", PLUGIN_SOURCES, ids=lambda p: p.name)
def test_plugins_never_use_the_host_side_of_the_sdk(package: Path) -> None:
    found = [f"{path.relative_to(ROOT)}:{line}" for path in python_files(package)
             for line in host_side_imports(path.read_text(), str(path))]
    assert found == []


def test_runtime_exports_only_what_plugins_use() -> None:
    """Binding a host is :mod:`platform_sdk.hosting`'s job, not part of the plugin API."""
    from platform_sdk import runtime

    assert sorted(runtime.__all__) == ["HostNotAvailable", "data_dir", "settings"]
    for name in ("bind", "unbind", "current_app", "start"):
        assert not hasattr(runtime, name), name
        assert name not in platform_sdk.__all__
        assert name in hosting.__all__
    assert "hosting" not in platform_sdk.__all__


def test_sdk_and_plugin_code_run_without_the_host(platform_env: PlatformEnv) -> None:
    """Importing the SDK and the plugins, and calling a task, never loads platform_core."""
    code = (
        "import sys\n"
        "import platform_sdk\n"
        "print(sorted(m for m in sys.modules if m.startswith(('platform_core', 'celery'))))\n"
        "import platform_admin.plugin, platform_quant.plugin\n"
        "from platform_admin.tasks import print_hello\n"
        "value = print_hello()\n"
        "print(value['status'], [m for m in sys.modules if m.startswith('platform_core')])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=platform_env.environ,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, output_of(result)
    assert result.stdout.splitlines() == ["[]", "Hello, World!", "success []"]


# --- the task proxy before any host exists --------------------------------------------


@task(name="boundaries.add")
def add(a: int, b: int) -> int:
    return a + b


@task
def unnamed(x: int) -> int:
    return x * 2


def test_proxy_called_directly_runs_the_function_without_a_host(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert hosting.bound() is None
    assert print_hello() == {"status": "success"}
    assert capsys.readouterr().out == "Hello, World!\n"
    assert add(2, 3) == 5
    assert unnamed(4) == 8
    assert hosting.bound() is None  # calling did not start a host


def test_proxy_metadata() -> None:
    assert add.name == "boundaries.add"
    assert unnamed.name == f"{__name__}.unnamed"
    assert print_hello.name == "admin.print_hello"
    assert repr(add) == "<platform task boundaries.add>"
    assert add.__name__ == "add"
    assert add.__wrapped__(1, 1) == 2
    assert print_hello.__doc__ == inspect.getdoc(print_hello.__wrapped__)
    assert add.spec.location == f"{__name__}.add"


def test_task_applied_twice() -> None:
    with pytest.raises(TypeError) as caught:
        task(add)
    assert str(caught.value) == f"@task was applied twice to {__name__}.add"


def test_delay_before_any_host_starts_one_through_the_entry_point(
    platform_env: PlatformEnv,
) -> None:
    assert hosting.bound() is None
    result = print_hello.delay()
    binding = hosting.bound()
    assert binding is not None
    app = binding.app
    assert app is host_module.current().app
    assert print_hello.celery_task() is app.tasks["admin.print_hello"]
    queued = list((platform_env.home / "broker" / "queue").iterdir())
    assert len(queued) == 1  # the embedded broker holds the message
    assert result.id in queued[0].read_text()
    assert print_hello.s(1).task == "admin.print_hello"


def test_proxy_of_a_task_no_plugin_registers(platform_env: PlatformEnv) -> None:
    platform_env.host()
    with pytest.raises(LookupError) as caught:
        add.delay(1, 2)
    assert str(caught.value).startswith(
        f"task 'boundaries.add' ({__name__}.add) is not registered in the running platform: "
        "enable the plugin that provides it"
    )


def test_proxy_follows_a_rebuilt_host(platform_env: PlatformEnv) -> None:
    first = platform_env.host()
    assert print_hello.celery_task() is first.app.tasks["admin.print_hello"]
    second = platform_env.host()
    assert second.app is not first.app
    assert print_hello.celery_task() is second.app.tasks["admin.print_hello"]


def test_unknown_proxy_attribute_names_the_task_and_what_it_offers() -> None:
    with pytest.raises(AttributeError) as caught:
        print_hello.update_state  # type: ignore[attr-defined]  # noqa: B018
    assert str(caught.value) == (
        "task proxy `admin.print_hello` (platform_admin.tasks.print_hello) has no attribute "
        "`update_state`: it offers name, spec, delay(), apply_async(), delay_many(), "
        "apply_many(), s(), si(), signature(), map(), starmap(), chunks(), AsyncResult(), "
        "celery_task() and calling it; for anything "
        "else of the Celery task use `print_hello.celery_task().update_state`"
    )
    assert caught.value.name == "update_state"
    assert not hasattr(add, "_mock_name")  # what tools probe for gets a plain AttributeError
    assert hosting.bound() is None  # neither started a host


def test_the_proxy_offers_what_its_error_lists() -> None:
    from platform_sdk.tasks import OFFERED, Task

    public = {n for n in [*dir(Task), *vars(add)] if not n.startswith("_")}
    assert {n.removesuffix("()") for n in OFFERED} == public


def test_proxy_methods_act_on_the_real_task(platform_env: PlatformEnv) -> None:
    from celery.result import AsyncResult

    app = platform_env.host().app
    real = app.tasks["admin.print_hello"]
    signature = print_hello.signature((), {}, countdown=5)
    assert (signature.task, signature.options["countdown"]) == ("admin.print_hello", 5)
    assert print_hello.si().immutable and not print_hello.s().immutable
    assert print_hello.map([1]).task == "celery.map"
    assert print_hello.starmap([(1,)]).task == "celery.starmap"
    chunks = print_hello.chunks([(1,), (2,)], 1)
    assert (chunks.task, chunks.kwargs["n"]) == ("celery.chunks", 1)
    result = print_hello.AsyncResult("an-id")
    assert isinstance(result, AsyncResult)
    assert (result.id, result.backend) == ("an-id", real.backend)


# --- hook documentation ---------------------------------------------------------------

SPECS = {name: fn for name, fn in vars(hookspecs).items()
         if callable(fn) and hasattr(fn, f"{hookspecs.PROJECT}_spec")}


def test_sdk_hookspecs_are_the_hooks_the_host_calls() -> None:
    assert set(SPECS) == set(HOOKS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hookspec_documents_register(name: str) -> None:
    doc = inspect.getdoc(SPECS[name]) or ""
    assert ":param register:" in doc, f"{name} docstring lacks ':param register:'"
    assert list(inspect.signature(SPECS[name]).parameters) == ["register"]


def test_every_hook_is_in_the_plugin_authors_guide() -> None:
    guide = ROOT / "docs" / "writing-plugins.md"
    assert guide.exists(), f"{guide.relative_to(ROOT)} is missing"
    text = guide.read_text()
    missing = [name for name in sorted(SPECS) if name not in text]
    assert missing == [], f"docs/writing-plugins.md does not mention {missing}"


def test_sdk_exports_what_plugins_need() -> None:
    for name in ("task", "hookimpl", "Queue", "Route", "BeatEntry", "Every", "Crontab",
                 "RetryPolicy", "WorkerHints", "settings", "data_dir"):
        assert name in platform_sdk.__all__
        assert hasattr(platform_sdk, name)


def test_sdk_exports_every_exception_type() -> None:
    """A plugin or an application catches the platform's errors from ``platform_sdk``."""
    from celery import exceptions as celery_exceptions

    from platform_sdk import exceptions

    assert {"InvalidTaskCall", "PayloadTooLarge", "HostNotAvailable"} <= set(exceptions.__all__)
    for name in exceptions.__all__:
        assert name in platform_sdk.__all__
        exported = getattr(platform_sdk, name)
        assert exported is getattr(exceptions, name)
        assert issubclass(exported, Exception)
    for name in exceptions.CELERY_EXCEPTIONS:
        assert getattr(platform_sdk, name) is getattr(celery_exceptions, name)
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        platform_sdk.Nope  # type: ignore[attr-defined]  # noqa: B018


def test_every_sdk_export_exists() -> None:
    assert [n for n in platform_sdk.__all__ if not hasattr(platform_sdk, n)] == []


def test_the_hosts_start_up_error_is_the_sdks() -> None:
    """What stops the host at start-up reaches plugin code as ``platform_sdk.StartupError``."""
    from platform_core.errors import ConfigurationError, PlatformError

    error = ConfigurationError(["first", "second with redis://user:hunter2@host"])
    assert isinstance(error, platform_sdk.StartupError)
    assert isinstance(error, PlatformError)
    assert error.problems == ["first", "second with redis://user:***@host"]
    assert str(error) == ("the platform cannot start: 2 problems\n  - first\n"
                          "  - second with redis://user:***@host")
    assert str(platform_sdk.StartupError(["one"])) == "the platform cannot start: one"
    copied = pickle.loads(pickle.dumps(error))
    assert (type(copied), copied.problems, str(copied)) == (type(error), error.problems,
                                                           str(error))


def test_importing_the_sdks_exceptions_loads_nothing_heavy(platform_env: PlatformEnv) -> None:
    """The host's command line imports them; ``platform --help`` must stay light."""
    code = (
        "import sys\n"
        "from platform_sdk.exceptions import InvalidTaskCall\n"
        "print(sorted(m for m in ('celery', 'pydantic', 'pluggy', 'platform_sdk.models', "
        "'platform_sdk.tasks') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=platform_env.environ,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, output_of(result)
    assert result.stdout.splitlines() == ["[]"]
