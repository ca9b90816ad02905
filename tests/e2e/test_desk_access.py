"""Who gets into the desk and what each person may do there: the OIDC sign-in against a
stand-in provider (tests/oidc_provider.py), the development sign-in, each route refusing
the roles it does not allow, and forms without the session's CSRF token."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, expect
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from api.app import create_app
from desk.oidc import OidcProvider
from desk.router import Desk, DeskSettings
from domain.case import Reason, Role
from domain.queues import PAGE_SIZE
from infra.settings import DEFAULT_POLICY_FILE
from tests.desk_site import (
    DESK_VIEWPORT,
    TEMPORAL_UI,
    DeskSite,
    desk_site,
    fresh_request,
    hidden_field,
    opened,
    reaches,
    signed_in_client,
    under_review,
)
from tests.identities import IDENTITIES
from tests.oidc_provider import StandInProvider, oidc_provider
from workflows.steps.casebook import SYSTEM_ACTOR


async def test_each_desk_route_refuses_the_roles_it_does_not_allow(site: DeskSite) -> None:
    case_id = await under_review(site)
    agent, agent_csrf = await signed_in_client(site, "ann", Role.AGENT)
    arbiter, arbiter_csrf = await signed_in_client(site, "judge", Role.ARBITER)
    supervisor, _ = await signed_in_client(site, "sam", Role.SUPERVISOR)
    refused = {
        # Refused input holds raw bodies: supervisors and managers repair integrations.
        ("agent", "GET", "/desk/refused-inputs"): 403,
        ("agent", "POST", "/desk/refused-inputs/1/handled"): 403,
        # The arbiter rules on disputes (R19) and works nothing else.
        ("arbiter", "GET", "/desk/unmatched-scans"): 403,
        ("arbiter", "POST", "/desk/unmatched-scans/s-1/attach"): 403,
        ("arbiter", "POST", "/desk/queues/needs_decision/assign"): 403,
        ("arbiter", "POST", f"/desk/cases/{case_id}/notes"): 403,
        ("arbiter", "GET", "/reports/page"): 403,
        # A case never disputed is unknown to the arbiter, as in the API (R19).
        ("arbiter", "GET", f"/desk/cases/{case_id}"): 404,
        ("arbiter", "POST", f"/desk/cases/{case_id}/rule"): 404,
        # An agent does not rule, and no form is taken that the case does not offer now.
        ("agent", "POST", f"/desk/cases/{case_id}/rule"): 403,
        ("agent", "POST", f"/desk/cases/{case_id}/extend-everything"): 403,
    }
    clients = {"agent": (agent, agent_csrf), "arbiter": (arbiter, arbiter_csrf)}
    for (who, method, path), expected in refused.items():
        client, csrf = clients[who]
        answer = await client.request(method, path, data={"csrf_token": csrf, "action_id": "a-1"}
                                      if method == "POST" else None)  # fmt: skip
        assert answer.status_code == expected, (who, method, path, answer.text[:300])
        if path.startswith("/desk"):  # the desk answers with a page, the API with JSON
            assert "text/html" in answer.headers["content-type"]
    # What each may do, they can.
    assert (await arbiter.get("/desk/queues/needs_decision")).status_code == 200
    assert (await agent.get("/desk/unmatched-scans")).status_code == 200
    assert (await supervisor.get("/desk/refused-inputs")).status_code == 200
    for client in (agent, arbiter, supervisor):
        await client.aclose()


async def test_a_form_without_the_sessions_csrf_token_is_refused(site: DeskSite) -> None:
    case_id = await under_review(site)
    agent, csrf = await signed_in_client(site, "ann", Role.AGENT)
    other, _ = await signed_in_client(site, "ann", Role.AGENT)  # another session of the same person
    for client, token in ((agent, ""), (other, csrf)):
        answer = await client.post(f"/desk/cases/{case_id}/approve",
                                   data={"csrf_token": token, "action_id": "a-1"})  # fmt: skip
        assert answer.status_code == 403
        assert "csrf_token" in answer.text
    assert (
        await site.pool.fetchval(
            "SELECT count(*) FROM case_events WHERE case_id = $1 AND action = 'approved'", case_id
        )
        == 0
    )
    # A desk page carries the strict policy: no inline script or style runs there.
    page = await agent.get(f"/desk/cases/{case_id}")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text
    assert "style=" not in page.text
    for client in (agent, other):
        await client.aclose()


async def test_the_development_sign_in_takes_desk_roles_only(site: DeskSite) -> None:
    async with httpx.AsyncClient(base_url=site.url) as client:
        form = await client.get("/desk/sign-in")
        cookie = form.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        for role in ("privacy", "service", "warehouse"):
            answer = await client.post("/desk/sign-in", data={
                "form_token": hidden_field(form.text, "form_token"), "person": "eve", "role": role,
            })  # fmt: skip
            assert answer.status_code == 422
        # The ledger's own actors are no person to sign in as (R23).
        for reserved in (SYSTEM_ACTOR, "ac_shop", "ann smith"):
            answer = await client.post("/desk/sign-in", data={
                "form_token": hidden_field(form.text, "form_token"), "person": reserved,
                "role": "agent",
            })  # fmt: skip
            assert answer.status_code == 422
        # Without the sign-in form's own token (another site's form): refused.
        forged = await client.post("/desk/sign-in", data={"person": "eve", "role": "manager"})
        assert forged.status_code == 403
        signed = await client.post("/desk/sign-in", data={
            "form_token": hidden_field(form.text, "form_token"), "person": "ann", "role": "agent",
        })  # fmt: skip
        session = signed.headers["set-cookie"]
        # On loopback the cookie is not `Secure` (plain http on this machine).
        assert "HttpOnly" in session
        assert "SameSite=lax" in session
        assert "Secure" not in session


@pytest.fixture
async def provider() -> AsyncIterator[StandInProvider]:
    async with oidc_provider() as running:
        yield running


@pytest.fixture
async def oidc_site(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str, provider: StandInProvider
) -> AsyncIterator[DeskSite]:
    oidc = OidcProvider(provider.url, "aftersales-desk", None)
    async with desk_site(dev_env, pool, task_queue, oidc=oidc) as served:
        yield served


async def test_oidc_sign_in_with_pkce_state_and_nonce_maps_the_id_token_to_a_person(
    oidc_site: DeskSite, provider: StandInProvider, browser: Browser
) -> None:
    page = await (await browser.new_context(viewport=DESK_VIEWPORT)).new_page()
    await page.goto(f"{oidc_site.url}/desk/queues/escalated")
    await page.get_by_role("link", name=f"Sign in with {provider.url}").click()
    # The provider signed olga in; the desk verified her ID token and opened a session.
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Escalated to my level")
    await expect(page.locator(".who")).to_contain_text("olga · supervisor")
    assert len(provider.verified_challenges) == 1  # the code came with its PKCE verifier
    # No development sign-in where an identity provider is set.
    async with httpx.AsyncClient(base_url=oidc_site.url) as client:
        dev = await client.post("/desk/sign-in", data={"person": "eve", "role": "manager"})
        assert dev.status_code == 404


async def test_oidc_refuses_a_replayed_callback_and_an_id_token_for_another_sign_in(
    oidc_site: DeskSite, provider: StandInProvider
) -> None:
    async with httpx.AsyncClient(base_url=oidc_site.url) as browser:
        started = await browser.get("/desk/sign-in/oidc", params={"return_to": "/desk"})
        assert started.status_code == 303
        async with httpx.AsyncClient() as idp:
            back = await idp.get(started.headers["location"])
        callback = back.headers["location"].removeprefix(oidc_site.url)
        # Another browser (no state cookie) cannot finish this sign-in (login CSRF).
        async with httpx.AsyncClient(base_url=oidc_site.url) as stranger:
            assert (await stranger.get(callback)).status_code == 401
        assert (await browser.get(callback)).status_code == 303
        # The same answer again: the sign-in was used once.
        assert (await browser.get(callback)).status_code == 401

    provider.wrong_nonce = True
    async with httpx.AsyncClient(base_url=oidc_site.url) as browser:
        started = await browser.get("/desk/sign-in/oidc")
        async with httpx.AsyncClient() as idp:
            back = await idp.get(started.headers["location"])
        refused = await browser.get(back.headers["location"].removeprefix(oidc_site.url))
        assert refused.status_code == 401
        assert "nonce" in refused.text
        assert "aftersales_desk=" not in refused.headers.get("set-cookie", "")


async def test_a_person_with_no_desk_role_gets_no_session(
    oidc_site: DeskSite, provider: StandInProvider
) -> None:
    provider.roles = ["privacy"]
    async with httpx.AsyncClient(base_url=oidc_site.url) as browser:
        started = await browser.get("/desk/sign-in/oidc")
        async with httpx.AsyncClient() as idp:
            back = await idp.get(started.headers["location"])
        answer = await browser.get(back.headers["location"].removeprefix(oidc_site.url))
        assert answer.status_code == 403
        assert "no desk role" in answer.text


async def test_a_queue_pages_by_cursor_and_its_count_is_every_page(site: DeskSite) -> None:
    sku = f"SKU-PAGE-{uuid.uuid4().hex[:6]}"
    cases = {await opened(site, fresh_request(sku=sku, reason=Reason.QUALITY_DEFECT))
             for _ in range(PAGE_SIZE + 1)}  # fmt: skip
    for case_id in cases:
        await reaches(site.pool, case_id, "awaiting_evidence")
    agent, _ = await signed_in_client(site, "ann", Role.AGENT)
    first = await agent.get("/desk/queues/waiting_on_customer", params={"sku": sku})
    assert f"({PAGE_SIZE + 1} cases" in first.text
    shown = re.findall(r'name="case_id" value="([^"]+)"', first.text)
    assert len(shown) == PAGE_SIZE
    following = re.search(r'<a href="([^"]+)">Next page</a>', first.text)
    assert following is not None
    second = await agent.get(html.unescape(following.group(1)))
    shown += re.findall(r'name="case_id" value="([^"]+)"', second.text)
    assert "Next page" not in second.text
    assert sorted(shown) == sorted(cases)  # every case once, none twice
    await agent.aclose()


async def test_off_loopback_the_session_cookie_is_secure(
    oidc_site: DeskSite, provider: StandInProvider
) -> None:
    """A desk reached by name (behind the TLS proxy) signs in with the identity provider
    (the development sign-in answers loopback names only) and sets `Secure` cookies."""
    oidc = OidcProvider(provider.url, "aftersales-desk", None)
    settings = DeskSettings(temporal_ui_url=TEMPORAL_UI, namespace="default", oidc=oidc)
    desk = Desk(oidc_site.gateway, oidc_site.pool, load_policy_file(DEFAULT_POLICY_FILE), settings)
    app = create_app(oidc_site.gateway, IDENTITIES.authenticator, desk=desk)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="https://desk.example") as client:
        started = await client.get("/desk/sign-in/oidc")
        assert "Secure" in started.headers["set-cookie"]  # the sign-in's state cookie
        async with httpx.AsyncClient() as idp:
            back = await idp.get(started.headers["location"])
        signed = await client.get(back.headers["location"].removeprefix("https://desk.example"))
        assert signed.status_code == 303, signed.text
        assert "Secure" in signed.headers["set-cookie"]
        assert "HttpOnly" in signed.headers["set-cookie"]
