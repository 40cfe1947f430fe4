"""The package's top-level names: each one resolves, and importing the package stays cheap."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ddim_tutorial


def test_every_exported_name_resolves():
    for name in ddim_tutorial.__all__:
        assert getattr(ddim_tutorial, name) is not None, name
    assert ddim_tutorial.load_pretrained is ddim_tutorial.pretrained.presets.load
    assert sorted(dir(ddim_tutorial)) == sorted(ddim_tutorial.__all__)


def test_an_unknown_name_says_so():
    try:
        ddim_tutorial.flowers_dataset  # noqa: B018 - lives in ddim_tutorial.data.datasets, not at the top
    except AttributeError as error:
        assert "flowers_dataset" in str(error)
    else:
        raise AssertionError("flowers_dataset should not be a top-level name")


def test_import_loads_no_framework():
    code = "import sys, ddim_tutorial; print(sorted({'keras', 'tensorflow', 'jax', 'torch'} & set(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


# The layers of docs/DESIGN.md's map, the foundations first: a module imports only from its own
# subpackage's layer or lower ones, never from a later layer, so the folders show the architecture.
LAYERS = {
    0: {"__init__", "config", "checks"},
    1: {"runtime"},
    2: {"data", "metrics"},
    3: {"core"},
    4: {"training"},
    5: {"pretrained"},
    6: {"teaching"},
    7: {"cli", "__main__"},
}


def _unit(relative: Path) -> str:
    """The layer unit of a module: its subpackage, or the module itself at the top."""
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _package_imports(path: Path) -> set[str]:
    """The units (subpackages or top modules) a module imports, at the top or inside functions."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path.name}: use absolute imports (from ddim_tutorial.x import ...)")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ddim_tutorial."):
            imported.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "ddim_tutorial":
            imported.update(alias.name for alias in node.names if alias.name != "__version__")
    return imported


def test_the_design_map_covers_every_module_and_its_imports_go_one_way():
    package = Path(ddim_tutorial.__file__).parent
    layer_of = {unit: layer for layer, units in LAYERS.items() for unit in units}
    modules = sorted(path.relative_to(package) for path in package.rglob("*.py"))
    units = {_unit(module) for module in modules}
    assert units == set(layer_of), f"subpackages missing from LAYERS / docs/DESIGN.md: {units ^ set(layer_of)}"
    design = (package.parent / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    for module in modules:
        if module.name != "__init__.py" and module.name != "__main__.py":
            assert f"`{module.as_posix()}`" in design, f"docs/DESIGN.md does not mention {module.as_posix()}"
    upward = [f"{module} (layer {layer_of[_unit(module)]}) imports {other} (layer {layer_of[other]})"
              for module in modules for other in sorted(_package_imports(package / module))
              if other in layer_of and layer_of[other] > layer_of[_unit(module)]]
    assert not upward, upward
