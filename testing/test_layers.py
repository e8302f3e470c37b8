"""The package's layers: no import cycle, the model at the bottom, the Azure layer above it
and below everything else.

The graph is read from the source with ast, so an import inside a function or under
`if TYPE_CHECKING:` counts like one at the top: either still ties the two modules together
(a cycle that only a late import keeps working is still a cycle), and a package's
`__init__` is a module like the others. Importing `a.b.c` is an edge to `a.b.c` only: Python
runs the parent packages first whatever the importer, so counting them would make every
package that imports its own modules a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "compliance"

# Pure values, with nothing of Azure, pytest or the reports in them.
BOTTOM = {
    "compliance",
    "compliance.model",
    "compliance.contacts",
    "compliance.text",
    "compliance.values",
    "compliance.strictjson",
    # Defender for Cloud's verdict beside the suite's, and why they differ: pure functions
    # over the model, which the Azure layer reads assessments with.
    "compliance.microsoft",
    # What each securityContacts api-version means (read, plan, emulate): pure functions
    # over the model, which the Azure layer reads with and the planner plans with.
    "compliance.apiversions",
    "compliance.apiversions.common",
    "compliance.apiversions.v2017_08_01_preview",
    "compliance.apiversions.v2020_01_01_preview",
    "compliance.apiversions.v2023_12_01_preview",
}
# What the bottom may not reach, even through another module.
NOT_AT_THE_BOTTOM = ("azure", "pytest", "_pytest", "xdist", "pytest_html")


def module_files(root: Path) -> dict[str, Path]:
    """Every module of the package at `root` by its dotted name."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, modules: set[str]) -> Iterator[str]:
    """The dotted names `name`'s source imports, wherever the import statement stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # `from compliance.arm import process` imports the module, not the package.
                full = f"{base}.{alias.name}"
                yield full if full in modules else base


def import_graph(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Per module: the modules of the package it imports, and the top-level names of the
    others (pytest, azure, ...)."""
    files = module_files(root)
    inside: dict[str, set[str]] = {m: set() for m in files}
    outside: dict[str, set[str]] = {m: set() for m in files}
    for name, path in files.items():
        for target in imported(name, path, set(files)):
            if target in files:
                if target != name:
                    inside[name].add(target)
            elif target.split(".")[0] != root.name:
                outside[name].add(target.split(".")[0])
    return inside, outside


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reached(graph: dict[str, set[str]], start: str) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


@pytest.fixture(scope="module")
def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    return import_graph(ROOT)


def test_no_module_of_the_package_is_in_an_import_cycle(
    graph: tuple[dict[str, set[str]], dict[str, set[str]]],
) -> None:
    inside, _ = graph
    assert cycles(inside) == []


def test_the_graph_sees_late_imports_and_the_package_init(
    graph: tuple[dict[str, set[str]], dict[str, set[str]]],
) -> None:
    """The test above could pass on a graph that misses edges: these are known ones."""
    inside, _ = graph
    assert "compliance.model" in inside["compliance.arm.reader"]
    assert "compliance.arm.reader" in inside["compliance.arm"]  # the package's __init__
    assert "compliance.emulator" in inside["compliance.sources"]  # inside a method
    assert "compliance.arm.credentials" in inside["compliance.arm.process"]  # `from x import y`


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from pkg.sub import low\n")
    (package / "sub" / "low.py").write_text("def f():\n    from pkg import high\n")
    (package / "high.py").write_text("from typing import TYPE_CHECKING\nimport pkg.sub\n")
    (package / "alone.py").write_text("from . import high\nimport os\n")
    inside, outside = import_graph(package)
    assert cycles(inside) == [["pkg.high", "pkg.sub", "pkg.sub.low"]]
    assert inside["pkg.alone"] == {"pkg.high"}  # relative, resolved
    assert outside["pkg.alone"] == {"os"}


@pytest.mark.parametrize("bottom", sorted(BOTTOM - {"compliance"}))
def test_the_model_stands_alone(
    graph: tuple[dict[str, set[str]], dict[str, set[str]]], bottom: str
) -> None:
    """The bottom reaches only the bottom: nothing of the Azure layer, the plugin, pytest or
    the Azure SDK, so a verdict can be computed (and tested) from plain values."""
    inside, outside = graph
    below = reached(inside, bottom)
    assert below <= BOTTOM, f"{bottom} reaches {sorted(below - BOTTOM)}"
    foreign = {name for module in below for name in outside[module]} & set(NOT_AT_THE_BOTTOM)
    assert not foreign, f"{bottom} imports {sorted(foreign)}"


def test_the_azure_layer_builds_on_the_model_alone(
    graph: tuple[dict[str, set[str]], dict[str, set[str]]],
) -> None:
    """compliance.arm imports itself and the bottom: never the planner, the controls, the
    audit or the plugin above it."""
    inside, _ = graph
    above = {
        f"{module} -> {target}"
        for module, targets in inside.items()
        if module == "compliance.arm" or module.startswith("compliance.arm.")
        for target in targets
        if target not in BOTTOM and not target.startswith("compliance.arm")
    }
    assert not above


def test_every_output_renders_without_pytest(
    graph: tuple[dict[str, set[str]], dict[str, set[str]]],
) -> None:
    """Each output renders a Report on its own (a merge of shards writes them with no pytest
    running); only the glue that hands pytest-html its additions knows pytest."""
    inside, outside = graph
    outputs = {m for m in inside if m.startswith("compliance.outputs")}
    assert {"compliance.outputs.junit", "compliance.outputs.audit_view"} <= outputs
    for module in sorted(outputs - {"compliance.outputs.pytest_html"}):
        below = reached(inside, module)
        foreign = {name for m in below for name in outside[m]} & {"pytest", "_pytest", "xdist"}
        assert not foreign, f"{module} reaches {sorted(foreign)}"
        assert "compliance.session" not in below and "compliance.plugin" not in below, module
