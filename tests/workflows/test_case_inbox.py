"""How messages reach a case (workflows/case_inbox.py) over stand-in activities: an
Update answers with what it did, a duplicate changes nothing, a retry gets its first
answer again."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.case import (
    CompensationOffer,
    Dispute,
    Grade,
    Reason,
    ReviewDecision,
    Role,
    ScanEvent,
)
from domain.ledger import LedgerAction as A
from domain.refusal import RefusalKind
from domain.state import CaseStatus
from tests.conftest import a_request, eur
from tests.helpers import Handle, open_case, photos, scan, sent_together, state_when, under_review
from tests.workflows.standins import StandIns
from workflows.case_inbox import NOT_APPLIED
from workflows.return_case import ReturnCase


def approval(n: int) -> ReviewDecision:
    return ReviewDecision(action_id=f"d-{n}", actor=f"agent-{n}", role=Role.AGENT, approve=True)


async def in_arbitration(env: WorkflowEnvironment, task_queue: str) -> Handle:
    """R19: a return rejected at inspection, then disputed."""
    handle = await open_case(env, task_queue, a_request(paid_minor=5_000))
    await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
    await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.DAMAGED))
    await state_when(handle, lambda s: s.dispute_deadline is not None)
    await handle.signal(ReturnCase.dispute, Dispute(event_id="dsp-1", reason="unfair"))
    await state_when(handle, lambda s: s.status is CaseStatus.IN_ARBITRATION)
    return handle


async def test_r10_of_two_approvals_sent_together_one_applies_and_the_other_is_refused(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        for n in range(3):
            handle = await under_review(
                time_skipping_env, task_queue, order_id=f"O-two-approvals-{task_queue}-{n}"
            )
            applied, refused = await sent_together(
                handle, ReturnCase.decide, [approval(a) for a in (1, 2)]
            )
            assert (len(applied), len(refused)) == (1, 1), (applied, refused)
            assert applied[0].status is CaseStatus.AWAITING_SHIP_BACK
            assert "awaiting_ship_back" in str(refused[0].cause)
            assert standins.actions(handle.id).count(A.APPROVED) == 1


async def test_r19_a_retried_refused_offer_is_refused_again_and_recorded_once(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    offer = CompensationOffer(
        action_id="a-1", actor="sup-sam", role=Role.SUPERVISOR, amount=eur(1_000),
        reason="goodwill",
    )  # fmt: skip
    async with running_worker(time_skipping_env.client):
        handle = await in_arbitration(time_skipping_env, task_queue)
        causes = []
        for _ in range(2):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(ReturnCase.offer_compensation, offer)
            causes.append(refused.value.cause)
    first, retry = causes
    assert isinstance(first, ApplicationError)
    assert isinstance(retry, ApplicationError)
    assert retry.type == NOT_APPLIED
    assert (retry.message, list(retry.details)) == (first.message, list(first.details))
    ignored = [s for s in standins.steps(handle.id) if s.action is A.MESSAGE_IGNORED]
    assert len(ignored) == 1
    assert ignored[0].details["kind"] == RefusalKind.IN_ARBITRATION.value
    assert standins.money == {}


async def test_r6_the_same_photos_sent_twice_are_received_once(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request(reason=Reason.QUALITY_DEFECT)
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_EVIDENCE)
        await handle.signal(ReturnCase.evidence_submitted, photos("ev-1"))
        await handle.signal(ReturnCase.evidence_submitted, photos("ev-1"))
        reviewing = await state_when(handle, lambda s: s.status is CaseStatus.UNDER_REVIEW)
        await handle.execute_update(ReturnCase.decide, approval(1))
    assert reviewing.photos_received == 1
    assert standins.actions(request.case_id).count(A.EVIDENCE_RECEIVED) == 1
