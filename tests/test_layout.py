"""The layout holds: the layering contract (import-linter), no import cycles between modules (of
Starling and of the test helpers), no private names imported across modules, and small modules and
functions. Each check is also shown catching a violation planted on purpose."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.support.paths import REPO

SRC = REPO / "src" / "starling"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _lint_imports(python_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).parent / "lint-imports"
    env = None if python_path is None else {**os.environ, "PYTHONPATH": str(python_path)}
    return subprocess.run(
        [str(command), "--config", str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_layering_contracts_are_kept() -> None:
    result = _lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_upward_import_planted_on_purpose_breaks_the_layers(tmp_path: Path) -> None:
    copy = tmp_path / "starling"
    shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    chain = copy / "core" / "chain.py"
    chain.write_text(chain.read_text() + "\nimport starling.control.controller  # planted\n")
    result = _lint_imports(python_path=tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "starling.core.chain -> starling.control.controller" in result.stdout


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    imported = graph.find_modules_directly_imported_by(child) & modules
                    work.append((child, iter(sorted(imported))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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


def _graph(package: str) -> tuple[grimp.ImportGraph, set[str]]:
    graph = grimp.build_graph(package, cache_dir=None)
    # A package's __init__ importing its own modules is how a package shows its API, not a cycle.
    modules = {m for m in graph.modules if not graph.find_children(m)}
    return graph, modules


def test_no_import_cycles_between_modules_of_starling() -> None:
    graph, modules = _graph("starling")
    assert _cycles(graph, modules) == []


def test_no_import_cycles_between_test_helpers() -> None:
    graph, modules = _graph("tests")
    assert _cycles(graph, modules) == []


def test_the_cycle_check_finds_a_cycle_planted_on_purpose() -> None:
    graph, modules = _graph("starling")
    graph.add_import(importer="starling.core.spec", imported="starling.core.embedded")
    cycles = _cycles(graph, modules)
    assert any({"starling.core.spec", "starling.core.embedded"} <= set(c) for c in cycles)


def _private_imports(tree: ast.Module, module: str) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("starling"):
            if node.module == module:
                continue
            found += [f"{module}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


def _source_modules() -> list[tuple[str, Path]]:
    return [(".".join(p.relative_to(SRC.parent).with_suffix("").parts), p) for p in sorted(SRC.rglob("*.py"))]


def test_no_module_imports_another_modules_private_names() -> None:
    offences = []
    for module, path in _source_modules():
        offences += _private_imports(ast.parse(path.read_text()), module)
    assert offences == []


def test_the_private_name_check_catches_one_planted_on_purpose() -> None:
    planted = ast.parse("from starling.cli.control import _call\n")
    assert _private_imports(planted, "starling.cli.filters") == [
        "starling.cli.filters: starling.cli.control._call"
    ]


def _long_functions(tree: ast.Module) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            length = (node.end_lineno or node.lineno) - start + 1
            if length > MAX_FUNCTION_LINES:
                found.append((node.name, length))
    return found


@pytest.mark.parametrize("module", [module for module, _ in _source_modules()])
def test_modules_and_functions_are_small(module: str) -> None:
    text = dict(_source_modules())[module].read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{module} has {len(text.splitlines())} lines"
    assert _long_functions(ast.parse(text)) == []


def test_the_size_check_catches_a_long_function_planted_on_purpose() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert _long_functions(ast.parse(f"def long() -> None:\n{body}\n")) == [("long", MAX_FUNCTION_LINES + 1)]
