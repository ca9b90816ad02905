"""The desk as a test runs it: the API with its desk served by uvicorn on a loopback port,
a real worker behind it, the gateway on an edge client whose only trust is its grant key
(as production's); the browser is tests/browser.py's (Playwright driving Debian's
chromium)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import uvicorn
from playwright.async_api import Browser, Page, ViewportSize
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from api.app import create_app
from desk.oidc import OidcProvider
from desk.router import Desk, DeskSettings
from domain.case import OpenCaseRequest, Reason, Role
from infra.gateway import CaseGateway
from infra.security.grants import GrantingInterceptor
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eventually
from tests.helpers import photos
from tests.identities import IDENTITIES
from tests.processes import free_port
from workflows.case_handlers import CaseHandlers

# The width the desk is laid out for at least (issue 17: usable at 1280 px).
DESK_VIEWPORT = ViewportSize(width=1280, height=900)
TEMPORAL_UI = "http://temporal-ui.test:8233"
_HIDDEN = r'name="{}" value="([^"]+)"'


@dataclass(frozen=True)
class DeskSite:
    url: str
    gateway: CaseGateway
    pool: asyncpg.Pool


def edge_client(env: WorkflowEnvironment) -> Client:
    """A client of the test server whose Updates carry the grants the gateway signs for
    the signed-in person, and nothing else (not the tests' payload-trusting edge)."""
    return Client(
        **env.client.config() | {"interceptors": [GrantingInterceptor(IDENTITIES.signer)]}
    )


@asynccontextmanager
async def desk_site(
    env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str, oidc: OidcProvider | None = None
) -> AsyncIterator[DeskSite]:
    gateway = CaseGateway(edge_client(env), pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))
    settings = DeskSettings(temporal_ui_url=TEMPORAL_UI, namespace="default", oidc=oidc)
    desk = Desk(gateway, pool, load_policy_file(DEFAULT_POLICY_FILE), settings)
    app = create_app(gateway, IDENTITIES.authenticator, desk=desk)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())

    async def listening() -> bool:
        return bool(server.started)

    assert await eventually(listening, bool)
    try:
        yield DeskSite(f"http://127.0.0.1:{port}", gateway, pool)
    finally:
        server.should_exit = True
        await serving


async def signed_in(browser: Browser, site: DeskSite, person: str, role: Role) -> Page:
    """A browser of its own, signed in through the development sign-in form."""
    context = await browser.new_context(viewport=DESK_VIEWPORT)
    page = await context.new_page()
    await page.goto(f"{site.url}/desk/sign-in")
    await page.get_by_label("Person (staff id)").fill(person)
    await page.get_by_label("Role").select_option(role.value)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/desk/queues/**")
    return page


async def opened(site: DeskSite, request: OpenCaseRequest) -> str:
    """The case opened through the gateway as the API opens one (stamped at receipt)."""
    await site.gateway.accept_case(site.gateway.received_now(request))
    return request.case_id


def fresh_request(*, sku: str = "SKU-42", **overrides: Any) -> OpenCaseRequest:
    now = datetime.now(UTC)
    request = a_request(
        delivered_at=now - timedelta(days=1), requested_after=timedelta(hours=1),
        order_id=f"D-{uuid.uuid4().hex[:8]}", **overrides,
    )  # fmt: skip
    return request.model_copy(update={"sku": sku})


async def status_of(pool: asyncpg.Pool, case_id: str) -> str | None:
    status: str | None = await pool.fetchval("SELECT status FROM cases WHERE case_id = $1", case_id)
    return status


async def reaches(pool: asyncpg.Pool, case_id: str, status: str) -> None:
    reached = await eventually(lambda: status_of(pool, case_id), lambda s: s == status)
    assert reached == status


async def under_review(site: DeskSite, **overrides: Any) -> str:
    """A defect case (R6) with its photos in, waiting for an agent's review (R10)."""
    case_id = await opened(site, fresh_request(reason=Reason.QUALITY_DEFECT, **overrides))
    await reaches(site.pool, case_id, "awaiting_evidence")
    await site.gateway.tell(case_id, CaseHandlers.evidence_submitted, photos())
    await reaches(site.pool, case_id, "under_review")
    return case_id


def hidden_field(page: str, name: str) -> str:
    """A form's hidden field's value on an HTML page (form and CSRF tokens)."""
    found = re.search(_HIDDEN.format(name), page)
    assert found, f"no {name} on the page"
    return found.group(1)


async def signed_in_client(
    site: DeskSite, person: str, role: Role
) -> tuple[httpx.AsyncClient, str]:
    """A plain HTTP client signed in through the development form, and its session's
    CSRF token (for the desk's routes without a browser)."""
    client = httpx.AsyncClient(base_url=site.url)
    form = await client.get("/desk/sign-in")
    answer = await client.post("/desk/sign-in", data={
        "form_token": hidden_field(form.text, "form_token"), "person": person,
        "role": role.value, "return_to": "/desk/queues/late",
    })  # fmt: skip
    assert answer.status_code == 303, answer.text
    queue = await client.get("/desk/queues/late")
    return client, hidden_field(queue.text, "csrf_token")
