"""The package's shape: no import cycle among amfl's modules, and no module too long to read.

A cycle works only while every import in it happens to run late enough (inside a function,
or after the names it needs), so one reordering breaks it; imports inside functions count
here for that reason. Packages are their ``__init__.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import amfl

PACKAGE_DIR = Path(amfl.__file__).parent
#: Longest module the project accepts, in lines.
MAX_MODULE_LINES = 400


def module_files() -> dict[str, Path]:
    """Every module of amfl by dotted name; a package is named by its ``__init__.py``."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The amfl modules that the module at ``path`` imports, at any depth of its code.

    ``from amfl.x import y`` is module ``amfl.x.y`` when that is a module, else ``amfl.x``.
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # A relative import would be an edge this graph misses; amfl imports absolutely.
            assert not node.level, f"{path}:{node.lineno}: relative import; spell the module out from amfl"
            base = node.module
            found.update(
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
            )
    return found & modules.keys()


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_modules(path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (depth-first search)."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> list[str] | None:
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target in on_stack:
                return [*stack[stack.index(target) :], target]
            if target not in done:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_graph_sees_imports_inside_functions_and_from_imports_of_modules():
    graph = import_graph()
    assert "amfl.models.registry" in graph["amfl.hub"]  # `from amfl.models.registry import ...`
    assert "amfl.models.base" in graph["amfl.models"]  # a package is its __init__.py
    assert "amfl.training.publish" in graph["amfl.training.loop"]  # `from amfl.training import publish`


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_amfl_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_is_over_the_line_limit():
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in module_files().items()}
    too_long = {name: lines for name, lines in lengths.items() if lines > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"
