"""The core's layout: stages in one direction, no import cycles, a small top level.

Imports are read from the source (module level, inside functions and under
``TYPE_CHECKING`` alike), so a lazy import cannot hide a loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import platform_core

ROOT = Path(platform_core.__file__).parent
PACKAGE = "platform_core"

# Each stage imports only stages before it; the packages every stage may use sit below.
NEVER: dict[str, set[str]] = {
    "loading": {"checks", "app", "worker", "beat", "ops", "cli", "host", "telemetry",
                "deadletter", "stores", "broker"},
    "checks": {"app", "worker", "beat", "ops", "cli", "host"},
    "app": {"beat", "ops", "cli", "host"},
    "worker": {"loading", "checks", "app", "beat", "ops", "cli", "host", "telemetry"},
    "beat": {"loading", "checks", "app", "worker", "ops", "cli", "host", "telemetry"},
    "deadletter": {"loading", "checks", "app", "worker", "beat", "ops", "cli", "host"},
    "stores": {"loading", "checks", "app", "worker", "beat", "ops", "cli", "host",
               "deadletter", "telemetry", "broker"},
    "broker": {"loading", "checks", "app", "worker", "beat", "ops", "cli", "host",
               "deadletter", "stores", "telemetry"},
    "telemetry": {"loading", "checks", "app", "ops", "cli", "host"},
    "ops": {"cli"},
}
TOP_LEVEL_LIMIT = 8


def modules(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(known: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module → the project modules it imports (``from pkg import mod`` names ``pkg.mod``)."""
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = edges.setdefault(name, set())
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    dotted = f"{base}.{alias.name}"
                    targets.add(dotted if dotted in known else base)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        targets &= set(known)
        targets.discard(name)
    return edges


def stage(module: str) -> str:
    """The package (or top-level module) a module belongs to: ``app``, ``host``, ..."""
    return module.split(".")[1] if "." in module else module


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def stage_graph(edges: Mapping[str, set[str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for source, targets in edges.items():
        for target in targets:
            if stage(source) != stage(target):
                graph.setdefault(stage(source), set()).add(stage(target))
    return graph


EDGES = imports(modules())


def test_no_module_imports_itself_back() -> None:
    assert cycles(EDGES) == [], "modules importing each other in a loop"


def test_no_package_imports_itself_back() -> None:
    assert cycles(stage_graph(EDGES)) == [], "packages importing each other in a loop"


@pytest.mark.parametrize("source", sorted(NEVER))
def test_stages_import_only_earlier_stages(source: str) -> None:
    wrong = sorted(f"{m} imports {t}" for m, targets in EDGES.items() if stage(m) == source
                   for t in targets if stage(t) in NEVER[source])
    assert wrong == []


def test_the_top_level_holds_only_what_every_stage_shares() -> None:
    top = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(top) <= TOP_LEVEL_LIMIT, top
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert set(NEVER) <= packages | {"host"}


def test_every_package_says_its_one_job() -> None:
    for init in sorted(ROOT.rglob("__init__.py")):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init.relative_to(ROOT)} has no docstring"


def test_the_checker_sees_a_loop_and_a_wrong_way_import(tmp_path: Path) -> None:
    pkg = tmp_path / "demo"
    (pkg / "loading").mkdir(parents=True)
    (pkg / "app").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "loading" / "__init__.py").write_text("")
    (pkg / "app" / "__init__.py").write_text("")
    (pkg / "loading" / "a.py").write_text("def f():\n    from demo.app import b\n")
    (pkg / "app" / "b.py").write_text("from ..loading import a\n")
    edges = imports(modules(pkg, "demo"))
    assert edges["demo.loading.a"] == {"demo.app.b"}
    assert edges["demo.app.b"] == {"demo.loading.a"}
    assert cycles(edges) == [["demo.app.b", "demo.loading.a"]]
    assert cycles(stage_graph(edges)) == [["app", "loading"]]
