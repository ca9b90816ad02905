"""Operators work from the Temporal UI: a case opened through the gateway shows up when
the UI filters by a search attribute, seen by a real headless browser (Debian's
chromium, installed here when missing). The screenshot goes to docs/ for the README."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from infra.devstack import start_dev_server
from infra.gateway import CaseGateway
from infra.policy_file import load_policy_file
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eventually

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium"],
            check=True,
            capture_output=True,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        found = shutil.which("chromium")
    assert found, "Debian's chromium could not be installed"
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def ui_env(data_converter: DataConverter) -> AsyncIterator[tuple[WorkflowEnvironment, int]]:
    ui_port = _free_port()
    env = await start_dev_server(
        data_converter=data_converter, port=_free_port(), ui=True, ui_port=ui_port
    )
    yield env, ui_port
    await env.shutdown()


def _browse(chromium: str, url: str, *extra: str) -> str:
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--window-size=1500,900", "--virtual-time-budget=15000",
         *extra, url],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result.stdout


async def test_an_operator_finds_the_case_by_search_attribute_in_the_ui(
    ui_env: tuple[WorkflowEnvironment, int],
    running_worker: Any,
    pool: asyncpg.Pool,
    task_queue: str,
) -> None:
    env, ui_port = ui_env
    chromium = _chromium()
    gateway = CaseGateway(env.client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))
    now = datetime.now(UTC)
    request = a_request(delivered_at=now - timedelta(days=1), requested_after=timedelta(days=1))
    async with running_worker(env.client):
        await gateway.open_case(request)
        await eventually(
            lambda: gateway.list_cases(status="awaiting_ship_back"),
            lambda cases: any(c.case_id == request.case_id for c in cases),
        )
        query = quote(f"CaseStatus = 'awaiting_ship_back' AND OrderId = '{request.order_id}'")
        url = f"http://127.0.0.1:{ui_port}/namespaces/default/workflows?query={query}"
        dom = _browse(chromium, url, "--dump-dom")
        DOCS.mkdir(exist_ok=True)
        _browse(chromium, url, f"--screenshot={DOCS / 'temporal-ui-cases.png'}")
        # What the UI shows on the case's page: its static summary and current details.
        metadata = await env.client.get_workflow_handle(request.case_id).query(
            "__temporal_workflow_metadata"
        )
    assert request.case_id in dom
    assert (DOCS / "temporal-ui-cases.png").stat().st_size > 10_000
    assert "Waiting for: the customer to hand the parcel to a carrier" in str(metadata)
