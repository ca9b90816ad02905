"""What waits for a person, through the real API with a real worker and PostgreSQL: an
unmatched scan attached to its case (R26: delivered once, the case moves on) or
dismissed, refused input marked handled, each with who and why; internal notes in the
case's ledger; a tracking number found by its keyed hash; and the roles each route
refuses."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from domain.case import Reason
from domain.ledger import LedgerAction
from tests.conftest import a_request, eventually
from tests.helpers import as_role


def opening(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    request = a_request(delivered_at=now - timedelta(days=2), requested_after=timedelta(days=1),
                        **overrides)  # fmt: skip
    return request.model_dump(mode="json", exclude_none=True)


async def status_is(api: httpx.AsyncClient, case_id: str, status: str) -> dict[str, Any]:
    async def read() -> httpx.Response:
        return await api.get(f"/cases/{case_id}", headers=as_role("agent"))

    answer = await eventually(read, lambda r: r.json().get("status") == status)
    assert answer.json()["status"] == status, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def a_case_in_transit(api: httpx.AsyncClient, tracking_number: str = "JD1") -> str:
    """A changed-mind return whose parcel is on its way back (R12)."""
    opened = await api.post("/cases", json=opening(), headers=as_role("service"))
    case_id: str = opened.json()["case_id"]
    await status_is(api, case_id, "awaiting_ship_back")
    shipped = {"event_id": "s-1", "carrier": "DHL", "tracking_number": tracking_number,
               "shipped_at": datetime.now(UTC).isoformat()}  # fmt: skip
    sent = await api.post(f"/cases/{case_id}/shipped-back", json=shipped,
                          headers=as_role("service"))  # fmt: skip
    assert sent.status_code == 202, sent.text
    await status_is(api, case_id, "in_return_transit")
    return case_id


async def an_unmatched_scan(api: httpx.AsyncClient) -> str:
    """A dock scan whose label was misread: kept for a person (R26)."""
    scan_id = f"scan-{uuid.uuid4().hex[:8]}"
    scan = {"barcode": f"return-MISREAD{uuid.uuid4().hex[:6]}-1-r1", "scan_id": scan_id,
            "event": "parcel_received", "station": "DOCK-1",
            "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
    kept = await api.post("/scans", json={"scans": [scan]}, headers=as_role("warehouse"))
    assert kept.status_code == 404
    return scan_id


async def unresolved_scans(api: httpx.AsyncClient, query: str = "") -> set[str]:
    found: set[str] = set()
    url = f"/unmatched-scans?limit=100{query}"
    while True:
        page = (await api.get(url, headers=as_role("agent"))).json()
        found |= {s["scan_id"] for s in page["items"]}
        if page["next_cursor"] is None:
            return found
        url = f"/unmatched-scans?limit=100{query}&cursor={page['next_cursor']}"


async def test_r26_an_attached_scan_reaches_its_case_once_and_the_case_moves_on(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    case_id = await a_case_in_transit(api)
    other_case = await a_case_in_transit(api)
    scan_id = await an_unmatched_scan(api)
    assert scan_id in await unresolved_scans(api)
    attach = {"case_id": case_id, "reason": "label torn, order number read off the invoice"}
    nowhere = await api.post(f"/unmatched-scans/{scan_id}/attachment",
                             json=attach | {"case_id": "return-NOWHERE-1-r1"},
                             headers=as_role("agent", "agent-ann"))  # fmt: skip

    first = await api.post(f"/unmatched-scans/{scan_id}/attachment", json=attach,
                           headers=as_role("agent", "agent-ann"))  # fmt: skip
    again = await api.post(f"/unmatched-scans/{scan_id}/attachment", json=attach,
                           headers=as_role("agent", "agent-ann"))  # fmt: skip
    elsewhere = await api.post(f"/unmatched-scans/{scan_id}/attachment",
                               json=attach | {"case_id": other_case},
                               headers=as_role("supervisor", "sue"))  # fmt: skip
    dismissed = await api.post(f"/unmatched-scans/{scan_id}/dismissal",
                               json={"reason": "a test parcel"},
                               headers=as_role("supervisor", "sue"))  # fmt: skip

    assert nowhere.status_code == 404
    assert "stays kept" in nowhere.json()["detail"]
    assert first.status_code == 200, first.text
    resolved = first.json()
    assert (resolved["resolution"], resolved["attached_case_id"]) == ("attached", case_id)
    assert (resolved["resolved_by"], resolved["resolved_role"]) == ("agent-ann", "agent")
    assert resolved["resolution_reason"] == attach["reason"]
    assert resolved["resolved_at"] is not None
    assert again.status_code == 200
    assert again.json() == resolved
    for refused in (elsewhere, dismissed):
        assert refused.status_code == 409, refused.text
        assert "already attached" in refused.json()["detail"]
        assert refused.json()["errors"][0]["rule"] == "R26"
    moved = await status_is(api, case_id, "awaiting_inspection")
    assert moved["received_scan_id"] == scan_id
    events = await pool.fetch(
        "SELECT action FROM case_events WHERE case_id = $1 AND action = $2",
        case_id,
        LedgerAction.PARCEL_RECEIVED,
    )
    assert len(events) == 1  # delivered once, for all three submits
    assert await pool.fetchval("SELECT case_id FROM scans WHERE scan_id = $1", scan_id) == case_id
    assert scan_id not in await unresolved_scans(api)
    assert scan_id in await unresolved_scans(api, "&resolved=true")
    await status_is(api, other_case, "in_return_transit")  # untouched


async def test_r26_a_scan_dismissed_with_a_reason_is_recorded_and_leaves_the_list(
    api: httpx.AsyncClient,
) -> None:
    scan_id = await an_unmatched_scan(api)
    why = {"reason": "a test parcel from the carrier's training day"}
    dismissed = await api.post(f"/unmatched-scans/{scan_id}/dismissal", json=why,
                               headers=as_role("supervisor", "sue"))  # fmt: skip
    again = await api.post(f"/unmatched-scans/{scan_id}/dismissal", json=why,
                           headers=as_role("supervisor", "sue"))  # fmt: skip
    otherwise = await api.post(f"/unmatched-scans/{scan_id}/dismissal",
                               json={"reason": "another reason"},
                               headers=as_role("manager", "max"))  # fmt: skip
    unknown = await api.post("/unmatched-scans/no-such-scan/dismissal", json=why,
                             headers=as_role("agent"))  # fmt: skip
    assert dismissed.status_code == 200, dismissed.text
    row = dismissed.json()
    assert (row["resolution"], row["resolved_by"], row["resolved_role"]) == (
        "dismissed", "sue", "supervisor",
    )  # fmt: skip
    assert row["resolution_reason"] == why["reason"]
    assert row["attached_case_id"] is None
    assert again.json() == row
    assert otherwise.status_code == 409
    assert "already dismissed by sue (supervisor)" in otherwise.json()["detail"]
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["field"] == "scan_id"
    assert scan_id not in await unresolved_scans(api)


async def test_refused_input_is_marked_handled_with_who_and_why(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    marker = f"order-{uuid.uuid4().hex[:8]}"
    bad = await api.post("/cases", json=opening(order_id=marker) | {"paid": "lots"},
                         headers=as_role("service"))  # fmt: skip
    assert bad.status_code == 422
    input_id = await pool.fetchval(
        "SELECT id FROM refused_inputs WHERE strpos(payload, $1) > 0", marker
    )
    why = {"reason": "the shop's client sent a string amount; fixed in their release 4.2"}

    async def listed(query: str = "") -> list[int]:
        page = await api.get(f"/refused-inputs?limit=500{query}", headers=as_role("manager"))
        assert page.status_code == 200, page.text
        return [item["id"] for item in page.json()["items"]]

    assert input_id in await listed()
    handled = await api.post(f"/refused-inputs/{input_id}/handling", json=why,
                             headers=as_role("manager", "max"))  # fmt: skip
    again = await api.post(f"/refused-inputs/{input_id}/handling", json=why,
                           headers=as_role("manager", "max"))  # fmt: skip
    otherwise = await api.post(f"/refused-inputs/{input_id}/handling",
                               json={"reason": "something else"},
                               headers=as_role("supervisor", "sue"))  # fmt: skip
    unknown = await api.post("/refused-inputs/999999999/handling", json=why,
                             headers=as_role("manager"))  # fmt: skip
    assert handled.status_code == 200, handled.text
    row = handled.json()
    assert (row["handled_by"], row["handled_role"], row["handled_reason"]) == (
        "max", "manager", why["reason"],
    )  # fmt: skip
    assert marker in row["payload"]
    assert again.json() == row
    assert otherwise.status_code == 409
    assert "already marked handled by max (manager)" in otherwise.json()["detail"]
    assert unknown.status_code == 404
    assert input_id not in await listed()
    assert input_id in await listed("&handled=true")


async def test_notes_are_in_the_ledger_under_their_author_once(
    api: httpx.AsyncClient,
) -> None:  # R23
    opened = await api.post("/cases", json=opening(reason=Reason.QUALITY_DEFECT),
                            headers=as_role("service"))  # fmt: skip
    case_id = opened.json()["case_id"]
    await status_is(api, case_id, "awaiting_evidence")
    note = {"note_id": "n-1", "body": "Customer called: the crack is on the left hinge."}
    written = await api.post(f"/cases/{case_id}/notes", json=note,
                             headers=as_role("agent", "agent-ann"))  # fmt: skip
    again = await api.post(f"/cases/{case_id}/notes", json=note,
                           headers=as_role("agent", "agent-ann"))  # fmt: skip
    reused = await api.post(f"/cases/{case_id}/notes", json=note | {"body": "other words"},
                            headers=as_role("agent", "agent-ann"))  # fmt: skip
    nowhere = await api.post("/cases/return-NOWHERE-1-r1/notes", json=note,
                             headers=as_role("agent"))  # fmt: skip
    trail = await api.get(f"/cases/{case_id}/ledger", headers=as_role("supervisor"))
    assert written.status_code == 201, written.text
    assert again.status_code == 201
    assert again.json() == written.json()
    assert reused.status_code == 409
    assert reused.json()["errors"][0]["field"] == "note_id"
    assert nowhere.status_code == 404
    [recorded] = trail.json()["notes"]
    assert (recorded["author"], recorded["role"], recorded["body"]) == (
        "agent-ann", "agent", note["body"],
    )  # fmt: skip
    assert recorded["redacted_at"] is None
    assert trail.json()["events"][0]["action"] == LedgerAction.CASE_OPENED


async def test_a_tracking_number_is_found_by_its_keyed_hash_and_never_stored(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    case_id = await a_case_in_transit(api, tracking_number=f"JD 0042-{tag}")
    found = await api.get(f"/cases?search=jd0042{tag.lower()}", headers=as_role("agent"))
    in_queue = await api.get(f"/queues/waiting_on_customer?search=JD-0042-{tag}",
                             headers=as_role("agent"))  # fmt: skip
    assert [r["case_id"] for r in found.json()] == [case_id]
    assert in_queue.json()["rows"] == []  # narrowed: in transit waits on no customer
    rows = await pool.fetch(
        "SELECT t::text AS row FROM case_tracking_numbers t WHERE case_id = $1", case_id
    )
    assert len(rows) == 1
    assert tag not in rows[0]["row"]
    assert tag.encode().hex() not in rows[0]["row"]


ATTACH = {"case_id": "return-O-1-1-r1", "reason": "the label was torn"}
REASON = {"reason": "looked into it"}
NOTE = {"note_id": "n-1", "body": "a note"}
ROUTES: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("GET", "/cases", None, {"service", "warehouse", "carrier", "privacy"}),
    ("GET", "/queues", None, {"service", "warehouse", "carrier", "privacy"}),
    ("GET", "/queues/late", None, {"service", "warehouse", "carrier", "privacy"}),
    ("GET", "/unmatched-scans", None, {"arbiter", "service", "warehouse", "privacy"}),
    ("POST", "/unmatched-scans/s-1/attachment", ATTACH,
     {"arbiter", "service", "warehouse", "privacy"}),
    ("POST", "/unmatched-scans/s-1/dismissal", REASON,
     {"arbiter", "service", "warehouse", "privacy"}),
    ("GET", "/refused-inputs", None, {"agent", "arbiter", "service", "warehouse", "privacy"}),
    ("POST", "/refused-inputs/1/handling", REASON,
     {"agent", "arbiter", "service", "warehouse", "privacy"}),
    ("POST", "/cases/return-O-1-1-r1/notes", NOTE,
     {"arbiter", "service", "warehouse", "carrier", "privacy"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "body", "refused"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
async def test_each_route_refuses_the_roles_it_does_not_allow(
    api: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None, refused: set[str]
) -> None:
    for role in refused:
        answer = await api.request(method, path, json=body, headers=as_role(role))
        assert answer.status_code == 403, (role, answer.text)
        assert answer.json()["errors"][0]["field"] == "role"
    unauthenticated = await api.request(method, path, json=body)
    assert unauthenticated.status_code == 401


async def test_kept_lists_page_by_cursor_and_refuse_a_forged_one(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R26
    made = {await an_unmatched_scan(api) for _ in range(3)}
    seen: list[str] = []
    url = "/unmatched-scans?limit=2&resolved=true"
    while url:
        page = (await api.get(url, headers=as_role("agent"))).json()
        seen += [s["scan_id"] for s in page["items"]]
        cursor = page["next_cursor"]
        url = f"/unmatched-scans?limit=2&resolved=true&cursor={cursor}" if cursor else ""
    assert len(seen) == len(set(seen))
    assert made <= set(seen)
    assert len(seen) == await pool.fetchval("SELECT count(*) FROM unmatched_scans")
    first = (await api.get("/unmatched-scans?limit=1&resolved=true",
                           headers=as_role("agent"))).json()  # fmt: skip
    scan_cursor = first["next_cursor"]
    assert scan_cursor is not None
    nul = base64.urlsafe_b64encode(b'["2026-12-01T10:00:00Z", "s\\u0000"]').decode()
    for path, token, headers in (
        ("/unmatched-scans", "bm90LWEtY3Vyc29y", as_role("agent")),
        ("/unmatched-scans", nul, as_role("agent")),
        # A scan's cursor names a scan id, not a refused input's number.
        ("/refused-inputs", scan_cursor, as_role("manager")),
    ):
        refused = await api.get(f"{path}?cursor={token}", headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "query.cursor"
