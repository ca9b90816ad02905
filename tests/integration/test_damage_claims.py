"""DamageClaimCase and its CarrierClaim on the time-skipping server (R8, R15)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.carrier import SandboxCarrier
from activities.warehouse import SandboxWarehouse
from domain.case import (
    CaseKind,
    EvidenceSubmitted,
    Reason,
    Remedy,
    RemedyChoice,
    ReviewDecision,
    Role,
    RootCause,
)
from domain.claim import CarrierAnswer, CarrierClaimRequest, ClaimState, ClaimStatus
from domain.policy_settings import PolicySettings
from domain.state import CaseStatus
from tests.conftest import a_request, eur, eventually
from tests.helpers import Handle, open_case, state_when
from workflows.carrier_claim import CarrierClaim, ClaimRun
from workflows.damage_claim_case import DamageClaimCase

ClaimHandle = WorkflowHandle[CarrierClaim, ClaimState]


async def claim_when(claim: ClaimHandle, accept: Callable[[ClaimState], bool]) -> ClaimState:
    return await eventually(lambda: claim.query(CarrierClaim.state), accept)


def approve(root_cause: RootCause | None = RootCause.PACKAGING) -> ReviewDecision:
    return ReviewDecision(
        action_id="d-1", actor="agent-ann", role=Role.AGENT, approve=True, root_cause=root_cause
    )


async def approved_claim(
    env: WorkflowEnvironment, task_queue: str, *, reason: Reason = Reason.DAMAGED_IN_TRANSIT,
    carrier: str | None = "DHL",
) -> Handle:  # fmt: skip
    request = a_request(
        kind=CaseKind.DAMAGE_CLAIM, reason=reason, carrier=carrier, paid_minor=10_000,
        delivered_at=datetime.now(UTC) - timedelta(days=1), requested_after=timedelta(days=1),
    )  # fmt: skip
    handle = await open_case(env, task_queue, request)
    if reason is Reason.DAMAGED_IN_TRANSIT:
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_EVIDENCE)
        await handle.signal(
            DamageClaimCase.evidence_submitted,
            EvidenceSubmitted(event_id="ev-1", photos=["crushed-box.jpg"]),
        )
    await state_when(handle, lambda s: s.status is CaseStatus.UNDER_REVIEW)
    await handle.execute_update(DamageClaimCase.decide, approve())
    return handle


async def test_customer_gets_a_remedy_while_the_carrier_claim_goes_on(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    carrier: SandboxCarrier,
    pool: asyncpg.Pool,
) -> None:  # R8, R15, R21
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await approved_claim(env, task_queue)
        offered = await handle.query(DamageClaimCase.state)
        assert offered.status is CaseStatus.AWAITING_REMEDY_CHOICE
        assert offered.root_cause is RootCause.PACKAGING
        await handle.execute_update(
            DamageClaimCase.choose_remedy,
            RemedyChoice(choice_id="r-1", remedy=Remedy.PARTIAL_REFUND, partial_amount=eur(3_000)),
        )
        result = await handle.result()
        assert result.carrier_claim_id is not None
        claim = env.client.get_workflow_handle_for(CarrierClaim.run, result.carrier_claim_id)
        claim_state = await claim_when(claim, lambda s: s.status is ClaimStatus.AWAITING_CARRIER)
        claim_running = (await claim.describe()).status
    assert result.status is CaseStatus.REFUNDED
    assert result.refunded_total == eur(3_000)
    assert claim_running is WorkflowExecutionStatus.RUNNING  # it outlives the case
    assert claim_state.request.amount == eur(10_000)
    assert list(carrier.filed) == [result.carrier_claim_id]
    row = await pool.fetchrow("SELECT root_cause FROM cases WHERE case_id = $1", result.case_id)
    assert row is not None
    assert row["root_cause"] == "packaging"


async def test_replacement_is_shipped_once(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    warehouse: SandboxWarehouse,
    pool: asyncpg.Pool,
) -> None:  # R8
    async with running_worker(time_skipping_env.client):
        handle = await approved_claim(time_skipping_env, task_queue, reason=Reason.LOST_IN_TRANSIT)
        await handle.execute_update(
            DamageClaimCase.choose_remedy, RemedyChoice(choice_id="r-1", remedy=Remedy.REPLACEMENT)
        )
        result = await handle.result()
    assert result.status is CaseStatus.REPLACED
    assert result.refunds == []
    assert list(warehouse.shipped.values()) == [("SKU-42", 1)]
    rows = await pool.fetchval("SELECT count(*) FROM shipments WHERE case_id = $1", result.case_id)
    assert rows == 1


def test_damage_reasons_belong_to_damage_claims() -> None:  # R8
    with pytest.raises(ValueError, match="does not fit a return case"):
        a_request(kind=CaseKind.RETURN, reason=Reason.LOST_IN_TRANSIT)


def claim_request(*, delivered_days_ago: int) -> ClaimRun:
    return ClaimRun(
        request=CarrierClaimRequest(
            claim_id=f"claim-test-{delivered_days_ago}-{datetime.now(UTC).timestamp()}",
            case_id="damage_claim-X-1-r1",
            carrier="DHL",
            amount=eur(10_000),
            deadline_counts_from=datetime.now(UTC) - timedelta(days=delivered_days_ago),
            policy=PolicySettings(),
        )
    )


async def start_claim(env: WorkflowEnvironment, task_queue: str, run: ClaimRun) -> ClaimHandle:
    return await env.client.start_workflow(
        CarrierClaim.run, run, id=run.request.claim_id, task_queue=task_queue
    )


async def test_claim_is_chased_every_7_days_and_escalated_after_30(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    carrier: SandboxCarrier,
    pool: asyncpg.Pool,
) -> None:  # R15
    env = time_skipping_env
    async with running_worker(env.client):
        claim = await start_claim(env, task_queue, claim_request(delivered_days_ago=2))
        filed = await claim_when(claim, lambda s: s.filed_at is not None)
        assert filed.filed_at is not None
        await env.sleep(timedelta(days=6, hours=23))
        assert (await claim.query(CarrierClaim.state)).chases == []
        await env.sleep(timedelta(hours=2))
        await claim_when(claim, lambda s: len(s.chases) == 1)
        await env.sleep(timedelta(days=22, hours=22))  # day 29:23 since filing
        before = await claim_when(claim, lambda s: len(s.chases) == 4)
        assert before.escalated_at is None
        await env.sleep(timedelta(hours=2))
        after = await claim_when(claim, lambda s: s.escalated_at is not None)
        await claim.signal(
            CarrierClaim.carrier_response,
            CarrierAnswer(response_id="dhl-1", accepted=True, recovered=eur(8_000)),
        )
        settled = await claim.result()
    assert after.escalated_at is not None
    assert after.escalated_at - filed.filed_at >= timedelta(days=30)
    assert settled.status is ClaimStatus.SETTLED
    assert len(carrier.chased) == len(settled.chases) == 4
    row = await pool.fetchrow(
        "SELECT claimed_minor, recovered_minor, status, chases FROM carrier_claims "
        "WHERE claim_id = $1",
        settled.request.claim_id,
    )
    assert row is not None
    assert dict(row) == {
        "claimed_minor": 10_000, "recovered_minor": 8_000, "status": "settled", "chases": 4,
    }  # fmt: skip


async def test_a_months_long_claim_continues_as_new_and_keeps_its_state(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R15, long-lived
    env = time_skipping_env
    run = claim_request(delivered_days_ago=1).model_copy(
        update={"history_events_before_continue": 10}
    )
    async with running_worker(env.client):
        claim = await start_claim(env, task_queue, run)
        first_run = (await claim.describe()).run_id
        await claim_when(claim, lambda s: s.filed_at is not None)
        await env.sleep(timedelta(days=90))
        ninety = await claim_when(claim, lambda s: len(s.chases) == 12)
        await claim.signal(
            CarrierClaim.carrier_response,
            CarrierAnswer(response_id="dhl-9", accepted=False, recovered=eur(0)),
        )
        result = await claim.result()
        history = await env.client.get_workflow_handle(
            run.request.claim_id, run_id=first_run
        ).fetch_history()
    assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    assert ninety.escalated_at is not None
    assert result.status is ClaimStatus.DECLINED
    assert len(result.chases) == 12
