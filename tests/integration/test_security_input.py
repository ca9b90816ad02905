"""Issue 9, item 4: every bad input gets a clear 4xx in the API's one error shape, and what
is accepted is applied as sent. One test per attack; the real dev server and PostgreSQL
behind the in-process API."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from api.app import create_app
from api.middleware import MAX_BODY_BYTES
from api.refusal_budget import RefusalBudget
from domain.case import Reason, Strict
from domain.ledger import LedgerAction
from domain.money import Money
from domain.policy import R1JudgedBy, check_return_window
from domain.policy_settings import PolicySettings
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eventually
from tests.helpers import as_role, events
from tests.identities import IDENTITIES

SERVICE = as_role("service")


def opening(**overrides: Any) -> dict[str, Any]:
    """A changed-mind return delivered two days ago, asked for now."""
    now = datetime.now(UTC)
    request = a_request(delivered_at=now - timedelta(days=2), requested_after=timedelta(days=2),
                        **overrides)  # fmt: skip
    return request.model_dump(mode="json", exclude_none=True)


def case_id_of(body: dict[str, Any]) -> str:
    return f"{body['kind']}-{body['order_id']}-{body['line_id']}-{body['request_id']}"


async def kept(pool: asyncpg.Pool, marker: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT operation, length(payload) AS size, errors->>'message' AS errors "
        "FROM refused_inputs WHERE strpos(payload, $1) > 0",
        marker,
    )


def assert_error_shape(response: httpx.Response) -> list[dict[str, Any]]:
    """The one error shape, naming no Python class; its items."""
    body = response.json()
    assert set(body) >= {"detail", "errors"}, body
    assert isinstance(body["detail"], str), body
    assert body["errors"], body
    for item in body["errors"]:
        assert set(item) == {"field", "rule", "message"}, item
    assert not re.search(r"\b\w*(Error|Exception|Limit)\b: ", response.text), response.text
    return list(body["errors"])


async def test_a_chunked_10_mb_body_is_413_read_no_further_than_the_limit_and_not_kept(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    marker = f"chunked-{uuid.uuid4().hex}"
    chunk = 64 * 1024
    sent_chunks = 0

    async def ten_megabytes() -> AsyncIterator[bytes]:
        nonlocal sent_chunks
        yield json.dumps({"order_id": marker, "sku": ""})[:-2].encode()
        for _ in range(10 * 1024 * 1024 // chunk):
            sent_chunks += 1
            yield b"x" * chunk
        yield b'"}'

    # A generator has no length: httpx sends it chunked, with no Content-Length.
    response = await api.post("/cases", content=ten_megabytes(), headers=SERVICE)
    assert response.status_code == 413
    assert "Content-Length" not in response.request.headers
    [error] = assert_error_shape(response)
    assert error["field"] == "body"
    assert len(response.content) < 1_000  # nothing of the body echoed
    # Refused at the chunk that crossed the limit: the rest was never read.
    assert sent_chunks <= MAX_BODY_BYTES // chunk + 1
    assert await kept(pool, marker) == []


async def test_a_refused_body_is_not_echoed_and_kept_only_in_part(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    marker = f"echo-{uuid.uuid4().hex}"
    body = opening() | {"order_id": marker, "padding": "x" * 200_000}
    response = await api.post("/cases", json=body, headers=SERVICE)
    assert response.status_code == 422
    [error] = assert_error_shape(response)
    assert error["field"] == "padding"
    assert len(response.content) < 1_000  # the answer does not grow with the body
    [row] = await kept(pool, marker)
    assert row["size"] < 70 * 1024  # kept for a person, within a bound


async def test_an_answer_does_not_grow_with_the_number_of_errors(api: httpx.AsyncClient) -> None:
    body = opening() | {f"unknown_{n}": n for n in range(5_000)}
    response = await api.post("/cases", json=body, headers=SERVICE)
    assert response.status_code == 422
    errors = assert_error_shape(response)
    assert len(errors) == 21
    assert errors[-1]["message"] == "and 4980 more errors like these"
    assert len(response.content) < 5_000


@pytest.mark.parametrize("length", [65, 300, 5_000])
async def test_an_over_long_time_zone_is_422_naming_it_not_503(
    api: httpx.AsyncClient, length: int
) -> None:
    # Before: a name past the file system's limit raised OSError in zoneinfo, which the
    # API took for "PostgreSQL cannot be reached" (503, retried for ever).
    body = opening()
    body["customer"]["time_zone"] = "Europe/" + "B" * length
    response = await api.post("/cases", json=body, headers=SERVICE)
    assert response.status_code == 422, response.text
    [error] = assert_error_shape(response)
    assert error["field"] == "customer.time_zone"
    assert "at most 64 characters" in error["message"]


async def test_every_text_field_the_api_takes_has_a_length_limit(api: httpx.AsyncClient) -> None:
    """Walks every request body's schema: each string is bounded (maxLength), unless it is
    a choice (enum) or a date, time or duration."""
    document = (await api.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    unbounded: list[str] = []
    seen: set[str] = set()

    def walk(where: str, schema: dict[str, Any]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                walk(name, schemas[name])
            return
        for choice in schema.get("anyOf", []) + schema.get("allOf", []):
            walk(where, choice)
        if "items" in schema:
            walk(f"{where}[]", schema["items"])
        for field, inner in schema.get("properties", {}).items():
            walk(f"{where}.{field}", inner)
        is_text = schema.get("type") == "string" and "enum" not in schema
        if is_text and "format" not in schema and "maxLength" not in schema:
            unbounded.append(where)

    for operations in document["paths"].values():
        for operation in operations.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                walk("body", content["schema"])
    assert "Customer" in seen  # the walk reached the nested models
    assert unbounded == []


async def test_scans_of_one_barcode_in_a_batch_are_applied_in_the_order_sent_r13_r26(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R13, R26
    """20 batches of [dock, inspection], sent at once: each case's receipt (which starts
    R13's inspection clock) is its dock scan, never the inspection that followed it."""
    bodies = [opening() for _ in range(20)]
    for body in bodies:
        assert (await api.post("/cases", json=body, headers=SERVICE)).status_code == 201
    start = datetime.now(UTC)
    batches = []
    for body in bodies:
        barcode, tag = case_id_of(body), uuid.uuid4().hex[:8]
        dock = {"barcode": barcode, "scan_id": f"dock-{tag}", "event": "parcel_received",
                "station": "DOCK-1", "scanned_at": start.isoformat()}  # fmt: skip
        inspection = {"barcode": barcode, "scan_id": f"qc-{tag}", "event": "inspected",
                      "station": "QC-1", "grade": "resellable",
                      "scanned_at": (start + timedelta(minutes=1)).isoformat()}  # fmt: skip
        batches.append({"scans": [dock, inspection]})
    answers = await asyncio.gather(
        *(api.post("/scans", json=batch, headers=as_role("warehouse")) for batch in batches)
    )
    assert [a.status_code for a in answers] == [202] * 20
    for batch, answer in zip(batches, answers, strict=True):
        assert [r["scan_id"] for r in answer.json()] == [s["scan_id"] for s in batch["scans"]]

    async def receipts() -> list[asyncpg.Record]:
        return await pool.fetch(
            "SELECT case_id, details->>'scan_id' AS scan_id FROM case_events "
            "WHERE action = 'parcel_received' AND case_id = ANY($1)",
            [case_id_of(b) for b in bodies],
        )

    received = await eventually(receipts, lambda rows: len(rows) == 20, within_s=60)
    dock_of = {b["scans"][0]["barcode"]: b["scans"][0]["scan_id"] for b in batches}
    assert {r["case_id"]: r["scan_id"] for r in received} == dock_of


async def test_a_future_requested_at_is_422_r1(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    body = opening() | {"requested_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    response = await api.post("/cases", json=body, headers=SERVICE)
    assert response.status_code == 422
    [error] = assert_error_shape(response)
    assert (error["field"], error["rule"]) == ("requested_at", "R1")
    stored = "SELECT count(*) FROM case_requests WHERE case_id = $1"
    assert await pool.fetchval(stored, case_id_of(body)) == 0


async def test_a_caller_cannot_set_our_receipt_time_r1(api: httpx.AsyncClient) -> None:  # R1
    body = opening() | {"received_at": opening()["requested_at"]}
    response = await api.post("/cases", json=body, headers=SERVICE)
    assert response.status_code == 422
    [error] = assert_error_shape(response)
    assert (error["field"], error["rule"]) == ("received_at", "R1")


async def test_a_backdated_requested_at_is_judged_at_receipt_and_recorded_so_r1(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R1
    """Delivered 10 days ago; the caller says it asked 9 days ago (inside the 7-day
    window). More than the 24 h allowance before our receipt: R1 judges the receipt, and
    the window closed 3 days ago."""
    now = datetime.now(UTC)
    body = opening() | {
        "delivered_at": (now - timedelta(days=10)).isoformat(),
        "requested_at": (now - timedelta(days=9)).isoformat(),
    }
    response = await api.post("/cases", json=body, headers=SERVICE)
    assert response.status_code == 201
    case_id = case_id_of(body)

    async def read() -> dict[str, Any]:
        found: dict[str, Any] = (await api.get(f"/cases/{case_id}", headers=SERVICE)).json()
        return found

    state = await eventually(read, lambda s: s["status"] != "opened")
    assert state["status"] == "refused"
    assert "judged at our receipt" in state["decision_reason"]
    # The request keeps both times: the caller's statement and our receipt.
    assert state["requested_at"] == body["requested_at"].replace("+00:00", "Z")
    assert now <= datetime.fromisoformat(state["request_received_at"]) <= datetime.now(UTC)
    [opened] = [e for e in await events(pool, case_id) if e["action"] == LedgerAction.CASE_OPENED]
    assert opened["details"]["r1_judged_by"] == "received_at"


async def test_a_requested_at_within_the_allowance_is_judged_as_requested_r1(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R1
    """Delivered 7 days and 1 hour ago, asked 2 hours ago (inside the window, and within
    the 24 h allowance): R1 judges the caller's requested_at, and the ledger says so."""
    now = datetime.now(UTC)
    body = opening() | {
        "delivered_at": (now - timedelta(days=7, hours=1)).isoformat(),
        "requested_at": (now - timedelta(hours=2)).isoformat(),
    }
    assert (await api.post("/cases", json=body, headers=SERVICE)).status_code == 201
    case_id = case_id_of(body)

    async def opened() -> list[asyncpg.Record]:
        return [e for e in await events(pool, case_id) if e["action"] == LedgerAction.CASE_OPENED]

    [row] = await eventually(opened, lambda rows: len(rows) == 1)
    assert row["details"]["r1_judged_by"] == "requested_at"
    state = (await api.get(f"/cases/{case_id}", headers=SERVICE)).json()
    assert state["status"] != "refused"


@given(
    delivered_days_ago=st.integers(min_value=0, max_value=30),
    backdated_by=st.timedeltas(min_value=timedelta(hours=24, seconds=1),
                               max_value=timedelta(days=60)),
)  # fmt: skip
def test_r1_cannot_be_moved_by_the_callers_clock(
    delivered_days_ago: int, backdated_by: timedelta
) -> None:  # R1
    """A requested_at backdated beyond the allowance gets the verdict of asking at receipt."""
    received = datetime(2026, 12, 1, 12, tzinfo=UTC)
    delivered = received - timedelta(days=delivered_days_ago)
    policy = PolicySettings()
    honest = a_request(delivered_at=delivered, requested_after=received - delivered)
    backdated = honest.model_copy(
        update={"requested_at": max(delivered, received - backdated_by), "received_at": received}
    )
    verdict, truth = check_return_window(backdated, policy), check_return_window(honest, policy)
    assert verdict.accepted == truth.accepted
    if backdated.requested_at < received - policy.backdating_allowance:
        assert (verdict.judged_by, verdict.judged_at) == (R1JudgedBy.RECEIVED_AT, received)


def test_every_number_and_boolean_a_caller_sends_is_strict() -> None:
    """Guards the models to come: an int or bool field of a boundary model takes only a
    JSON integer or boolean (pydantic's lax mode would take "5990", true, "yes")."""
    models: list[type[BaseModel]] = [Money]
    pending: list[type[BaseModel]] = [Strict]
    while pending:
        model = pending.pop()
        models.append(model)
        pending.extend(model.__subclasses__())
    lax = [
        f"{model.__name__}.{name}"
        for model in models
        for name, field in model.model_fields.items()
        if field.annotation in (int, bool)
        and not any(getattr(m, "strict", False) for m in field.metadata)
    ]
    assert len(models) > 20
    assert lax == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"paid": {"amount_minor": "5990", "currency": "EUR"}}, "paid.amount_minor"),
        ({"paid": {"amount_minor": True, "currency": "EUR"}}, "paid.amount_minor"),
        ({"paid": {"amount_minor": 5990.0, "currency": "EUR"}}, "paid.amount_minor"),
        ({"quantity": "2"}, "quantity"),
        ({"quantity": True}, "quantity"),
    ],
)
async def test_lax_numbers_are_422(
    api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await api.post("/cases", json=opening() | change, headers=SERVICE)
    assert response.status_code == 422
    [error] = assert_error_shape(response)
    assert error["field"] == field


@pytest.mark.parametrize("approve", ["true", 1, "yes"])
async def test_lax_booleans_are_422(api: httpx.AsyncClient, approve: Any) -> None:
    # Before, these were read as True and the decision went to the case (here: 404).
    decision = {"action_id": "d-1", "approve": approve}
    response = await api.post("/cases/return-O-1-1-r1/decision", json=decision,
                              headers=as_role("agent"))  # fmt: skip
    assert response.status_code == 422
    [error] = assert_error_shape(response)
    assert error["field"] == "approve"


async def test_a_duplicate_json_key_is_422_naming_the_key(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    body = opening()
    # Python's parser keeps the last of two keys: 1 unit instead of the price paid.
    text = json.dumps(body)[:-1] + ', "paid": {"amount_minor": 1, "currency": "EUR"}}'
    headers = SERVICE | {"Content-Type": "application/json"}
    response = await api.post("/cases", content=text, headers=headers)
    assert response.status_code == 422
    [error] = assert_error_shape(response)
    assert error["field"] == "paid"
    assert "duplicate key" in error["message"]
    stored = "SELECT count(*) FROM case_requests WHERE case_id = $1"
    assert await pool.fetchval(stored, case_id_of(body)) == 0


async def test_json_nested_beyond_the_parser_is_422_not_400(api: httpx.AsyncClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    headers = SERVICE | {"Content-Type": "application/json"}
    response = await api.post("/cases", content=deep, headers=headers)
    assert response.status_code == 422
    [error] = assert_error_shape(response)
    assert error["field"] == "body"
    assert "nested too deeply" in error["message"]


@pytest.mark.parametrize("currency", ["XXX", "XTS", "XAU", "ABC"])
async def test_a_currency_outside_iso_4217_is_422(api: httpx.AsyncClient, currency: str) -> None:
    body = opening() | {"paid": {"amount_minor": 5990, "currency": currency}}
    response = await api.post("/cases", json=body, headers=SERVICE)
    assert response.status_code == 422
    [error] = assert_error_shape(response)
    assert error["field"] == "paid.currency"
    assert "ISO 4217" in error["message"]


async def test_a_carrier_answer_to_a_case_or_survey_is_404_and_kept_for_a_person_r15(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R15
    body = opening()
    assert (await api.post("/cases", json=body, headers=SERVICE)).status_code == 201
    case_id = case_id_of(body)
    response_id = f"dhl-{uuid.uuid4().hex[:8]}"
    answer = {"response_id": response_id, "accepted": True,
              "recovered": {"amount_minor": 4_000, "currency": "EUR"}}  # fmt: skip
    for wrong_kind in (case_id, f"survey-{case_id}"):
        response = await api.post(f"/claims/{wrong_kind}/carrier-response", json=answer,
                                  headers=as_role("carrier"))  # fmt: skip
        assert response.status_code == 404
        [error] = assert_error_shape(response)
        assert (error["field"], error["rule"]) == ("claim_id", "R15")
        operation = f"carrier_response {wrong_kind}"
        [row] = await kept(pool, f'"{response_id}"')
        assert row["operation"] == operation
        await pool.execute("DELETE FROM refused_inputs WHERE operation = $1", operation)


async def test_a_409_names_the_rule_and_no_python_class_r17(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:  # R17
    body = opening(reason=Reason.QUALITY_DEFECT, paid_minor=20_000)
    case_id = (await api.post("/cases", json=body, headers=SERVICE)).json()["case_id"]
    photos = {"event_id": "ev-1", "photos": ["https://photos.example/crack.jpg"]}
    sent = await api.post(f"/cases/{case_id}/evidence", json=photos, headers=SERVICE)
    assert sent.status_code == 202
    await eventually(
        lambda: api.get(f"/cases/{case_id}", headers=SERVICE),
        lambda r: r.json()["status"] == "under_review",
    )
    agent = as_role("agent", "agent-ann")
    # Above the agent's authority: refused in the Update itself (AuthorityLimit before).
    offer = {"action_id": "c-1", "amount": {"amount_minor": 9_000, "currency": "EUR"},
             "reason": "scratched casing"}  # fmt: skip
    above = await api.post(f"/cases/{case_id}/compensation", json=offer, headers=agent)
    # Refused by the validator (ValueError before).
    wrong_currency = offer | {"action_id": "c-2", "amount": {"amount_minor": 100,
                                                             "currency": "USD"}}  # fmt: skip
    other = await api.post(f"/cases/{case_id}/compensation", json=wrong_currency, headers=agent)
    for response, field, rule in ((above, None, "R17"), (other, "amount.currency", "R17")):
        assert response.status_code == 409
        [error] = assert_error_shape(response)
        assert "AuthorityLimit" not in response.text
        assert "ValueError" not in response.text
        assert (error["field"], error["rule"]) == (field, rule)


async def test_every_answer_carries_the_security_headers_and_errors_their_shape(
    api: httpx.AsyncClient,
) -> None:
    body = opening()
    answers = {
        201: await api.post("/cases", json=body, headers=SERVICE),
        200: await api.get(f"/cases/{case_id_of(body)}", headers=SERVICE),
        401: await api.get("/cases", headers={"Authorization": "Bearer nobody"}),
        403: await api.get("/cases", headers=as_role("warehouse")),
        404: await api.get("/cases/return-NOPE-1-r1", headers=SERVICE),
        405: await api.delete("/cases", headers=SERVICE),
        413: await api.post("/cases", content=b"x" * (MAX_BODY_BYTES + 1), headers=SERVICE),
        422: await api.post("/cases", json={"order_id": "x"}, headers=SERVICE),
    }
    for expected, response in answers.items():
        assert response.status_code == expected, (expected, response.text)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        if expected >= 400:
            assert_error_shape(response)


async def test_every_error_status_is_documented_with_the_error_model(
    api: httpx.AsyncClient,
) -> None:
    document = (await api.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            documented = operation["responses"]
            assert {"401", "403", "413", "422", "503"} <= set(documented), (method, path)
            for code, response in documented.items():
                if code.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]["$ref"]
                    assert schema.endswith(("/ApiError", "/ScanBatchRefusal")), (path, code)
            if "{case_id}" in path or "{claim_id}" in path:
                assert "404" in documented, (method, path)


# --- Issue 16: odd input the attack run found answering 500 or echoed ----------------


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [100, 500, 900])
async def test_a_body_nesting_arrays_hundreds_deep_is_422_not_500(
    api: httpx.AsyncClient, depth: int
) -> None:
    """Before: a RecursionError in the NUL check (500) for a body 500 deep."""
    body = opening() | {"notes": nested(depth)}
    response = await api.post("/cases", content=json.dumps(body), headers=SERVICE | {
        "Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 422, response.text[:300]
    [error] = assert_error_shape(response)
    assert error["field"] == "notes"
    evidence = await api.post("/cases/return-NOPE-1-r1/evidence", headers=SERVICE,
                              json={"event_id": "e-1", "photos": nested(depth)})  # fmt: skip
    assert evidence.status_code == 422, evidence.text[:300]
    assert_error_shape(evidence)


REPORT_READS = ["/reports", "/reports/by_batch.csv", "/reports/page",
                "/reports/plots/return_rate_by_batch.svg"]  # fmt: skip


@pytest.mark.parametrize("field", ["sku", "batch", "category", "channel", "kind", "reason"])
@pytest.mark.parametrize("path", REPORT_READS)
async def test_a_nul_in_a_report_filter_is_422_naming_it_r24(
    api: httpx.AsyncClient, path: str, field: str
) -> None:
    """Before: `GET /reports?sku=%00` reached PostgreSQL, which cannot hold NUL (500)."""
    response = await api.get(f"{path}?{field}=SKU%00", headers=as_role("agent"))
    assert response.status_code == 422, response.text[:300]
    [error] = assert_error_shape(response)
    assert error["field"] == field
    assert "NUL" in error["message"]


ECHO = "echo-5e1f<script>"


async def test_no_error_answer_echoes_a_value_it_refuses(api: httpx.AsyncClient) -> None:
    """docs/contract.md: an error names the field and the rule, never the value sent. A
    marker goes in each free-form value the attack run saw quoted back (a time zone, a
    currency, the codec's payloads, a token's key id) and in other values of each kind
    (body text, query values, headers); no answer may hold it."""
    staff = as_role("agent")
    body = opening()
    with_zone = opening()
    with_zone["customer"]["time_zone"] = ECHO
    forged = jwt.encode({"sub": "x"}, "s" * 32, "HS256", headers={"kid": ECHO})
    answers = [
        await api.post("/cases", json=with_zone, headers=SERVICE),
        await api.post("/cases", json=body | {"paid": {"amount_minor": 1, "currency": ECHO}},
                       headers=SERVICE),
        await api.post("/cases", json=body | {"paid": {"amount_minor": ECHO, "currency": "EUR"}},
                       headers=SERVICE),
        await api.post("/cases", json=body | {"kind": ECHO}, headers=SERVICE),
        await api.post("/cases", json=body | {"delivered_at": ECHO}, headers=SERVICE),
        await api.post("/cases", json=body | {"sku": ECHO * 20}, headers=SERVICE),
        await api.post("/cases", content=f'{{"order_id": {ECHO}}}', headers=SERVICE),
        await api.post("/codec/decode", json={"payloads": [{"a": ECHO}]}, headers=staff),
        await api.post("/codec/decode", json={"payloads": ECHO}, headers=staff),
        await api.get("/cases", headers={"Authorization": f"Bearer {forged}"}),
        await api.get("/cases", headers={"Authorization": f"Bearer {ECHO}"}),
        await api.get("/cases", headers={"Authorization": f"{ECHO} token"}),
        await api.get("/cases", params={"status": ECHO, "limit": ECHO}, headers=staff),
        await api.get("/reports", params={"from": ECHO, "sku": ECHO * 10}, headers=staff),
        await api.post("/scans", json={"scans": [{"barcode": ECHO}]},
                       headers=as_role("warehouse")),
    ]  # fmt: skip
    for answer in answers:
        assert 400 <= answer.status_code < 500, (answer.request.url, answer.text[:300])
        assert_error_shape(answer)
        assert "echo-5e1f" not in answer.text, answer.text[:500]


async def test_a_405_names_the_methods_the_path_takes(api: httpx.AsyncClient) -> None:
    """RFC 9110: a 405 carries Allow. Before: `OPTIONS /cases` answered 405 without it."""
    for method, path, allowed in (("OPTIONS", "/cases", {"GET", "POST"}),
                                  ("DELETE", "/cases", {"GET", "POST"}),
                                  ("PUT", "/scans", {"POST"}),
                                  ("PATCH", "/reports/page", {"GET"})):  # fmt: skip
        response = await api.request(method, path, headers=SERVICE)
        assert response.status_code == 405, (method, path)
        assert set(response.headers["Allow"].replace(" ", "").split(",")) >= allowed
        assert_error_shape(response)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_each_client_has_a_budget_of_refused_input_then_429(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str
) -> None:
    """Issue 16: staff and machine clients filled refused_inputs at will (~10k rows from
    one fuzz run). Three refusals a minute here: the fourth write is 429 with Retry-After
    and nothing of it is kept; other clients and the client's reads go on; a third of a
    minute later one more refusal is kept."""
    clock = ManualClock()
    budget = RefusalBudget(per_minute=3, clock=clock)
    gateway = CaseGateway(dev_env.client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))
    app = create_app(gateway, IDENTITIES.authenticator, refusal_budget=budget)
    shop, other_shop = as_role("service", "shop-budget"), as_role("service", "shop-other")
    marker = f"budget-{uuid.uuid4().hex}"
    bad = opening() | {"order_id": marker, "unknown": 1}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://api") as api:  # fmt: skip
        within = [await api.post("/cases", json=bad, headers=shop) for _ in range(3)]
        past = await api.post("/cases", json=bad, headers=shop)
        valid_past = await api.post("/cases", json=opening(), headers=shop)
        read = await api.get("/cases/return-NOPE-1-r1", headers=shop)
        other = await api.post("/cases", json=bad, headers=other_shop)
        clock.now += 20
        refilled = await api.post("/cases", json=bad, headers=shop)
        again_past = await api.post("/cases", json=bad, headers=shop)

    assert [r.status_code for r in within] == [422, 422, 422]
    for refused in (past, valid_past, again_past):
        assert refused.status_code == 429, refused.text
        assert_error_shape(refused)
        assert 1 <= int(refused.headers["Retry-After"]) <= 20
    assert (read.status_code, other.status_code, refused.status_code) == (404, 422, 429)
    assert refilled.status_code == 422
    assert len(await kept(pool, marker)) == 3 + 1 + 1  # the shop's four, the other's one
    assert budget.over_budget == {"shop-budget": 3}
