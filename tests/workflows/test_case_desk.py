"""The concerns every phase shares (workflows/case_desk.py) over stand-in activities:
review by a person or by silence (R10, R11), authority (R17), the escalation ladder and
complaints (R18), calls (R16), daily follow-ups (R14) and withdrawal."""

from __future__ import annotations

import uuid
from datetime import time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.notifications import Template
from domain.case import (
    CallRequest,
    CompensationOffer,
    Complaint,
    EscalationRequest,
    ReviewDecision,
    Role,
    Withdrawal,
)
from domain.ledger import LedgerAction as A
from domain.state import CaseStatus, EscalationLevel
from tests.conftest import a_request, eur
from tests.helpers import open_case, state_when, under_review
from tests.workflows.standins import StandIns
from workflows.return_case import ReturnCase


def decision(approve: bool, role: Role = Role.AGENT, reason: str | None = None) -> ReviewDecision:
    return ReviewDecision(
        action_id=f"d-{uuid.uuid4().hex[:6]}", actor="agent-ann", role=role, approve=approve,
        reason=reason,
    )  # fmt: skip


def escalation(reason: str) -> EscalationRequest:
    return EscalationRequest(action_id="x-1", actor="agent-ann", role=Role.AGENT, reason=reason)


async def test_r10_r11_silence_approves_at_48_hours_and_not_before(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue)
        review_deadline = (await handle.query(ReturnCase.state)).review_deadline
        assert review_deadline is not None
        await env.sleep(timedelta(hours=47, minutes=59))
        assert (await handle.query(ReturnCase.state)).status is CaseStatus.UNDER_REVIEW
        await env.sleep(timedelta(minutes=2))
        approved = await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
    assert approved.auto_approved
    assert approved.approved_at is not None
    assert timedelta(0) <= approved.approved_at - review_deadline < timedelta(minutes=2)
    steps = standins.steps(approved.case_id)
    assert (A.APPROVED, "R11") in [(s.action, s.rule_id) for s in steps]


async def test_r10_r20_an_agents_rejection_closes_the_case_with_its_reason(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        after = await handle.execute_update(
            ReturnCase.decide, decision(False, reason="wear from use, not a defect")
        )
        result = await handle.result()
    assert after.status is CaseStatus.REJECTED
    assert result.decision_reason == "R20: wear from use, not a defect"
    assert Template.CASE_REJECTED in standins.templates(result.case_id)
    assert standins.money == {}


async def test_r10_a_decision_on_a_case_not_under_review_is_refused_without_trace(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request()
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ReturnCase.decide, decision(True))
    assert "not under_review" in str(refused.value.cause)
    assert standins.actions(request.case_id) == [A.CASE_OPENED, A.APPROVED]


async def test_r17_r18_an_agent_above_the_limit_is_refused_recorded_and_sent_up_once(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, paid_minor=20_000)
        too_much = CompensationOffer(
            action_id="c-1", actor="agent-ann", role=Role.AGENT, amount=eur(5_001),
            reason="scratched casing",
        )  # fmt: skip
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ReturnCase.offer_compensation, too_much)
        again = too_much.model_copy(update={"action_id": "c-3", "amount": eur(6_000)})
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(ReturnCase.offer_compensation, again)
        at_limit = too_much.model_copy(update={"action_id": "c-2", "amount": eur(5_000)})
        granted = await handle.execute_update(ReturnCase.offer_compensation, at_limit)
    assert "R17" in str(refused.value.cause)
    assert granted.escalation.level is EscalationLevel.SUPERVISOR
    assert granted.status is CaseStatus.UNDER_REVIEW
    assert standins.refunded(granted.case_id) == 5_000
    steps = [(s.action, s.actor) for s in standins.steps(granted.case_id)]
    assert steps.count((A.COMPENSATION_REFUSED, "agent-ann")) == 2
    assert steps.count((A.ESCALATED, "agent-ann")) == 1


async def test_r17_r21_a_supervisor_may_grant_above_the_agents_limit_not_above_paid(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, paid_minor=8_000)
        offer = CompensationOffer(
            action_id="c-1", actor="sup-sam", role=Role.SUPERVISOR, amount=eur(7_000),
            reason="goodwill for a late parcel",
        )  # fmt: skip
        granted = await handle.execute_update(ReturnCase.offer_compensation, offer)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                ReturnCase.offer_compensation,
                offer.model_copy(update={"action_id": "c-2", "amount": eur(1_001)}),
            )
    assert granted.refunded_total == eur(7_000)
    assert "R21" in str(refused.value.cause)
    assert standins.refunded(granted.case_id) == 7_000


async def test_r18_an_escalation_goes_to_the_manager_after_24_silent_hours(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue)
        escalated = await handle.execute_update(
            ReturnCase.escalate, escalation("customer threatens a chargeback")
        )
        assert escalated.escalation.level is EscalationLevel.SUPERVISOR
        await env.sleep(timedelta(hours=23, minutes=59))
        still = await handle.query(ReturnCase.state)
        assert still.escalation.level is EscalationLevel.SUPERVISOR
        await env.sleep(timedelta(minutes=2))
        managed = await state_when(handle, lambda s: s.escalation.level is EscalationLevel.MANAGER)
    assert managed.escalation.respond_by is None


async def test_r18_a_supervisor_acting_stops_the_escalation_clock(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue)
        await handle.execute_update(ReturnCase.escalate, escalation("unsure about the photos"))
        approved = await handle.execute_update(
            ReturnCase.decide, decision(True, role=Role.SUPERVISOR)
        )
        await env.sleep(timedelta(days=2))
        later = await handle.query(ReturnCase.state)
    assert approved.escalation.respond_by is None
    assert later.escalation.level is EscalationLevel.SUPERVISOR


async def test_r18_a_major_complaint_goes_straight_to_the_manager(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        await handle.signal(
            ReturnCase.complaint,
            Complaint(event_id="cmp-1", major=True, summary="threatens to go to the press"),
        )
        state = await state_when(handle, lambda s: s.escalation.level is not EscalationLevel.NONE)
    assert state.escalation.level is EscalationLevel.MANAGER
    last = standins.steps(state.case_id)[-1]
    assert (last.action, last.rule_id) == (A.ESCALATED, "R18")


async def test_r16_at_most_three_calls_per_case(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:
    def call(n: int) -> CallRequest:
        return CallRequest(
            action_id=f"call-{n}", actor="agent-ann", role=Role.AGENT, purpose="a clearer photo"
        )

    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)  # first contact: call 1
        await handle.execute_update(ReturnCase.request_call, call(2))
        third = await handle.execute_update(ReturnCase.request_call, call(3))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ReturnCase.request_call, call(4))
        state = await handle.query(ReturnCase.state)
    assert third.calls_scheduled == 3
    assert state.calls_scheduled == 3
    assert "R16" in str(refused.value.cause)


async def test_r14_r16_daily_progress_updates_while_the_case_waits_on_us(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue, time_zone="Asia/Shanghai")
        await env.sleep(timedelta(hours=47))  # under review, before the auto-approval
        state = await state_when(handle, lambda s: s.follow_ups_sent >= 1)
    updates = [m for m in standins.messages.values() if m.template is Template.PROGRESS_UPDATE]
    assert len(updates) == state.follow_ups_sent >= 1
    for update in updates:
        assert time(8) <= update.due_at.astimezone(ZoneInfo("Asia/Shanghai")).time() < time(21)


async def test_a_withdrawal_before_the_parcel_reaches_us_closes_the_case(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request()
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
        await handle.signal(
            ReturnCase.withdraw, Withdrawal(event_id="w-1", reason="found it at a neighbour's")
        )
        result = await handle.result()
    assert result.status is CaseStatus.WITHDRAWN
    last = standins.steps(request.case_id)[-1]
    assert (last.action, last.actor, last.case.status) == (A.WITHDRAWN, "cust-7", "withdrawn")
    assert standins.money == {}
