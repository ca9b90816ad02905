"""DamageClaimCase over stand-in activities (R8): the customer's remedy at once, the
carrier claim started beside it and outliving the case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

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
from domain.claim import ClaimStatus
from domain.state import CaseStatus
from tests.conftest import a_request, eur, eventually
from tests.helpers import Handle, open_case, state_when
from tests.workflows.standins import StandIns
from workflows.carrier_claim import CarrierClaim
from workflows.damage_claim_case import DamageClaimCase


async def approved_claim(
    env: WorkflowEnvironment, task_queue: str, reason: Reason = Reason.DAMAGED_IN_TRANSIT
) -> Handle:
    request = a_request(
        kind=CaseKind.DAMAGE_CLAIM, reason=reason, carrier="DHL", paid_minor=10_000,
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
    await handle.execute_update(
        DamageClaimCase.decide,
        ReviewDecision(
            action_id="d-1", actor="agent-ann", role=Role.AGENT, approve=True,
            root_cause=RootCause.PACKAGING,
        ),
    )  # fmt: skip
    return handle


async def test_r8_r15_a_partial_refund_now_and_the_carrier_claim_goes_on(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await approved_claim(env, task_queue)
        await handle.execute_update(
            DamageClaimCase.choose_remedy,
            RemedyChoice(choice_id="r-1", remedy=Remedy.PARTIAL_REFUND, partial_amount=eur(3_000)),
        )
        result = await handle.result()
        assert result.carrier_claim_id is not None
        claim = env.client.get_workflow_handle_for(CarrierClaim.run, result.carrier_claim_id)
        filed = await eventually(
            lambda: claim.query(CarrierClaim.state),
            lambda s: s.status is ClaimStatus.AWAITING_CARRIER,
        )
        claim_running = (await claim.describe()).status
    assert result.status is CaseStatus.REFUNDED
    assert standins.refunded(result.case_id) == 3_000
    assert claim_running is WorkflowExecutionStatus.RUNNING
    assert filed.request.amount == eur(10_000)
    assert list(standins.claims_filed) == [result.carrier_claim_id]
    assert standins.ledger[result.case_id][1].case.root_cause is None
    assert standins.steps(result.case_id)[-1].case.root_cause == RootCause.PACKAGING.value


async def test_r8_a_replacement_is_shipped_once_and_nothing_refunded(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await approved_claim(time_skipping_env, task_queue, Reason.LOST_IN_TRANSIT)
        await handle.execute_update(
            DamageClaimCase.choose_remedy, RemedyChoice(choice_id="r-1", remedy=Remedy.REPLACEMENT)
        )
        result = await handle.result()
    assert result.status is CaseStatus.REPLACED
    assert standins.money == {}
    assert [(s.sku, s.quantity) for s in standins.shipments.values()] == [("SKU-42", 1)]


async def test_r8_r11_silence_on_the_remedy_gives_the_full_refund(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        result = await (await approved_claim(time_skipping_env, task_queue)).result()
    assert result.remedy is Remedy.FULL_REFUND
    assert standins.refunded(result.case_id) == 10_000


async def test_r8_r21_a_partial_refund_above_what_was_paid_is_refused(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await approved_claim(time_skipping_env, task_queue)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                DamageClaimCase.choose_remedy,
                RemedyChoice(
                    choice_id="r-1", remedy=Remedy.PARTIAL_REFUND, partial_amount=eur(10_001)
                ),
            )
        state = await handle.query(DamageClaimCase.state)
    assert "R21" in str(refused.value.cause)
    assert state.status is CaseStatus.AWAITING_REMEDY_CHOICE
    assert standins.money == {}
