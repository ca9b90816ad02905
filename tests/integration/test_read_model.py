"""The read side (R23): `GET /cases`, `GET /cases/{id}` and `GET /cases/{id}/ledger`
answer from the PostgreSQL read model, which every ledger step writes; a live query is
asked only for `?fresh=true` and names the worker when none answers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.ledger import LedgerActivities
from activities.policy_file import load_policy_file
from domain.case import Customer, Dispute, Reason
from domain.ledger import LedgerAction
from domain.state import CaseStatus, Escalation, EscalationLevel
from infra.case_errors import UnknownCaseError
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eventually
from tests.helpers import api_client, as_role
from tests.integration.test_ledger_and_money import a_case, an_entry


@pytest.fixture
def gateway(dev_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str) -> CaseGateway:
    return CaseGateway(dev_env.client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))


def opening(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    request = a_request(delivered_at=now - timedelta(days=2), requested_after=timedelta(days=1),
                        **overrides)  # fmt: skip
    return request.model_dump(mode="json", exclude_none=True)


async def status_is(api: httpx.AsyncClient, case_id: str, status: str) -> dict[str, Any]:
    """The case once the workflow itself says it reached `status` (a live query)."""

    async def live() -> httpx.Response:
        return await api.get(f"/cases/{case_id}?fresh=true", headers=as_role("agent"))

    answer = await eventually(live, lambda r: r.json().get("status") == status)
    found: dict[str, Any] = answer.json()
    return found


async def test_r23_a_case_reads_from_postgresql_with_no_worker_and_after_temporal_forgot_it(
    dev_env: WorkflowEnvironment, running_worker: Any, gateway: CaseGateway, task_queue: str
) -> None:
    async with running_worker(dev_env.client), api_client(gateway) as api:
        opened = await api.post("/cases", json=opening(), headers=as_role("service"))
        case_id = opened.json()["case_id"]
        live = await status_is(api, case_id, "awaiting_ship_back")
    async with api_client(gateway) as api:  # no worker runs from here on
        staff = await api.get(f"/cases/{case_id}", headers=as_role("agent"))
        service = await api.get(f"/cases/{case_id}", headers=as_role("service"))
        fresh = await api.get(f"/cases/{case_id}?fresh=true", headers=as_role("agent"))
        listed = await api.get("/cases?status=awaiting_ship_back&limit=1000",
                               headers=as_role("agent"))  # fmt: skip
        # Temporal's retention ends: the execution is deleted, the read model stays.
        await dev_env.client.workflow_service.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(
                namespace=dev_env.client.namespace,
                workflow_execution=WorkflowExecution(workflow_id=case_id),
            )
        )
        await eventually(lambda: _described(dev_env, case_id), lambda found: not found)
        after_retention = await api.get(f"/cases/{case_id}", headers=as_role("agent"))
        fresh_after_retention = await api.get(
            f"/cases/{case_id}?fresh=true", headers=as_role("agent")
        )
    assert staff.status_code == 200, staff.text
    assert staff.json() == live  # the last step's view is what the workflow answered
    assert service.status_code == 200
    assert service.json()["status"] == "awaiting_ship_back"
    assert "category" not in service.json()  # ServiceView, not the working view
    assert fresh.status_code == 503, fresh.text
    assert task_queue in fresh.json()["detail"]
    assert "worker" in fresh.json()["detail"]
    assert "Temporal cannot be reached" not in fresh.json()["detail"]
    assert fresh.headers["Retry-After"] == "5"
    assert listed.status_code == 200
    [mine] = [c for c in listed.json() if c["case_id"] == case_id]
    assert (mine["kind"], mine["status"], mine["closed_at"]) == (
        "return",
        "awaiting_ship_back",
        None,
    )
    assert after_retention.status_code == 200
    assert after_retention.json() == live
    assert fresh_after_retention.status_code == 404


async def _described(env: WorkflowEnvironment, case_id: str) -> bool:
    try:
        await env.client.get_workflow_handle(case_id).describe()
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_r23_a_stored_view_the_current_model_cannot_read_is_asked_live(
    pool: asyncpg.Pool, gateway: CaseGateway
) -> None:
    case = a_case()  # in the read model, never started in Temporal
    await LedgerActivities(pool).record_step(an_entry(case, 1, CaseStatus.OPENED))
    await pool.execute(
        "UPDATE cases SET case_view = case_view - 'status' WHERE case_id = $1", case.case_id
    )
    with pytest.raises(UnknownCaseError):  # the live answer, not a ValidationError
        await gateway.status(case.case_id)


async def test_r23_the_case_list_filters_by_status_newest_first(
    pool: asyncpg.Pool, gateway: CaseGateway
) -> None:
    older, newer = a_case(), a_case()
    newer.opened_at = older.opened_at + timedelta(minutes=1)
    ledger = LedgerActivities(pool)
    await ledger.record_step(an_entry(older, 1, CaseStatus.UNDER_REVIEW))
    await ledger.record_step(an_entry(newer, 1, CaseStatus.UNDER_REVIEW))
    await ledger.record_step(an_entry(newer, 2, CaseStatus.AWAITING_SHIP_BACK))
    under_review = await gateway.list_cases(status="under_review", limit=1000)
    everything = await gateway.list_cases(limit=1000)
    ids = [c.case_id for c in under_review]
    assert older.case_id in ids
    assert newer.case_id not in ids
    assert [c.case_id for c in everything].index(newer.case_id) < [
        c.case_id for c in everything
    ].index(older.case_id)


async def test_r23_redaction_removes_peoples_words_from_the_stored_view(
    pool: asyncpg.Pool, gateway: CaseGateway
) -> None:  # docs/privacy.md: retention and erasure redact alike
    case = a_case()
    case.decision_reason = "agent words: the casing was cracked"
    case.escalation = Escalation(level=EscalationLevel.SUPERVISOR, reason="agent asked")
    case.dispute = Dispute(event_id="dispute-1", reason="the customer's own words")
    await LedgerActivities(pool).record_step(an_entry(case, 1, CaseStatus.IN_ARBITRATION))
    marker = f"[removed {uuid.uuid4().hex[:6]}]"
    await pool.execute("SELECT redact_free_text($1, $2)", [case.case_id], marker)
    view = await gateway.status(case.case_id)
    assert view.decision_reason == marker
    assert view.escalation.reason == marker
    assert view.dispute is not None
    assert view.dispute.reason == marker
    assert view.escalation.level is EscalationLevel.SUPERVISOR  # structure stays
    assert view.status is CaseStatus.IN_ARBITRATION


async def test_r23_the_ledger_route_reads_the_trail_without_the_customers_words(
    dev_env: WorkflowEnvironment, running_worker: Any, gateway: CaseGateway
) -> None:
    tag = uuid.uuid4().hex[:10]
    customer, photo, complaint = f"cust-{tag}", f"https://photos.example/{tag}.jpg", f"words {tag}"
    body = opening(reason=Reason.QUALITY_DEFECT) | {
        "customer": Customer(customer_id=customer).model_dump(mode="json")
    }
    service = as_role("service")
    async with running_worker(dev_env.client), api_client(gateway) as api:
        case_id = (await api.post("/cases", json=body, headers=service)).json()["case_id"]
        await status_is(api, case_id, "awaiting_evidence")
        await api.post(f"/cases/{case_id}/evidence",
                       json={"event_id": "ev-1", "photos": [photo]}, headers=service)  # fmt: skip
        await api.post(f"/cases/{case_id}/complaint",
                       json={"event_id": "c-1", "summary": complaint}, headers=service)  # fmt: skip

        async def trail() -> httpx.Response:
            return await api.get(f"/cases/{case_id}/ledger", headers=as_role("agent"))

        staff = await eventually(
            trail, lambda r: "escalated" in [e["action"] for e in r.json()["events"]]
        )
        as_service = await api.get(f"/cases/{case_id}/ledger", headers=service)
        as_arbiter = await api.get(f"/cases/{case_id}/ledger", headers=as_role("arbiter"))
        unknown = await api.get(f"/cases/{case_id}x/ledger", headers=as_role("agent"))
        stored = await gateway.ledger(case_id)
    events = staff.json()["events"]
    assert staff.status_code == 200
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["action"] == LedgerAction.CASE_OPENED
    assert (events[0]["actor"], events[0]["role"], events[0]["rule_id"]) == (
        "customer",
        "customer",
        "R2",
    )
    [evidence] = [e for e in events if e["details"].get("event_id") == "ev-1"]
    assert evidence["details"]["photos"] == 1  # a count, not the URL
    for personal in (customer, photo, complaint):
        assert personal not in staff.text
    assert staff.json()["disputed"] is False
    assert stored.events[-1].status_after == events[-1]["status_after"]
    assert as_service.status_code == 403
    assert as_arbiter.status_code == 404  # R19: not disputed, so not the arbiter's
    assert unknown.status_code == 404


async def test_r19_the_arbiter_reads_the_ledger_of_a_disputed_case(
    pool: asyncpg.Pool, gateway: CaseGateway
) -> None:
    case = a_case()
    case.dispute = Dispute(event_id="dispute-1", reason="the customer's own words")
    await LedgerActivities(pool).record_step(an_entry(case, 1, CaseStatus.IN_ARBITRATION))
    async with api_client(gateway) as api:
        as_arbiter = await api.get(f"/cases/{case.case_id}/ledger", headers=as_role("arbiter"))
    assert as_arbiter.status_code == 200, as_arbiter.text
    assert as_arbiter.json()["disputed"] is True
    assert [e["status_after"] for e in as_arbiter.json()["events"]] == ["in_arbitration"]
