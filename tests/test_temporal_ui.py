"""Operators work from the Temporal UI: a case opened through the gateway shows up when
the UI filters by a search attribute, seen by a real headless browser (Debian's
chromium, which `make test` installs first: `make browser`). The screenshot goes to docs/
for docs/operations.md."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
import uvicorn
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.codec import SESSION_COOKIE
from domain.case import Customer, Role
from infra.devstack import start_dev_server
from infra.gateway import CaseGateway
from infra.policy_file import load_policy_file
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eventually
from tests.identities import IDENTITIES

SCREENSHOT = "temporal-ui-cases.png"


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is missing: `make browser` installs it (`make test` runs it first)"
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
    tmp_path: Path,
) -> None:
    env, ui_port = ui_env
    # docs/temporal-ui-cases.png is refreshed on purpose (AFTERSALES_SCREENSHOT_DIR=docs),
    # not by every run: a test run leaves the work tree as it found it.
    screenshot = Path(os.environ.get("AFTERSALES_SCREENSHOT_DIR", tmp_path)) / SCREENSHOT
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
        _browse(chromium, url, f"--screenshot={screenshot}")
        # What the UI shows on the case's page: its static summary and current details.
        metadata = await env.client.get_workflow_handle(request.case_id).query(
            "__temporal_workflow_metadata"
        )
    assert request.case_id in dom
    assert screenshot.stat().st_size > 10_000
    assert "Waiting for: the customer to hand the parcel to a carrier" in str(metadata)


class _DevTools:
    """A page of a headless chromium, driven over the DevTools protocol (aiohttp's
    websocket client): cookies and local storage set, pages read once scripts have run."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket, self._ids = socket, itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        sent = next(self._ids)
        await self._socket.send_json({"id": sent, "method": method, "params": params})
        while True:
            message = await self._socket.receive_json(timeout=30)
            if message.get("id") == sent:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def text(self) -> str:
        found = await self.call("Runtime.evaluate", expression="document.body.innerText")
        return str(found["result"].get("value", ""))


@asynccontextmanager
async def _devtools(chromium: str, profile: Path) -> AsyncIterator[_DevTools]:
    port = _free_port()
    browser = await asyncio.create_subprocess_exec(
        *[chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--remote-debugging-port={port}", f"--user-data-dir={profile}",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            pages: list[dict[str, Any]] = []
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                        pages = [p for p in await answer.json() if p["type"] == "page"]
                if pages:
                    break
                await asyncio.sleep(0.1)
            async with http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield _DevTools(ws)
    finally:
        browser.terminate()
        await asyncio.wait_for(browser.wait(), timeout=30)


async def test_an_operator_reads_a_sealed_case_decoded_in_the_ui(
    data_converter: DataConverter,
    running_worker: Any,
    pool: asyncpg.Pool,
    task_queue: str,
    tmp_path: Path,
) -> None:
    chromium = _chromium()
    # The API's socket is bound before the dev server starts, so none of its processes
    # can take the port in between (a free port found and let go once was).
    api_socket = socket.socket()
    api_socket.bind(("127.0.0.1", 0))
    api_port = api_socket.getsockname()[1]
    ui_port = _free_port()
    env = await start_dev_server(
        data_converter=data_converter, port=_free_port(), ui=True, ui_port=ui_port,
        ui_codec_endpoint=f"http://localhost:{api_port}/codec",
    )  # fmt: skip
    gateway = CaseGateway(env.client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))
    api = uvicorn.Server(uvicorn.Config(
        create_app(gateway, IDENTITIES.authenticator,
                   codec_origins=[f"http://localhost:{ui_port}"]),
        host="127.0.0.1", port=api_port, log_level="warning",
    ))  # fmt: skip
    serving = asyncio.create_task(api.serve(sockets=[api_socket]))
    now = datetime.now(UTC)
    request = a_request(delivered_at=now - timedelta(days=1), requested_after=timedelta(days=1))
    marker = f"cust-UI-{uuid.uuid4().hex[:8]}"
    request = request.model_copy(update={"customer": Customer(customer_id=marker)})
    try:
        async with running_worker(env.client), _devtools(chromium, tmp_path / "profile") as page:
            opened = await gateway.open_case(request)
            # What the operator does once (README): a staff token kept in the session
            # cookie at /codec/session, and "Include cross-origin credentials" ticked in
            # the UI's codec settings (which the UI keeps in local storage).
            await page.call("Network.enable")
            token = IDENTITIES.token("agent-ann", Role.AGENT)
            await page.call("Network.setCookie", name=SESSION_COOKIE, value=token,
                            url=f"http://localhost:{api_port}/codec", httpOnly=True,
                            sameSite="Strict")  # fmt: skip
            ui = f"http://localhost:{ui_port}"
            await page.call("Page.navigate", url=f"{ui}/namespaces/default/workflows")
            await eventually(page.text, lambda text: "Workflows" in text)
            await page.call("Runtime.evaluate", expression=(
                "localStorage.setItem('includeCredentials', 'true');"
                "localStorage.setItem('overrideRemoteCodecConfiguration', 'true');"
                f"localStorage.setItem('endpoint', '\"http://localhost:{api_port}/codec\"');"
            ))  # fmt: skip
            case_page = f"{ui}/namespaces/default/workflows/{opened.view.case_id}"
            await page.call("Page.navigate", url=case_page)
            shown = await eventually(page.text, lambda text: marker in text, within_s=30)
        raw = await env.client.get_workflow_handle(opened.view.case_id).fetch_history()
    finally:
        api.should_exit = True
        await serving
        await env.shutdown()
    assert marker in shown  # decoded by the codec server, for a staff member
    assert marker.encode() not in raw.to_json().encode()  # sealed in Temporal
