"""Imports go down the layers only (README, "Architecture"): each module of the product
imports its own layer and those below it, never one above. Read from the source's own
import statements, so a new module is checked without anyone listing it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.processes import ROOT

# Lowest first. The API mounts the desk's router, so the desk sits below it; the
# composition root of `make run` builds the whole system from all of them.
LAYERS: dict[str, int] = {
    "domain": 0,
    "activities": 1,
    "workflows": 2,
    "infra": 3,
    "desk": 4,
    "starter": 4,
    "worker": 4,
    "api": 5,
    "stack": 6,
}


def product_modules() -> list[Path]:
    found: list[Path] = []
    for name in LAYERS:
        package = ROOT / name
        found += sorted(package.rglob("*.py")) if package.is_dir() else [ROOT / f"{name}.py"]
    return found


def imported_layers(path: Path) -> set[str]:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
    return imported & LAYERS.keys()


@pytest.mark.parametrize("path", product_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_module_imports_no_layer_above_its_own(path: Path) -> None:
    layer = path.relative_to(ROOT).parts[0].removesuffix(".py")
    above = {name for name in imported_layers(path) if LAYERS[name] > LAYERS[layer]}
    assert not above, f"{path.relative_to(ROOT)} imports {sorted(above)}, above {layer}"


def test_the_check_sees_an_import_running_back_up(tmp_path: Path) -> None:
    upward = tmp_path / "upward.py"
    upward.write_text("from infra.settings import Settings\nimport api.app\n")
    assert imported_layers(upward) == {"infra", "api"}
