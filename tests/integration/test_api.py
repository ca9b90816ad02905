"""The HTTP API against the dev server and PostgreSQL (in-process ASGI client)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from domain.case import CaseKind, ExchangeItem, Reason
from infra.case_messages import SIGNAL_BY_NAME, SIGNALS_OF_KIND
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eur, eventually
from tests.helpers import api_client, as_role
from tests.processes import free_port
from workflows.carrier_claim import CarrierClaim


def a_case_id(body: dict[str, Any]) -> str:
    return f"{body['kind']}-{body['order_id']}-{body['line_id']}-{body['request_id']}"


def request_json(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    request = a_request(delivered_at=now - timedelta(days=2), requested_after=timedelta(days=2),
                        **overrides)  # fmt: skip
    return request.model_dump(mode="json", exclude_none=True)


async def refused_inputs(pool: asyncpg.Pool, operation: str, sent: str) -> list[asyncpg.Record]:
    """What refused_inputs kept of a request to `operation` whose body carried `sent`."""
    return await pool.fetch(
        "SELECT source, payload, errors->>'message' AS errors FROM refused_inputs "
        "WHERE operation = $1 AND strpos(payload, $2) > 0",
        operation,
        sent,
    )


async def test_opening_twice_answers_201_then_200_with_the_same_case(
    api: httpx.AsyncClient,
) -> None:  # R2
    body = request_json()
    first = await api.post("/cases", json=body, headers=as_role("service"))
    again = await api.post("/cases", json=body, headers=as_role("service"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    assert first.json()["case_id"] == again.json()["case_id"]

    async def read() -> dict[str, Any]:
        found: dict[str, Any] = (
            await api.get(first.json()["status_url"], headers=as_role("service"))
        ).json()
        return found

    state = await eventually(read, lambda s: s.get("status") == "awaiting_ship_back")
    assert state["status"] == "awaiting_ship_back"  # R5: no review, the customer ships back


async def test_the_same_request_id_with_other_details_is_409_and_changes_nothing(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R2
    body = request_json()
    assert (await api.post("/cases", json=body, headers=as_role("service"))).status_code == 201
    other = await api.post("/cases", json=body | {"sku": "SKU-OTHER"},
                           headers=as_role("service"))  # fmt: skip
    assert other.status_code == 409
    assert "request_id" in other.json()["detail"]
    assert "R2" in other.json()["detail"]
    stored = await pool.fetchval(
        "SELECT request->>'sku' FROM case_requests WHERE case_id = $1", a_case_id(body)
    )
    assert stored == body["sku"]


async def test_a_request_stored_before_temporal_was_reached_is_started_by_the_retry(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R2, nothing lost
    body = request_json()
    # What an earlier attempt leaves when Temporal could not be reached after the write.
    await pool.execute(
        "INSERT INTO case_requests (case_id, request_id, request) VALUES ($1, $2, $3)",
        a_case_id(body),
        body["request_id"],
        body,
    )
    retry = await api.post("/cases", json=body, headers=as_role("service"))
    assert (retry.status_code, retry.json()["created"]) == (200, False)

    async def read() -> httpx.Response:
        return await api.get(retry.json()["status_url"], headers=as_role("service"))

    started = await eventually(read, lambda r: r.status_code == 200)
    assert started.json()["order_id"] == body["order_id"]


async def test_a_retry_starts_the_case_from_the_request_as_first_stored(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R1, R2
    delivered = datetime.now(UTC) - timedelta(days=9)
    asked_in_time = a_request(delivered_at=delivered, requested_after=timedelta(days=2))
    body = asked_in_time.model_dump(mode="json", exclude_none=True)
    await pool.execute(
        "INSERT INTO case_requests (case_id, request_id, request) VALUES ($1, $2, $3)",
        a_case_id(body),
        body["request_id"],
        body,
    )
    # The caller's retry, two days after the 7-day window closed, stamped with its own time.
    late = body | {"requested_at": datetime.now(UTC).isoformat()}
    retry = await api.post("/cases", json=late, headers=as_role("service"))
    assert (retry.status_code, retry.json()["created"]) == (200, False)

    async def read() -> dict[str, Any]:
        found: dict[str, Any] = (
            await api.get(retry.json()["status_url"], headers=as_role("service"))
        ).json()
        return found

    state = await eventually(read, lambda s: s.get("status") not in (None, "opened"))
    assert state["status"] == "awaiting_ship_back"
    assert datetime.fromisoformat(state["requested_at"]) == asked_in_time.requested_at


async def test_a_request_id_that_opened_a_case_cannot_open_one_of_another_kind(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R2
    returned = request_json()
    exchanged = request_json(
        order_id=returned["order_id"],
        kind=CaseKind.EXCHANGE,
        exchange_for=ExchangeItem(sku="SKU-43", price=eur(5990)),
    )
    first = await api.post("/cases", json=returned, headers=as_role("service"))
    again = await api.post("/cases", json=exchanged, headers=as_role("service"))
    assert (first.status_code, again.status_code) == (201, 409)
    assert "request_id" in again.json()["detail"]
    assert "R2" in again.json()["detail"]
    assert a_case_id(returned) in again.json()["detail"]
    kinds = await pool.fetch(
        "SELECT case_id FROM case_requests WHERE request->>'order_id' = $1", returned["order_id"]
    )
    assert [r["case_id"] for r in kinds] == [a_case_id(returned)]
    [kept] = await refused_inputs(pool, "POST /cases", exchanged["order_id"])
    assert kept["source"] == "api"
    assert '"exchange"' in kept["payload"]
    assert kept["errors"] == again.json()["detail"]


def test_the_signals_the_ways_in_send_are_the_ones_the_case_kinds_take() -> None:  # R4, R12
    assert set(SIGNAL_BY_NAME) == set().union(*SIGNALS_OF_KIND.values())
    assert "shipped_back" not in SIGNALS_OF_KIND[CaseKind.DAMAGE_CLAIM]
    assert [k for k, taken in SIGNALS_OF_KIND.items() if "intercept_requested" in taken] == [
        CaseKind.RETURN
    ]


@pytest.mark.parametrize(
    ("kind", "route", "signal", "body"),
    [
        ("damage_claim", "shipped-back", "shipped_back",
         {"event_id": "s-1", "carrier": "DHL", "tracking_number": "JD1",
          "shipped_at": "2026-11-20T10:00:00Z"}),
        ("exchange", "intercept", "intercept_requested", {"event_id": "i-1"}),
    ],
)  # fmt: skip
async def test_news_a_case_kind_does_not_take_is_409_and_kept(
    api: httpx.AsyncClient,
    pool: asyncpg.Pool,
    kind: str,
    route: str,
    signal: str,
    body: dict[str, str],
) -> None:  # R4, R12
    case_id = f"{kind}-O-{uuid.uuid4().hex[:8]}-1-r1"
    response = await api.post(f"/cases/{case_id}/{route}", json=body,
                              headers=as_role("service"))  # fmt: skip
    assert response.status_code == 409
    assert f"{signal}: a {kind} case does not take {signal}" in response.json()["detail"]
    [kept] = await refused_inputs(pool, f"POST /cases/{case_id}/{route}", body["event_id"])
    assert kept["errors"] == response.json()["detail"]


@pytest.mark.parametrize("case_id", ["return-NOPE-{}-1-r1", "survey-return-O-{}-1-r1"])
async def test_news_for_no_case_is_404_and_kept(
    api: httpx.AsyncClient, pool: asyncpg.Pool, case_id: str
) -> None:
    case_id = case_id.format(uuid.uuid4().hex[:8])
    complaint = {"event_id": "c-1", "summary": "where is my money"}
    response = await api.post(f"/cases/{case_id}/complaint", json=complaint,
                              headers=as_role("service"))  # fmt: skip
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "case_id"
    [kept] = await refused_inputs(pool, f"POST /cases/{case_id}/complaint", "where is my money")
    assert "case_id" in kept["errors"]


async def test_no_token_is_401_and_the_wrong_role_is_403(api: httpx.AsyncClient) -> None:
    assert (await api.post("/cases", json=request_json())).status_code == 401
    wrong = await api.post("/cases", json=request_json(), headers=as_role("warehouse"))
    assert wrong.status_code == 403
    assert "warehouse may not" in wrong.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"paid": {"amount_minor": -1, "currency": "EUR"}}, "amount_minor"),
        ({"paid": {"amount_minor": 10**15, "currency": "EUR"}}, "amount_minor"),
        ({"reason": "bored"}, "reason"),
        ({"delivered_at": "yesterday"}, "delivered_at"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await api.post("/cases", json=request_json() | change, headers=as_role("service"))
    assert response.status_code == 422
    assert field in response.text


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        ('{"order_id": "ORDER", "reason": "bored"}', "reason: Input should be"),
        # A lone surrogate cannot be encoded in UTF-8; the answer quotes no input.
        ('{"order_id": "ORDER", "sku": "\\ud800"}', "sku: Input should be a valid str"),
        # Python's JSON parser takes NaN, which JSON has no word for: refused as not JSON.
        ('{"order_id": "ORDER", "quantity": NaN}', "body: not valid JSON: NaN is not a JSON"),
        # PostgreSQL text cannot hold NUL: it is kept escaped.
        ('{"order_id": "ORDER", "sku": "\x00"}', "body: not valid JSON"),
    ],
)
async def test_bad_input_is_kept_with_the_field_it_was_refused_for(
    api: httpx.AsyncClient, pool: asyncpg.Pool, sent: str, field: str
) -> None:
    order = f"O-{uuid.uuid4().hex[:10]}"
    body = sent.replace("ORDER", order)
    headers = as_role("service") | {"Content-Type": "application/json"}
    response = await api.post("/cases", content=body, headers=headers)
    assert response.status_code == 422
    [kept] = await refused_inputs(pool, "POST /cases", order)
    assert (kept["source"], kept["payload"]) == ("api", body.replace("\x00", "\\x00"))
    assert field in kept["errors"]


async def test_a_refusal_that_cannot_be_kept_is_503_so_it_is_sent_again(
    dev_env: WorkflowEnvironment,
) -> None:
    # A pool that connects on first use, to a port where no PostgreSQL listens.
    down = await asyncpg.create_pool(f"postgresql://127.0.0.1:{free_port()}/none", min_size=0)
    gateway = CaseGateway(dev_env.client, down, "unused", load_policy_file(DEFAULT_POLICY_FILE))
    async with api_client(gateway) as api:
        response = await api.post(
            "/cases", json=request_json() | {"reason": "bored"}, headers=as_role("service")
        )
    await down.close()
    assert response.status_code == 503
    assert "PostgreSQL" in response.json()["detail"]


async def test_an_oversized_body_is_413(api: httpx.AsyncClient) -> None:
    body = request_json() | {"padding": "x" * 300_000}
    response = await api.post("/cases", json=body, headers=as_role("service"))
    assert response.status_code == 413


async def test_scans_in_a_batch_are_accepted_and_an_unknown_barcode_is_404_and_kept(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R26
    opened = (await api.post("/cases", json=request_json(), headers=as_role("service"))).json()
    now = datetime.now(UTC).isoformat()
    dock = {"barcode": opened["case_id"], "scan_id": f"s-{uuid.uuid4().hex[:6]}",
            "event": "parcel_received", "station": "DOCK-1", "scanned_at": now}  # fmt: skip
    accepted = await api.post("/scans", json={"scans": [dock, dock]},
                              headers=as_role("warehouse"))  # fmt: skip
    lost = dock | {"barcode": "return-NOPE-1-r1", "scan_id": f"s-{uuid.uuid4().hex[:6]}"}
    refused = await api.post("/scans", json={"scans": [lost]}, headers=as_role("warehouse"))
    assert accepted.status_code == 202
    assert [r["accepted"] for r in accepted.json()] == [True, True]
    assert refused.status_code == 404
    assert "matches no open case" in refused.text
    kept = await pool.fetchval(
        "SELECT count(*) FROM unmatched_scans WHERE scan_id = $1", lost["scan_id"]
    )
    assert kept == 1


async def test_an_agent_decides_and_the_ledger_names_the_agent(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R10, R23
    body = request_json(reason=Reason.QUALITY_DEFECT)
    opened = (await api.post("/cases", json=body, headers=as_role("service"))).json()
    case_id = opened["case_id"]
    evidence = {"event_id": "ev-1", "photos": ["https://photos.example/1.jpg"]}
    sent = await api.post(f"/cases/{case_id}/evidence", json=evidence,
                          headers=as_role("service"))  # fmt: skip
    assert sent.status_code == 202
    decision = {"action_id": "d-1", "approve": True}
    decided = await _when_under_review(api, case_id, decision)
    assert decided.status_code == 200
    assert decided.json()["status"] == "awaiting_ship_back"
    row = await pool.fetchrow(
        "SELECT actor, role FROM case_events WHERE case_id = $1 AND action = 'approved'",
        case_id,
    )
    assert row is not None
    assert (row["actor"], row["role"]) == ("agent-ann", "agent")


async def _when_under_review(
    api: httpx.AsyncClient, case_id: str, decision: dict[str, Any]
) -> httpx.Response:
    await eventually(
        lambda: api.get(f"/cases/{case_id}", headers=as_role("agent")),
        lambda r: r.json()["status"] == "under_review",
    )
    return await api.post(f"/cases/{case_id}/decision", json=decision,
                          headers=as_role("agent", "agent-ann"))  # fmt: skip


async def test_a_refused_decision_is_409_with_the_validators_reason(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R17
    body = request_json(reason=Reason.QUALITY_DEFECT, paid_minor=20_000)
    case_id = (await api.post("/cases", json=body, headers=as_role("service"))).json()["case_id"]
    offer = {"action_id": "c-1", "amount": {"amount_minor": 9_000, "currency": "EUR"},
             "reason": "scratched casing"}  # fmt: skip
    response = await api.post(f"/cases/{case_id}/compensation", json=offer,
                              headers=as_role("agent", "agent-ann"))  # fmt: skip
    assert response.status_code == 409
    assert "R17" in response.json()["detail"]
    [kept] = await refused_inputs(pool, f"POST /cases/{case_id}/compensation", "c-1")
    assert kept["errors"] == response.json()["detail"]


async def test_r21_a_payment_resolution_without_a_declined_payment_is_409_and_a_bad_one_422(
    api: httpx.AsyncClient,
) -> None:
    body = request_json()
    case_id = (await api.post("/cases", json=body, headers=as_role("service"))).json()["case_id"]
    retry = {"action_id": "p-1", "resolution": "retry", "reason": "the card works again"}
    not_now = await api.post(f"/cases/{case_id}/payment-resolution", json=retry,
                             headers=as_role("supervisor", "sue"))  # fmt: skip
    unproven = {"action_id": "p-2", "resolution": "settled_elsewhere", "reason": "by transfer"}
    bad = await api.post(f"/cases/{case_id}/payment-resolution", json=unproven,
                         headers=as_role("supervisor", "sue"))  # fmt: skip
    assert not_now.status_code == 409
    assert "R21" in not_now.json()["detail"]
    assert "no declined payment" in not_now.json()["detail"]
    assert bad.status_code == 422
    assert "reference" in str(bad.json()["detail"])


async def test_reading_an_unknown_case_is_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/cases/return-NOPE-9-r9", headers=as_role("agent"))
    assert response.status_code == 404
    assert "no case" in response.json()["detail"]


async def test_the_customer_may_withdraw_before_the_parcel_reaches_us(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    opened = (await api.post("/cases", json=request_json(), headers=as_role("service"))).json()
    case_id = opened["case_id"]
    withdrawal = {"event_id": "w-1", "reason": "found it at a neighbour's"}
    sent = await api.post(
        f"/cases/{case_id}/withdrawal", json=withdrawal, headers=as_role("service")
    )
    assert sent.status_code == 202
    row = await eventually(
        lambda: pool.fetchrow(
            "SELECT status_after AS status, actor FROM case_events "
            "WHERE case_id = $1 AND action = 'withdrawn'",
            case_id,
        ),
        lambda found: found is not None,
    )
    assert row is not None
    assert (row["status"], row["actor"]) == ("withdrawn", "cust-7")


async def test_a_carrier_answer_reaches_its_claim_and_one_for_no_claim_is_404_and_kept(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:  # R15, R26
    body = request_json(kind="damage_claim", reason="lost_in_transit", carrier="DHL")
    opened = (await api.post("/cases", json=body, headers=as_role("service"))).json()

    async def read() -> dict[str, Any]:
        # The claim against the carrier is the merchant's business: staff see its id.
        found: dict[str, Any] = (
            await api.get(opened["status_url"], headers=as_role("agent"))
        ).json()
        return found

    await eventually(read, lambda s: s.get("status") == "under_review")
    decision = {"action_id": "d-1", "approve": True, "root_cause": "handling"}
    approved = await api.post(f"/cases/{opened['case_id']}/decision", json=decision,
                              headers=as_role("agent", "agent-ann"))  # fmt: skip
    assert approved.status_code == 200, approved.text
    case = await eventually(read, lambda s: s.get("carrier_claim_id") is not None)
    claim_id = case["carrier_claim_id"]
    answer = {"response_id": "dhl-1", "accepted": True,
              "recovered": {"amount_minor": 4_000, "currency": "EUR"}}  # fmt: skip
    sent = await api.post(f"/claims/{claim_id}/carrier-response", json=answer,
                          headers=as_role("carrier"))  # fmt: skip
    assert sent.status_code == 202, sent.text
    claim = dev_env.client.get_workflow_handle_for(CarrierClaim.run, claim_id)
    state = await eventually(
        lambda: claim.query(CarrierClaim.state), lambda s: s.response is not None
    )
    assert state.response is not None
    assert state.response.response_id == "dhl-1"

    # R26: a running claim's id is no return label; a scan of it is kept for a person, not
    # signalled to a workflow that would never read it.
    misread = {"barcode": claim_id, "scan_id": f"s-{uuid.uuid4().hex[:6]}",
               "event": "parcel_received", "station": "DOCK-1",
               "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
    scanned = await api.post("/scans", json={"scans": [misread]}, headers=as_role("warehouse"))
    assert scanned.status_code == 404
    unmatched = "SELECT barcode FROM unmatched_scans WHERE scan_id = $1"
    assert await pool.fetchval(unmatched, misread["scan_id"]) == claim_id

    nowhere = f"claim-damage_claim-{uuid.uuid4().hex[:8]}-1-r1"
    lost = await api.post(f"/claims/{nowhere}/carrier-response", json=answer,
                          headers=as_role("carrier"))  # fmt: skip
    assert lost.status_code == 404
    assert "R15" in lost.json()["detail"]
    kept = await pool.fetchval(
        "SELECT payload FROM refused_inputs WHERE operation = $1", f"carrier_response {nowhere}"
    )
    assert kept is not None
    assert "dhl-1" in kept


async def test_a_survey_or_claim_id_read_or_decided_as_a_case_is_404(
    api: httpx.AsyncClient,
) -> None:
    """Before: 500 (the query or update reached a workflow that has none of a case's)."""
    for other in ("survey-return-O-1-1-r1", "claim-damage_claim-O-1-1-r1"):
        read = await api.get(f"/cases/{other}", headers=as_role("agent"))
        ruled = await api.post(f"/cases/{other}/decision", headers=as_role("agent"),
                               json={"action_id": "d-1", "approve": True})  # fmt: skip
        assert (read.status_code, ruled.status_code) == (404, 404), (read.text, ruled.text)
        assert read.json()["errors"][0]["field"] == "case_id"


async def test_a_decision_a_case_kind_does_not_take_is_409_naming_what_it_takes(
    api: httpx.AsyncClient,
) -> None:
    """Before: 409 with the SDK's words ("Update handler for 'choose_remedy' expected but
    not found, and there is no dynamic handler ...")."""
    body = request_json()
    opened = await api.post("/cases", json=body, headers=as_role("service"))
    case_id = opened.json()["case_id"]
    remedy = await api.post(f"/cases/{case_id}/remedy", headers=as_role("service"),
                            json={"choice_id": "r-1", "remedy": "replacement"})  # fmt: skip
    assert remedy.status_code == 409, remedy.text
    detail = remedy.json()["detail"]
    assert "a return case does not take choose_remedy; it takes" in detail
    assert "handler" not in detail
