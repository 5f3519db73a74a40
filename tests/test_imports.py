"""The house has no import circles: every module imports alone, in any order, and the
graph of imports between our modules (those inside functions included) is acyclic."""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

PACKAGES = ("converters", "dreamer", "models")
# Folders whose files are imported by bare name (pytest and scripts put them on sys.path).
SCRIPT_FOLDERS = ("tests", "bench")


def our_modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package) for every Python file of the repo."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            modules[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    for folder in SCRIPT_FOLDERS:
        for path in sorted((ROOT / folder).glob("*.py")):
            modules[path.stem] = (path, False)
    return modules


def imported(name: str, path: Path, is_package: bool, modules: dict) -> set[str]:
    """Our modules that `name` imports anywhere in its file, as named in `modules`."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in modules else base)
    return (found & modules.keys()) - {name}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for after in sorted(edges[node]):
            if state.get(after) == "open":
                return path[path.index(after):] + [after]
            if after not in state and (found := visit(after)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_relative_imports_resolve():
    modules = our_modules()
    path, is_package = modules["converters.onnx.export"]
    assert {"converters.onnx.format", "converters.layer_types", "converters.atomic"} <= \
        imported("converters.onnx.export", path, is_package, modules)


def test_no_import_circle():
    modules = our_modules()
    edges = {name: imported(name, path, is_package, modules)
             for name, (path, is_package) in modules.items()}
    assert cycle(edges) is None


IMPORT_EACH_ALONE = """
import importlib, sys
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in {packages!r}]:
        del sys.modules[loaded]
    importlib.import_module(name)
"""


def test_every_module_imports_alone_in_any_order():
    """Each package module imported first, with none of ours loaded, in a seeded order."""
    names = [n for n in our_modules() if n.split(".")[0] in PACKAGES]
    random.Random(10).shuffle(names)
    script = IMPORT_EACH_ALONE.format(packages=set(PACKAGES))
    result = subprocess.run([sys.executable, "-c", script, *names], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_no_module_imports_the_entry_point_or_loads_ours_by_name():
    """`dreamer/__main__.py` only calls dreamer.cli.main: no module of ours imports it
    (under `python -m` it would run twice), and commands are imported, not looked up."""
    modules = our_modules()
    for name, (path, is_package) in modules.items():
        if name.split(".")[0] not in PACKAGES:
            continue
        assert "dreamer.__main__" not in imported(name, path, is_package, modules), name
        assert "import_module(" not in path.read_text() or name.split(".")[0] != "dreamer", name
