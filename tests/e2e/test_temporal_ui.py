"""Operators work from the Temporal UI, seen by a real browser (tests/browser.py): a case
opened through the gateway shows up when the UI filters by a search attribute, and a
sealed case reads decoded on its page with no set-up, as under `make run`: the dev
server's UI is given this run's codec endpoint (api/codec.py RunCodec). The screenshots
go to docs/ for docs/operations.md and docs/sealing.md."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
import uvicorn
from playwright.async_api import Browser, Page, Response, expect
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from api.app import create_app
from api.codec import RUN_CODEC_PATH, RunCodec
from domain.case import Customer
from infra.devstack import start_dev_server
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.browser import VIEWPORT, screenshot_path
from tests.conftest import a_request, eventually
from tests.identities import IDENTITIES
from tests.processes import free_port

LIST_SCREENSHOT = "temporal-ui-cases.png"
CASE_SCREENSHOT = "temporal-ui-case-decoded.png"
DETAILS_SCREENSHOT = "temporal-ui-case-details.png"


@pytest.fixture
async def ui_env(data_converter: DataConverter) -> AsyncIterator[tuple[WorkflowEnvironment, int]]:
    ui_port = free_port()
    env = await start_dev_server(
        data_converter=data_converter, port=free_port(), ui=True, ui_port=ui_port
    )
    yield env, ui_port
    await env.shutdown()


async def test_an_operator_finds_the_case_by_search_attribute_in_the_ui(
    ui_env: tuple[WorkflowEnvironment, int],
    running_worker: Any,
    pool: asyncpg.Pool,
    task_queue: str,
    browser: Browser,
    tmp_path: Path,
) -> None:
    env, ui_port = ui_env
    screenshot = screenshot_path(LIST_SCREENSHOT, tmp_path)
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
        page = await browser.new_page(viewport=VIEWPORT)
        await page.goto(f"http://127.0.0.1:{ui_port}/namespaces/default/workflows?query={query}")
        row = page.get_by_role("link", name=request.case_id)
        await expect(row.first).to_be_visible(timeout=30_000)
        await page.screenshot(path=screenshot)
    assert screenshot.stat().st_size > 10_000


@dataclass
class _Stack:
    """`make run` in small: the dev server's UI given this run's codec endpoint, the API
    serving it, a worker."""

    gateway: CaseGateway
    env: WorkflowEnvironment
    ui: str


@asynccontextmanager
async def _make_run_in_small(
    data_converter: DataConverter, pool: asyncpg.Pool, task_queue: str, running_worker: Any
) -> AsyncIterator[_Stack]:
    # The API's socket is bound before the dev server starts, so none of its processes
    # can take the port in between (a free port found and let go once was).
    api_socket = socket.socket()
    api_socket.bind(("127.0.0.1", 0))
    api_port = api_socket.getsockname()[1]
    ui_port = free_port()
    run_codec = RunCodec.new()
    env = await start_dev_server(
        data_converter=data_converter, port=free_port(), ui=True, ui_port=ui_port,
        ui_codec_endpoint=run_codec.endpoint(f"http://localhost:{api_port}"),
    )  # fmt: skip
    gateway = CaseGateway(env.client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))
    api = uvicorn.Server(uvicorn.Config(
        create_app(gateway, IDENTITIES.authenticator, run_codec=run_codec,
                   codec_origins=[f"http://localhost:{ui_port}"]),
        host="127.0.0.1", port=api_port, log_level="warning",
    ))  # fmt: skip
    serving = asyncio.create_task(api.serve(sockets=[api_socket]))
    try:
        async with running_worker(env.client):
            yield _Stack(gateway, env, f"http://localhost:{ui_port}")
    finally:
        api.should_exit = True
        await serving
        await env.shutdown()


async def test_an_operator_reads_a_sealed_case_decoded_in_the_ui_with_no_set_up(
    data_converter: DataConverter,
    running_worker: Any,
    pool: asyncpg.Pool,
    task_queue: str,
    browser: Browser,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    request = a_request(delivered_at=now - timedelta(days=1), requested_after=timedelta(days=1))
    marker = f"cust-UI-{uuid.uuid4().hex[:8]}"
    request = request.model_copy(update={"customer": Customer(customer_id=marker)})
    codec_answers: list[Response] = []
    async with _make_run_in_small(data_converter, pool, task_queue, running_worker) as stack:
        opened = await stack.gateway.open_case(request)
        case_id = opened.view.case_id
        # A fresh browser: no cookie, no local storage, no codec setting, nothing by hand.
        page = await browser.new_page(viewport=VIEWPORT)
        page.on(
            "response",
            lambda answer: codec_answers.append(answer) if RUN_CODEC_PATH in answer.url else None,
        )
        await page.goto(f"{stack.ui}/namespaces/default/workflows/{case_id}")
        # The input, decoded by the codec server.
        await expect(page.get_by_text(marker).first).to_be_visible(timeout=30_000)
        await page.screenshot(path=screenshot_path(CASE_SCREENSHOT, tmp_path))
        # Its summary and current details (sealed payloads too).
        await page.get_by_role("tab", name="User Metadata").click()
        summary = f"return · changed_mind · order {request.order_id} line 1 · SKU SKU-42"
        waiting = "Waiting for: the customer to hand the parcel to a carrier"
        metadata = await eventually(
            lambda: _text_with_frames(page), lambda text: summary in text and waiting in text
        )
        await page.screenshot(path=screenshot_path(DETAILS_SCREENSHOT, tmp_path))
        raw = await stack.env.client.get_workflow_handle(case_id).fetch_history()
    assert summary in metadata
    assert waiting in metadata
    assert "Next deadline: " in metadata
    assert "Codec Server could not connect" not in metadata
    assert codec_answers
    assert {answer.status for answer in codec_answers} == {200}
    assert marker.encode() not in raw.to_json().encode()  # sealed in Temporal


async def _text_with_frames(page: Page) -> str:
    """The page's text with its frames' (the UI renders Markdown metadata in frames)."""
    texts = [await frame.inner_text("body") for frame in page.frames]
    return "\n".join(texts)
