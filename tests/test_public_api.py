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
    assert ddim_tutorial.load_pretrained is ddim_tutorial.pretrained.load
    assert sorted(dir(ddim_tutorial)) == sorted(ddim_tutorial.__all__)


def test_an_unknown_name_says_so():
    try:
        ddim_tutorial.flowers_dataset  # noqa: B018 - lives in ddim_tutorial.data, not at the top
    except AttributeError as error:
        assert "flowers_dataset" in str(error)
    else:
        raise AssertionError("flowers_dataset should not be a top-level name")


def test_import_loads_no_framework():
    code = "import sys, ddim_tutorial; print(sorted({'keras', 'tensorflow', 'jax', 'torch'} & set(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


# The layers of docs/DESIGN.md's map: a module imports only from its own layer or lower ones.
LAYERS = {
    1: {"__init__", "_shared", "config", "backends"},
    2: {"schedule", "network", "predictions", "sampling", "compiled_sampling", "evaluation"},
    3: {"folders", "synthetic", "data", "plotting"},
    4: {"inception", "kid", "memorization"},
    5: {"model", "distribution", "checkpoints", "callbacks", "interrupts", "training", "pretrained"},
    6: {"interpolation", "explorer", "widgets", "checking", "exercises", "lesson"},
    7: {"cli", "commands", "__main__"},
}


def _package_imports(path: Path) -> set[str]:
    """The sibling modules a module imports, at the top or inside functions."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                imported.add(node.module.split(".")[0])
            else:  # from . import name
                imported.update(alias.name for alias in node.names if alias.name != "__version__")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("ddim_tutorial."):
            imported.add(node.module.split(".")[1])
    return imported


def test_the_design_map_covers_every_module_and_its_imports_go_one_way():
    package = Path(ddim_tutorial.__file__).parent
    layer_of = {module: layer for layer, modules in LAYERS.items() for module in modules}
    modules = {path.stem for path in package.glob("*.py")}
    assert modules == set(layer_of), f"modules missing from LAYERS / docs/DESIGN.md: {modules ^ set(layer_of)}"
    design = (package.parent / "docs" / "DESIGN.md").read_text(encoding="utf-8")
    for module in modules - {"__init__", "__main__"}:
        assert f"`{module}.py`" in design, f"docs/DESIGN.md does not mention {module}.py"
    upward = [f"{module} (layer {layer_of[module]}) imports {other} (layer {layer_of[other]})"
              for module in sorted(modules) for other in sorted(_package_imports(package / f"{module}.py"))
              if other in layer_of and layer_of[other] > layer_of[module]]
    assert not upward, upward
