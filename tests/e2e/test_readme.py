"""The README's walkthrough, run as written against a real stack: the project copied as a
fresh clone would be (no `.data`), set up the way `make run` sets itself up (development
keys, machine credentials in `.data/identity/dev-credentials.env`, a codec key), its API
and worker as their own processes against the dev server and PostgreSQL. The only change
to the text is the API's address (`localhost:8000` becomes this test's port). The test
reads the walkthrough from README.md each run: a changed README is what it runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.processes import ROOT, free_port, start_process

WALKTHROUGH_HEADING = "## Walkthrough"
README_API = "localhost:8000"
STEP_MARK = "@@ step "


def walkthrough(readme: str) -> str:
    """The shell blocks of the README's walkthrough section, joined."""
    section = readme.split(WALKTHROUGH_HEADING, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert blocks, "the README's walkthrough has no ```sh block"
    return "".join(blocks)


def steps(script: str) -> list[str]:
    """The walkthrough cut at its numbered comments (`# 1. ...`): the set-up lines before
    the first, then one piece per step."""
    return re.split(r"(?m)^(?=# \d+\. )", script)


@dataclass(frozen=True)
class Stack:
    clone: Path
    api_port: int
    env: dict[str, str]


def _fresh_clone(into: Path) -> Path:
    """The project's files as a clone has them (what git tracks, and new files not yet
    committed), with this checkout's virtual environment: no `.data`, no keys."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in listed:
        source = ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    (into / ".venv").symlink_to(ROOT / ".venv")
    return into


# What `make run` makes before it serves (stack/__main__.py), with the same functions.
_SET_UP_LIKE_MAKE_RUN = """
from infra.security.data_converter import ensure_local_key_file
from infra.security.edge_identity import ensure_dev_clients
from infra.security.identity import MachineClients
from infra.settings import load_settings

settings = load_settings()
ensure_dev_clients(MachineClients(settings.clients_file))
ensure_local_key_file(settings)
"""


@pytest.fixture
def stack(dev_env: WorkflowEnvironment, database_url: str, tmp_path: Path) -> Iterator[Stack]:
    clone = _fresh_clone(tmp_path / "aftersales")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSALES_")} | {
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "DATABASE_URL": database_url,
        "AFTERSALES_TASK_QUEUE": f"aftersales-readme-{uuid.uuid4().hex[:8]}",
        "AFTERSALES_API_PORT": str(port),
    }
    python = str(clone / ".venv" / "bin" / "python")
    subprocess.run([python, "-c", _SET_UP_LIKE_MAKE_RUN], cwd=clone, env=env, check=True)
    worker, _ = start_process([python, "worker.py"], env, tmp_path / "worker.log", cwd=clone)
    api, listening = start_process(
        [python, "-m", "api"], env, tmp_path / "api.log", "Uvicorn running on", cwd=clone
    )
    try:
        assert listening.wait(timeout=60), f"the API did not start; see {tmp_path / 'api.log'}"
        yield Stack(clone=clone, api_port=port, env=env)
    finally:
        for process in (api, worker):
            process.terminate()
            process.wait(timeout=20)


def run_walkthrough(stack: Stack) -> list[str]:
    """Each step's output, the set-up lines first; fails if any command fails (set -e:
    every curl there is --fail-with-body, so an HTTP error fails the step)."""
    script = walkthrough((stack.clone / "README.md").read_text(encoding="utf-8"))
    assert README_API in script
    script = script.replace(README_API, f"127.0.0.1:{stack.api_port}")
    marked = "".join(
        f"echo '{STEP_MARK}{number}'\n{step}" for number, step in enumerate(steps(script))
    )
    done = subprocess.run(
        ["bash", "-eu", "-c", marked], cwd=stack.clone, env=stack.env,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    outputs = re.split(rf"(?m)^{STEP_MARK}\d+\n", done.stdout)[1:]
    assert done.returncode == 0, f"step {len(outputs) - 1} failed:\n{done.stdout}\n{done.stderr}"
    return outputs


def test_r23_the_readme_walkthrough_takes_a_return_from_request_to_refund(stack: Stack) -> None:
    set_up, opened, evidence, approved, scanned, refunded, ledger = run_walkthrough(stack)
    assert set_up == ""
    assert '"created":true' in opened  # R2: 201, a new case
    assert '"accepted":"evidence_submitted"' in evidence  # R6
    assert '"status":"awaiting_ship_back"' in approved  # R10: the approval applied
    assert '"decided_by":"agent-ann"' in approved
    assert scanned.count('"accepted":true') == 2  # R26: both scans reached the case
    assert '"status":"refunded"' in refunded  # R21
    assert '"amount_minor":5990' in refunded
    assert '"category"' not in refunded  # the shop's view, not the working view
    assert '"actor":"agent-ann","role":"agent","action":"approved"' in ledger
    assert '"action":"case_opened"' in ledger  # R23: the trail from its first step
    assert "cust-1" not in ledger  # a customer is named by role only
