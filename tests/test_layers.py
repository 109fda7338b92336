"""The layers of docs/layers.md, checked on the source: no module imports a layer above its own
(or a peer it must not know), and every project import stands at the top of its module, where a
reader sees it (none hidden in a function to dodge a cycle)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

#: Source folder -> package, as pyproject.toml maps them.
FOLDERS = {"opentsp": "opentsp", "hdl": "opentsp.hdl", "sim": "opentsp.sim",
           "firmware": "opentsp.firmware", "verif": "opentsp.verif"}

#: Layer -> the layers it may import (its own included). The floor is the modules directly in
#: opentsp/; every other layer is a subpackage.
ALLOWED = {
    "floor": {"floor"},
    "sim": {"floor", "sim"},
    "hdl": {"floor", "hdl"},
    "firmware": {"floor", "firmware"},
    "compiler": {"floor", "firmware", "sim", "compiler"},
    "verif": {"floor", "sim", "hdl", "firmware", "compiler", "verif"},
    "app": {"floor", "sim", "hdl", "firmware", "compiler", "verif", "app"},
}


def layer_of(module):
    """The layer of a project module name (``opentsp.x.y``)."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] not in ALLOWED:
        return "floor"
    return parts[1]


def source_modules():
    """``(module name, path)`` of every project source file."""
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield ".".join([package, *parts]), path


def project_imports(tree, module, is_package):
    """``(imported module, line, at top level)`` of every import of ``opentsp``."""
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module]
            if node.module is None or names[0] == "opentsp":
                names = [f"{names[0]}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "opentsp" or name.startswith("opentsp."):
                yield name, node.lineno, id(node) in top


MODULES = list(source_modules())


def test_every_folder_has_modules():
    layers = {layer_of(module) for module, _ in MODULES}
    assert layers == set(ALLOWED), layers


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_imports_only_downward_and_at_the_top(module, path):
    tree = ast.parse(path.read_text(), str(path))
    layer = layer_of(module)
    problems = []
    for name, line, at_top in project_imports(tree, module, path.name == "__init__.py"):
        target = layer_of(name)
        if target not in ALLOWED[layer]:
            problems.append(f"{path.relative_to(ROOT)}:{line}: the {layer} layer imports "
                            f"{name} of the {target} layer")
        if not at_top:
            problems.append(f"{path.relative_to(ROOT)}:{line}: {name} imported inside a "
                            f"function or block, not at the top of the module")
    assert not problems, "\n".join(problems)


def test_the_checker_finds_an_upward_import(tmp_path):
    tree = ast.parse("def f():\n    from opentsp.app import cli\n")
    found = list(project_imports(tree, "opentsp.sim.x", False))
    assert found == [("opentsp.app", 2, False)]
    assert layer_of("opentsp.app") not in ALLOWED[layer_of("opentsp.sim.x")]
