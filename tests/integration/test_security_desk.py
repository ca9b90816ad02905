"""Attacks on what issue 17 added: the desk's development sign-in reached through a name
rebound to loopback, odd input to the desk's routes, the run codec's refusals, and the
signatures of requests to the merchant's own services (replayed with another key)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from api.app import create_app
from api.codec import RunCodec
from domain.case import Role
from infra.gateway import CaseGateway
from infra.outside.signing import IDEMPOTENCY_HEADER, BadSignature, signed_headers, verify
from infra.settings import DEFAULT_POLICY_FILE
from tests.desk_site import DeskSite, hidden_field, signed_in_client
from tests.helpers import api_client, as_role
from tests.identities import IDENTITIES
from tests.integration.test_privacy import Markers, a_refunded_case, where_found

# A page on another site whose name the attacker re-points at 127.0.0.1 (DNS rebinding):
# the browser reaches the developer's API from loopback but keeps the page's Host.
REBOUND = {"Host": "evil.example:8000"}
_REASON = "logged twice at the dock by mistake"


async def test_the_development_sign_in_refuses_a_name_rebound_to_loopback(
    site: DeskSite,
) -> None:
    async with httpx.AsyncClient(base_url=site.url) as client:
        rebound_form = await client.get("/desk/sign-in", headers=REBOUND)
        # Even holding a form token of a loopback-named page, the rebound page's post
        # opens no session (its script would then drive the desk as a manager).
        local_form = await client.get("/desk/sign-in")
        signed = await client.post("/desk/sign-in", headers=REBOUND, data={
            "form_token": hidden_field(local_form.text, "form_token"), "person": "mallory",
            "role": Role.MANAGER.value,
        })  # fmt: skip
    assert rebound_form.status_code == 403
    assert "form_token" not in rebound_form.text
    assert "set-cookie" not in rebound_form.headers
    assert signed.status_code == 404
    assert "aftersales_desk=" not in signed.headers.get("set-cookie", "")
    assert (
        await site.pool.fetchval("SELECT count(*) FROM desk_sessions WHERE actor = 'mallory'") == 0
    )


async def test_odd_input_to_the_desks_routes_answers_4xx_never_500(site: DeskSite) -> None:
    supervisor, csrf = await signed_in_client(site, "sam", Role.SUPERVISOR)
    reads = [
        "/desk/unmatched-scans?cursor=not-a-cursor",
        "/desk/refused-inputs?cursor=not-a-cursor",
        "/desk/queues/late?q=%00",
        "/desk/queues/late?carrier=DH%00L",
        "/desk/queues/late.csv?q=%00",
        "/desk/queues/late.csv?cursor=not-a-cursor",
    ]
    forms = [
        ("/desk/unmatched-scans/s%00x/dismiss", {"reason": _REASON}),
        ("/desk/unmatched-scans/s%00x/attach", {"reason": _REASON, "case_id": "RC-0000001"}),
        ("/desk/queues/late/assign", {"agent": "ann", "case_id": "RC-\x00"}),
        ("/desk/queues/late/assign", {"agent": "ann", "case_id": "x" * 5000}),
        ("/desk/queues/late/assign", {"agent": "ann", "case_id": "../../cases"}),
    ]
    answers = [(path, await supervisor.get(path)) for path in reads]
    for path, fields in forms:
        answers.append((path, await supervisor.post(path, data=fields | {"csrf_token": csrf})))
    await supervisor.aclose()
    failed = [(path, answer.status_code) for path, answer in answers if answer.status_code >= 500]
    assert not failed, failed
    assert all(answer.status_code in (403, 409, 422) or answer.is_redirect for _, answer in answers)
    # A bulk assignment names what it could not take, never echoing the raw id back.
    assert all("\x00" not in answer.text for _, answer in answers)


async def test_a_desk_form_refused_is_a_page_and_not_kept_as_refused_input(
    site: DeskSite,
) -> None:
    """Its body holds the session's CSRF token: kept among refused input, it is read by
    other staff (supervisors, managers) and counted against the person's refusal budget."""
    manager, csrf = await signed_in_client(site, "meg", Role.MANAGER)
    answers = [
        await manager.post(path, data={"csrf_token": csrf, "reason": _REASON, "action_id": "a-1"})
        for path in ("/desk/refused-inputs/not-a-number/handled", "/desk/cases/NOT A CASE/approve")
    ]
    await manager.aclose()
    for answer in answers:
        assert answer.status_code == 422
        assert "text/html" in answer.headers["content-type"]
    kept = "SELECT count(*) FROM refused_inputs WHERE payload::text LIKE '%' || $1 || '%'"
    assert await site.pool.fetchval(kept, csrf) == 0


async def test_the_run_codecs_refusals_echo_neither_host_nor_peer(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:
    run_codec = RunCodec.new()
    gateway = CaseGateway(dev_env.client, pool, "unused", load_policy_file(DEFAULT_POLICY_FILE))
    app = create_app(gateway, IDENTITIES.authenticator, run_codec=run_codec)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://evil-name.example") as api:
        refused = await api.post(f"{run_codec.endpoint('')}/decode", json={"payloads": []})
    assert refused.status_code == 403
    assert "evil-name" not in refused.text  # docs/contract.md: no input echoed


SECRET = b"shared-with-the-payment-service"


def test_a_request_replayed_under_another_idempotency_key_is_refused() -> None:
    """R21: a captured refund request replayed inside the window with a fresh key would
    pay again; the key is signed with the rest, so the receiver refuses the copy."""
    now = datetime.now(UTC)
    body = b'{"case_id":"RC-1","amount_minor":9000,"currency":"EUR"}'
    headers = signed_headers(SECRET, "POST", "/refunds", body, now, idempotency_key="RC-1:refund:1")
    assert headers[IDEMPOTENCY_HEADER] == "RC-1:refund:1"
    verify(SECRET, "POST", "/refunds", headers, body, now)  # the original is taken
    for replayed in (headers | {IDEMPOTENCY_HEADER: "RC-1:refund:2"},
                     {k: v for k, v in headers.items() if k != IDEMPOTENCY_HEADER}):  # fmt: skip
        with pytest.raises(BadSignature):
            verify(SECRET, "POST", "/refunds", replayed, body, now)


@pytest.mark.parametrize(
    "odd",
    [{"X-Aftersales-Timestamp": "²"}, {"X-Aftersales-Signature": "v1=é"}],
)
def test_the_receivers_check_refuses_odd_headers_as_bad_signatures(odd: dict[str, str]) -> None:
    now = datetime.now(UTC)
    headers = signed_headers(SECRET, "GET", "/stock/SKU-1", b"", now) | odd
    with pytest.raises(BadSignature):
        verify(SECRET, "GET", "/stock/SKU-1", headers, b"", now)


@pytest.mark.parametrize(
    "query",
    ["search=RC%00", "carrier=DH%00L", "sku=SKU%00", "assignee=ann%00", "cursor=%00"],
)
async def test_a_nul_in_a_case_list_filter_answers_422(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, query: str
) -> None:
    gateway = CaseGateway(dev_env.client, pool, "unused", load_policy_file(DEFAULT_POLICY_FILE))
    async with api_client(gateway) as api:
        for path in ("/cases", "/queues/late"):
            answer = await api.get(f"{path}?{query}", headers=as_role(Role.SUPERVISOR))
            assert answer.status_code == 422, (path, query, answer.text[:300])


async def test_an_erased_case_takes_no_new_note(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:
    """docs/privacy.md: erasure removes a case's free text once; a note written after it
    (free text that may name the customer) was taken (201) and kept in plaintext, with no
    erasure left to come. The case answers 410 as to any other message."""
    markers = Markers.fresh()
    case_id = await a_refunded_case(api, dev_env, markers)
    erased = await api.post(f"/customers/{markers.customer_id}/erasure",
                            headers=as_role("privacy", "dpo-dana"))  # fmt: skip
    assert erased.status_code == 200, erased.text
    note = {"note_id": "n-after", "body": f"called back, {markers.staff_note}"}
    written = await api.post(f"/cases/{case_id}/notes", json=note,
                             headers=as_role("agent", "agent-ann"))  # fmt: skip
    assert written.status_code == 410, written.text
    assert await where_found(pool, markers) == {}


async def test_a_bulk_assignment_with_many_refusals_still_lands_on_its_queue(
    site: DeskSite,
) -> None:
    """Each refusal was spelled out in the redirect's `done` (600+ characters for ten
    unknown cases): the queue it returned to refused its own `done` (at most 500), so
    the person saw a 422 page after the work was done, not what happened."""
    supervisor, csrf = await signed_in_client(site, "sam", Role.SUPERVISOR)
    unknown = [f"return-O-{n:04d}-1-r1" for n in range(20)]
    fields = {"csrf_token": csrf, "action_id": "bulk-1", "agent": "ann", "case_id": unknown}
    answer = await supervisor.post("/desk/queues/late/assign", data=fields)
    assert answer.status_code == 303
    assert len(answer.headers["location"]) < 1000
    landed = await supervisor.get(answer.headers["location"])
    await supervisor.aclose()
    assert landed.status_code == 200, landed.text[:300]
    assert "assigned 0 of 20 to ann" in landed.text
    assert "20 refused" in landed.text
