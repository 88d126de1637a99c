"""Packaging: the console scripts resolve to callables, and every third-party import is pinned.

An unpinned import works on the machine that happened to have the package and breaks a fresh
install, so each one must map to an exact pin in requirements*.txt.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPTS = {"amfl-predict", "amfl-data", "amfl-train", "amfl-evaluate"}
#: The code whose imports must be pinned: the package, the app, the scripts and the tests.
SCANNED = ("amfl", "app.py", "train_accelerate.py", "benchmarks", "tests")
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt")
EXACT_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==[^\s;]+")


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 compares them (``gradio_client`` is ``gradio-client``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_distributions() -> set[str]:
    """Every distribution pinned in requirements*.txt; any other requirement line is an error."""
    pinned = set()
    for file in REQUIREMENTS:
        for line in (REPO / file).read_text(encoding="utf-8").splitlines():
            requirement = line.split("#", 1)[0].strip()
            if not requirement or requirement.startswith("-r "):
                continue
            match = EXACT_PIN.fullmatch(requirement)
            assert match, f"{file}: {requirement!r} is not an exact pin (name==version)"
            pinned.add(canonical(match[1]))
    return pinned


def python_files() -> list[Path]:
    files = []
    for entry in SCANNED:
        files.extend([REPO / entry] if entry.endswith(".py") else (REPO / entry).rglob("*.py"))
    return sorted(files)


def local_modules() -> set[str]:
    """Modules of this repository: the package, top-level scripts, and the test and benchmark
    files (which import each other, e.g. ``conftest``)."""
    folders = (REPO, REPO / "tests", REPO / "benchmarks")
    return {"amfl"} | {path.stem for folder in folders for path in folder.glob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """Top-level names of the absolute imports in ``path``, at any depth (lazy imports too)."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def test_console_scripts_point_to_importable_callables():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert set(scripts) == CONSOLE_SCRIPTS
    for name, target in scripts.items():
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(module_name)  # not found: reinstall, `pip install --no-deps -e .`
        assert callable(getattr(module, attribute, None)), f"{name}: {target} is not a callable"


def test_every_third_party_import_is_pinned():
    pinned, local = pinned_distributions(), local_modules() | set(sys.stdlib_module_names)
    providers = packages_distributions()
    unpinned = {}
    for path in python_files():
        for module in imported_modules(path) - local:
            distributions = {canonical(name) for name in providers.get(module, [])}
            if not distributions & pinned:
                unpinned.setdefault(module, (sorted(distributions) or ["not installed"], path.relative_to(REPO)))
    listed = (f"{module} ({', '.join(names)}; imported by {path})" for module, (names, path) in sorted(unpinned.items()))
    assert not unpinned, "imports without a pin in requirements*.txt: " + "; ".join(listed)
