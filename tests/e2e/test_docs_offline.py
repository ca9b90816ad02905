"""/docs and /redoc render with no network beyond the API itself (issue 18, part 5): their
assets come from a wheel and are served by the API, under the page policy. Checked in a
real browser that records every request the pages make."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, ConsoleMessage, Request, expect
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from api.app import create_app
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import eventually
from tests.identities import IDENTITIES
from tests.processes import free_port


@pytest.fixture
async def served_api(dev_env: WorkflowEnvironment, pool: asyncpg.Pool) -> AsyncIterator[str]:
    port = free_port()
    gateway = CaseGateway(dev_env.client, pool, "no-worker", load_policy_file(DEFAULT_POLICY_FILE))
    app = create_app(gateway, IDENTITIES.authenticator)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())

    async def listening() -> bool:
        return bool(server.started)

    assert await eventually(listening, bool)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def test_the_docs_pages_name_no_outside_origin(served_api: str) -> None:
    async with httpx.AsyncClient(base_url=served_api) as api:
        docs, redoc = await api.get("/docs"), await api.get("/redoc")
        bundle = await api.get("/docs-assets/swagger-ui-bundle.js")
    for page in (docs, redoc):
        assert page.status_code == 200
        assert "https://" not in page.text  # no CDN, no fonts, no favicon from afar
        policy = page.headers["content-security-policy"]
        assert "https:" not in policy
        assert "script-src 'self' 'unsafe-inline'" in policy
    assert bundle.status_code == 200  # served without a credential, like the pages


# ReDoc's bundle shows its maker's logo from the maker's site in a corner of the menu (no
# option turns it off): the page policy blocks that one image, so nothing is fetched.
@pytest.mark.parametrize(
    ("path", "rendered"),
    [("/docs", 'role=button[name="GET /cases/{case_id} Read Case"]'),
     ("/redoc", 'h2 >> text="Read Case"')],
)  # fmt: skip
async def test_the_docs_render_their_operations_in_a_browser_with_no_outside_request(
    served_api: str, browser: Browser, path: str, rendered: str
) -> None:
    page = await browser.new_page()
    requested: list[str] = []
    fetched: list[str] = []
    violations: list[str] = []

    def seen(request: Request) -> None:
        requested.append(request.url)

    def answered(request: Request) -> None:
        fetched.append(request.url)

    def said(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or message.type == "error":
            violations.append(message.text)

    page.on("request", seen)
    page.on("requestfinished", answered)
    page.on("console", said)
    await page.goto(f"{served_api}{path}")
    await expect(page.locator(rendered).first).to_be_visible(timeout=30_000)

    def outside(urls: list[str]) -> list[str]:
        return [url for url in urls if not url.startswith((served_api, "data:", "blob:"))]

    assert outside(fetched) == []
    assert any(url.endswith("/openapi.json") for url in fetched)
    if path == "/docs":  # Swagger UI does not even try
        assert outside(requested) == []
        assert violations == []
    else:
        assert outside(requested) == ["https://cdn.redoc.ly/redoc/logo-mini.svg"]
