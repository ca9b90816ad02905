"""Issue 16, item 5: the pages a browser opens. Before: a form posted from
http://evil.example (`Sec-Fetch-Site: cross-site`) with the attacker's own staff token got
the session cookie set (login CSRF: the victim's browser then acts as the attacker), the
cookie had no Secure flag off loopback, and no HTML page sent a Content-Security-Policy or
a framing rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import uvicorn
from aiohttp import web
from playwright.async_api import Browser, expect
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from api.app import create_app
from api.codec import SESSION_COOKIE
from domain.case import Role
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.helpers import api_client, as_role
from tests.identities import IDENTITIES
from tests.processes import free_port

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
async def gateway(dev_env: WorkflowEnvironment, pool: asyncpg.Pool) -> CaseGateway:
    return CaseGateway(dev_env.client, pool, "unused", load_policy_file(DEFAULT_POLICY_FILE))


@pytest.fixture
async def api(gateway: CaseGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway) as http:
        yield http


def attackers_login() -> str:
    return f"token={IDENTITIES.token('attacker-ann', Role.AGENT)}"


@pytest.mark.parametrize(
    "from_another_site",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:8233"},
        {"Origin": "http://evil.example"},  # a browser without Fetch Metadata
        {"Origin": "null"},  # a sandboxed frame or a data: URL
    ],
    ids=["cross-site", "same-site-other-origin", "origin-only", "null-origin"],
)
async def test_a_session_form_posted_from_another_site_keeps_no_cookie(
    api: httpx.AsyncClient, from_another_site: dict[str, str]
) -> None:  # R23: who acts is who proved it, never whom another site chose
    posted = await api.post("/codec/session", content=attackers_login(),
                            headers=FORM | from_another_site)  # fmt: skip
    assert posted.status_code == 403
    assert "set-cookie" not in posted.headers
    assert "another site" in posted.text


@pytest.mark.parametrize(
    "from_this_page",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
        {"Sec-Fetch-Site": "none"},  # typed or bookmarked: no page posted it
        {"Origin": "http://localhost"},
        {},  # no browser: a script of the operator's own
    ],
    ids=["same-origin", "no-page", "origin-only", "no-browser"],
)
async def test_the_session_form_posted_from_its_own_page_keeps_the_cookie(
    api: httpx.AsyncClient, from_this_page: dict[str, str]
) -> None:
    posted = await api.post("/codec/session", content=attackers_login(),
                            headers=FORM | from_this_page)  # fmt: skip
    assert posted.status_code == 200
    cookie = posted.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # on loopback: a local run is plain HTTP


async def test_off_loopback_the_session_cookie_is_secure(gateway: CaseGateway) -> None:
    async with api_client(gateway, host="aftersales.example") as api:
        posted = await api.post("/codec/session", content=attackers_login(),
                                headers=FORM | {"Origin": "http://aftersales.example"})  # fmt: skip
    assert posted.status_code == 200
    assert "Secure" in posted.headers["set-cookie"]


@pytest.mark.parametrize(
    ("path", "role"),
    [("/codec/session", None), ("/reports/page", Role.AGENT),
     ("/reports/plots/reasons.svg", Role.AGENT), ("/docs", None), ("/redoc", None),
     ("/docs/oauth2-redirect", None)],
)  # fmt: skip
async def test_every_page_a_browser_renders_forbids_framing_and_script_it_does_not_name(
    api: httpx.AsyncClient, path: str, role: Role | None
) -> None:
    page = await api.get(path, headers=as_role(role) if role else {})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith(("text/html", "image/svg+xml"))
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    if path.startswith(("/codec", "/reports")):  # the API's own pages run no script
        assert "script-src" not in policy


async def test_a_json_answer_carries_no_page_policy(api: httpx.AsyncClient) -> None:
    answer = await api.get("/openapi.json")
    assert answer.status_code == 200
    assert "content-security-policy" not in answer.headers


async def test_a_real_browser_on_another_sites_page_is_not_signed_in(
    gateway: CaseGateway, browser: Browser
) -> None:  # R23
    """The attack as a browser runs it: a page on another site (localhost is another site
    than 127.0.0.1) posts its own staff token to the session form as the page loads."""
    api_port, evil_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    form = (f'<form method="post" action="{api}/codec/session"><input name="token" '
            f'value="{IDENTITIES.token("attacker-ann", Role.AGENT)}"></form>'
            "<script>document.forms[0].submit()</script>")  # fmt: skip

    async def attackers_page(_: web.Request) -> web.Response:
        return web.Response(text=form, content_type="text/html")

    evil = web.Application()
    evil.router.add_get("/", attackers_page)
    evil_runner = web.AppRunner(evil)
    await evil_runner.setup()
    await web.TCPSite(evil_runner, "127.0.0.1", evil_port).start()
    app = create_app(gateway, IDENTITIES.authenticator)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=api_port,
                                           log_level="warning"))  # fmt: skip
    serving = asyncio.create_task(server.serve())
    try:
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"http://localhost:{evil_port}/")
        await expect(page.get_by_text("Not kept")).to_be_visible()
        shown = await page.inner_text("body")
        cookies = await context.cookies([api])
    finally:
        server.should_exit = True
        await serving
        await evil_runner.cleanup()
    assert "posted from another site" in shown
    assert SESSION_COOKIE not in {cookie.get("name") for cookie in cookies}
