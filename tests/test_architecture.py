"""The architecture, as the folder tree shows it, kept: every import points down the rooms
(cli -> the API -> jobs and motion -> loops -> plan -> runtime -> converters and models),
our own modules are imported by name at the top of a file (only optional dependencies
inside functions), and presets and objectives are chosen from their tables, never by
comparing their names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

from dreamer.plan.objectives import RULES
from dreamer.plan.presets import PRESET_NAMES

PACKAGES = ("dreamer", "converters", "models")
# Lower rank: lower room. A module may import its own room and any room below.
RANKS = {
    "dreamer.__main__": 6, "dreamer.cli": 6, "dreamer.studio": 6,
    "dreamer": 5, "dreamer.dream": 5,
    "dreamer.jobs": 4, "dreamer.motion": 4,
    "dreamer.loops": 3,
    "dreamer.plan": 2,
    "dreamer.runtime": 1, "dreamer.image_io": 1,
    "models": 0, "converters": -1,
}
# Imported inside functions, on purpose: heavy and optional (extras), or only on a worker.
OPTIONAL = ("av", "cv2", "ray", "onnxruntime", "onnx", "onnx2torch", "torchvision", "skimage",
            "gradio")


def our_modules() -> list[tuple[str, Path, ast.Module]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path, ast.parse(path.read_text(), str(path))))
    return found


def rank(module: str) -> int | None:
    """The room's rank of `module` (its longest listed prefix); None: not ours."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in RANKS:
            return RANKS[prefix]
    return None


def imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def test_every_import_points_down_the_rooms():
    climbs = []
    for name, path, tree in our_modules():
        mine = rank(name)
        for node in ast.walk(tree):
            for target in imported(node):
                theirs = rank(target)
                if theirs is not None and mine is not None and theirs > mine \
                        and not name.startswith(target + ".") and target != "dreamer":
                    climbs.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target}")
    assert climbs == []


def test_no_import_module():
    """Our modules are imported by name, where the reader sees them."""
    found = []
    for _, path, tree in our_modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                    node.func, "id", "")) == "import_module":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} import_module")
    assert found == []


def test_imports_inside_functions_are_optional_dependencies_only():
    inside = []
    for _, path, tree in our_modules():
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                for target in imported(node)[:1]:
                    if target.split(".")[0] not in OPTIONAL:
                        inside.append(f"{path.relative_to(ROOT)}:{node.lineno} {target}")
    assert inside == []


@pytest.mark.parametrize("names,tables", [
    (set(PRESET_NAMES), ("dreamer/plan/presets.py",)),
    (set(RULES), ("dreamer/plan/objectives.py",)),
])
def test_presets_and_objectives_are_never_compared_by_name(names, tables):
    """A comparison with a preset's or an objective's name (`preset == "torch7"`,
    `name in ("google", ...)`) in the dreamer is a choice that belongs in the table."""
    compared = []
    for name, path, tree in our_modules():
        if str(path.relative_to(ROOT)) in tables or not name.startswith("dreamer"):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            for side in (node.left, *node.comparators):
                values = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) \
                    else [side]
                if any(isinstance(v, ast.Constant) and v.value in names for v in values):
                    compared.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert compared == []
