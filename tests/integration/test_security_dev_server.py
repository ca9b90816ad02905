"""Issue 16, item 6: the dev server's HTTP API takes no drive-by signal. Before: `temporal
server start-dev` opened it on a random port and took a CORS "simple" text/plain POST
from any origin; a page the developer visited signalled `warehouse_scan` and the case
was refunded."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from infra.devstack import HTTP_API_HOST_NOBODY_SENDS, start_dev_server
from tests.processes import free_port

# The HTTP API's signal route (api/workflowservice/v1 in temporalio's protos).
SIGNAL_ROUTE = "/api/v1/namespaces/default/workflows/{workflow_id}/signal/warehouse_scan"
# What a page on another site can send without a preflight: a form-like text/plain POST.
DRIVE_BY = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
SCAN = {"input": {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="},
                                "data": "eyJzY2FubmVkX2J5IjoiZHJpdmUtYnkifQ=="}]}}  # fmt: skip


@pytest.fixture
async def dev_server(
    data_converter: DataConverter,
) -> AsyncIterator[tuple[WorkflowEnvironment, int]]:
    http_port = free_port()
    env = await start_dev_server(data_converter=data_converter, http_port=http_port)
    yield env, http_port
    await env.shutdown()


async def signals_of(env: WorkflowEnvironment, workflow_id: str) -> int:
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    return sum(
        event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        for event in history.events
    )


async def test_a_drive_by_post_to_the_dev_servers_http_api_signals_no_case(
    dev_server: tuple[WorkflowEnvironment, int],
) -> None:  # R13: only a proven scanner's scan moves a case
    env, http_port = dev_server
    # A case waiting for its parcel; no worker needed: the signal would sit in its history.
    await env.client.start_workflow("ReturnCase", id="return-drive-by-1", task_queue="nobody")
    path = SIGNAL_ROUTE.format(workflow_id="return-drive-by-1")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as http:
        drive_by = await http.post(path, content=json.dumps(SCAN), headers=DRIVE_BY)
        assert drive_by.status_code == 403, drive_by.text
        assert await signals_of(env, "return-drive-by-1") == 0
        # The same POST under the one Host the server answers (no browser can send it)
        # does signal: the refusal above is the Host rule, not a wrong route.
        as_named = DRIVE_BY | {"Host": HTTP_API_HOST_NOBODY_SENDS}
        named = await http.post(path, content=json.dumps(SCAN), headers=as_named)
        assert named.status_code == 200, named.text
        assert await signals_of(env, "return-drive-by-1") == 1
