"""The shared case engine on the time-skipping server: evidence, review and its
deadline, authority, escalation, SLA breaches, daily follow-ups and contact hours."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.notifications import RecordingNotifier, Template
from domain.case import (
    ArbitrationRuling,
    Assignment,
    CompensationOffer,
    Complaint,
    Deadline,
    DeadlineExtension,
    Dispute,
    EscalationRequest,
    Grade,
    Reason,
    ReviewDecision,
    Role,
    ScanEvent,
    ShippedBack,
)
from domain.ledger import LedgerAction
from domain.money import Money
from domain.policy_settings import PolicySettings
from domain.sla import SlaClock
from domain.state import CaseState, CaseStatus, EscalationLevel
from tests.conftest import a_request, eur
from tests.helpers import Handle, events, open_case, photos, scan, state_when, under_review
from workflows.return_case import ReturnCase
from workflows.search_attributes import ASSIGNED_AGENT


def decision(
    approve: bool, *, role: Role = Role.AGENT, reason: str | None = None
) -> ReviewDecision:
    return ReviewDecision(
        action_id=f"d-{uuid.uuid4().hex[:6]}", actor="agent-ann", role=role, approve=approve,
        reason=reason,
    )  # fmt: skip


async def test_silence_approves_at_48_hours_and_not_before(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R10, R11
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
    ledger = await events(pool, approved.case_id)
    assert ("approved", "R11") in [(e["action"], e["rule_id"]) for e in ledger]


async def test_agent_rejection_closes_the_case_with_its_reason(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    notifier: RecordingNotifier,
) -> None:  # R10, R20
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        after = await handle.execute_update(
            ReturnCase.decide,
            decision(False, reason="the photos show wear from use, not a defect"),
        )
        result = await handle.result()
    assert after.status is CaseStatus.REJECTED
    assert result.decision_reason == "R20: the photos show wear from use, not a defect"
    rejected = [m for m in notifier.delivered if m.template is Template.CASE_REJECTED]
    assert rejected[0].params["reason"] == result.decision_reason
    assert not result.auto_approved


def test_a_rejection_without_reason_is_refused_at_the_boundary() -> None:  # R20
    with pytest.raises(ValueError, match="R20"):
        decision(False)


async def test_decision_on_a_case_not_under_review_is_refused_without_trace(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R10
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, a_request())
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ReturnCase.decide, decision(True))
        history = await handle.fetch_history()
    assert "not under_review" in str(refused.value.cause)
    assert not any(
        e.HasField("workflow_execution_update_accepted_event_attributes") for e in history.events
    )


async def test_agent_above_the_limit_is_refused_recorded_and_sent_to_a_supervisor(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R17, R18
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
    message = str(refused.value.cause)
    assert "R17" in message
    assert "supervisor must approve" in message
    # Not applied, but kept, and a supervisor now has the case (once, not per attempt).
    assert granted.escalation.level is EscalationLevel.SUPERVISOR
    assert [(r.purpose, r.amount) for r in granted.refunds] == [("compensation", eur(5_000))]
    assert granted.status is CaseStatus.UNDER_REVIEW
    rows = await pool.fetch(
        "SELECT amount_minor FROM money_movements WHERE case_id = $1", granted.case_id
    )
    assert [r["amount_minor"] for r in rows] == [5_000]
    steps = [(e["action"], e["actor"]) for e in await events(pool, granted.case_id)]
    assert steps.count(("compensation_refused", "agent-ann")) == 2
    assert steps.count(("escalated", "agent-ann")) == 1


async def test_escalation_goes_to_the_manager_after_24_silent_hours(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R18
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue)
        escalated = await handle.execute_update(
            ReturnCase.escalate,
            EscalationRequest(action_id="x-1", actor="agent-ann", role=Role.AGENT,
                              reason="customer threatens a chargeback"),
        )  # fmt: skip
        assert escalated.escalation.level is EscalationLevel.SUPERVISOR
        respond_by = escalated.escalation.respond_by
        assert respond_by is not None
        await env.sleep(timedelta(hours=23, minutes=59))
        still = await handle.query(ReturnCase.state)
        assert still.escalation.level is EscalationLevel.SUPERVISOR
        await env.sleep(timedelta(minutes=2))
        managed = await state_when(handle, lambda s: s.escalation.level is EscalationLevel.MANAGER)
    assert managed.escalation.respond_by is None
    assert "did not act" in (managed.escalation.reason or "")


async def test_a_complaint_in_the_customers_words_stays_out_of_the_temporal_ui(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R18, no personal data in the UI
    words = "Jane Roe here, call me on +49 170 5550123"
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        await handle.signal(
            ReturnCase.complaint, Complaint(event_id="cmp-1", major=False, summary=words)
        )
        await state_when(handle, lambda s: s.escalation.level is not EscalationLevel.NONE)
        await handle.execute_update(ReturnCase.decide, decision(False, reason=f"{words}: no"))
        shown = await handle.query("__temporal_workflow_metadata")
    details = shown.current_details
    assert "customer complaint cmp-1" in details
    assert "Decided by: agent-ann" in details
    assert "Jane" not in details
    assert "5550123" not in details
    escalated = await steps(pool, handle.id, "escalated")
    assert escalated[-1]["details"]["complaint"] == words


async def test_uninspected_parcel_escalates_at_48_hours_and_not_before(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:  # R13, R18
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, a_request())
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        received = await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_INSPECTION)
        assert received.inspection_deadline is not None
        now = await env.get_current_time()
        await env.sleep(received.inspection_deadline - now - timedelta(minutes=1))
        assert (await handle.query(ReturnCase.state)).sla_breaches == []
        await env.sleep(timedelta(minutes=2))
        breached = await state_when(handle, lambda s: bool(s.sla_breaches))
    assert [(b.clock, b.rule, b.due_at) for b in breached.sla_breaches] == [
        (SlaClock.INSPECTION, "R13", received.inspection_deadline)
    ]
    # The ledger keeps the breach as data, for the reports (R24), beside the words.
    escalated = await steps(pool, breached.case_id, "escalated")
    assert escalated[-1]["reason"] == "to supervisor: R13 inspection deadline breached"
    assert escalated[-1]["details"]["breach"] == breached.sla_breaches[0].model_dump(mode="json")
    assert breached.escalation.level is EscalationLevel.SUPERVISOR


async def test_daily_progress_updates_while_the_case_waits_on_us(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    notifier: RecordingNotifier,
) -> None:  # R14, R16
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue, time_zone="Asia/Shanghai")
        await env.sleep(timedelta(hours=47))  # under review, before auto-approval
        state = await state_when(handle, lambda s: s.follow_ups_sent >= 1)
    updates = [m for m in notifier.delivered if m.template is Template.PROGRESS_UPDATE]
    assert len(updates) == state.follow_ups_sent >= 1
    shanghai = ZoneInfo("Asia/Shanghai")
    for update in updates:
        assert time(8) <= update.due_at.astimezone(shanghai).time() < time(21)


def _zone_where_it_is_night() -> str:
    """A fixed-offset zone in which it is now between 01:00 and 02:59."""
    now = datetime.now(UTC)
    for offset in range(-12, 15):
        # Etc/GMT zones count the other way round: Etc/GMT-3 is UTC+3.
        zone = f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"
        if 1 <= now.astimezone(ZoneInfo(zone)).hour < 3:
            return zone
    raise AssertionError("some whole-hour offset always has 01:00-02:59")


async def test_a_message_due_at_night_waits_for_the_morning(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    notifier: RecordingNotifier,
) -> None:  # R16
    zone = _zone_where_it_is_night()
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, time_zone=zone)
        await handle.execute_update(ReturnCase.decide, decision(True))
    approved = [m for m in notifier.delivered if m.template is Template.CASE_APPROVED]
    assert len(approved) == 1
    local = approved[0].due_at.astimezone(ZoneInfo(zone))
    assert local.time() == time(8)
    assert local.date() == datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


async def test_first_human_contact_call_falls_in_call_hours(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    notifier: RecordingNotifier,
) -> None:  # R10, R16
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, time_zone="America/New_York")
        state = await handle.query(ReturnCase.state)
    calls = [m for m in notifier.delivered if m.template is Template.AGENT_CALL]
    assert len(calls) == state.calls_scheduled == 1
    local = calls[0].due_at.astimezone(ZoneInfo("America/New_York")).time()
    assert time(10) <= local < time(18)
    assert state.first_contact_by is not None


async def approved_and_sent_back(handle: Handle, *, postage: Money) -> CaseState:
    """R6: a merchant-fault case approved, its parcel sent back with declared postage,
    received and inspected; the case once closed."""
    await handle.execute_update(ReturnCase.decide, decision(True))
    await handle.signal(
        ReturnCase.shipped_back,
        ShippedBack(event_id="ship-1", carrier="DHL", tracking_number="JD9",
                    shipped_at=datetime.now(UTC), postage=postage),
    )  # fmt: skip
    await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
    await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.DAMAGED))
    # A bounded wait: a workflow task failing on the notice would otherwise wait for ever.
    return await asyncio.wait_for(handle.result(), timeout=60)


async def steps(pool: asyncpg.Pool, case_id: str, action: str) -> list[asyncpg.Record]:
    return [e for e in await events(pool, case_id) if e["action"] == action]


async def test_merchant_fault_refund_includes_the_return_postage(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R6, R21
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, paid_minor=10_000)
        result = await approved_and_sent_back(handle, postage=eur(690))
    assert result.status is CaseStatus.REFUNDED
    assert result.refunded_total == eur(10_690)
    assert result.inspection is not None
    assert result.inspection.disposition.value == "return_to_vendor"  # R27
    total = await pool.fetchval(
        "SELECT sum(amount_minor) FROM money_movements WHERE case_id = $1", result.case_id
    )
    assert total == 10_690


async def test_the_query_tells_operators_what_the_case_waits_for_and_by_when(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # operators' view
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        raw = await handle.query("state", result_type=dict)
    assert "review" in raw["waiting_for"]
    assert raw["next_deadline"] is not None
    assert raw["refunded_total"] == {"amount_minor": 0, "currency": "EUR"}


async def test_an_extended_review_deadline_moves_the_auto_approval(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R10, R11, R23
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue)
        extended = await handle.execute_update(
            ReturnCase.extend_deadline,
            DeadlineExtension(action_id="ext-1", actor="sup-sam", role=Role.SUPERVISOR,
                              deadline=Deadline.REVIEW, extend_by=timedelta(days=1),
                              reason="waiting for the lab report"),
        )  # fmt: skip
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                ReturnCase.extend_deadline,
                DeadlineExtension(action_id="ext-2", actor="sup-sam", role=Role.SUPERVISOR,
                                  deadline=Deadline.SHIP_BACK, extend_by=timedelta(days=1),
                                  reason="not running yet"),
            )  # fmt: skip
        await env.sleep(timedelta(hours=71, minutes=58))
        assert (await handle.query(ReturnCase.state)).status is CaseStatus.UNDER_REVIEW
        await env.sleep(timedelta(minutes=4))
        approved = await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
    assert "not running" in str(refused.value.cause)
    assert approved.auto_approved
    assert extended.review_deadline is not None
    ledger = await events(pool, approved.case_id)
    extension = next(e for e in ledger if e["action"] == LedgerAction.DEADLINE_EXTENDED)
    assert "lab report" in extension["reason"]


async def test_assignment_is_visible_to_operators(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        state = await handle.execute_update(
            ReturnCase.assign,
            Assignment(action_id="as-1", actor="sup-sam", role=Role.SUPERVISOR, agent="ann"),
        )
        description = await handle.describe()
    assert state.assigned_agent == "ann"
    assert description.typed_search_attributes.get(ASSIGNED_AGENT) == "ann"


async def test_a_decision_sent_as_the_case_is_due_to_continue_as_new_is_applied(
    dev_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R10, long-lived cases
    # The dev server: no timer to skip, and on the time-skipping server a query sent as
    # the run continues as new timed out.
    env = dev_env
    async with running_worker(env.client):
        request = a_request(reason=Reason.QUALITY_DEFECT)
        handle = await open_case(env, task_queue, request, history_events_before_continue=10)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_EVIDENCE)
        await handle.signal(ReturnCase.evidence_submitted, photos())
        await state_when(handle, lambda s: s.status is CaseStatus.UNDER_REVIEW)
        # A hang here is the defect: the run waited for the update to finish before
        # continuing as new, and the update waited for the run to apply it.
        decided = await asyncio.wait_for(
            handle.execute_update(ReturnCase.decide, decision(True)), timeout=60
        )
        assert decided.status is CaseStatus.AWAITING_SHIP_BACK
        assert decided.decided_by == "agent-ann"
        first_run = env.client.get_workflow_handle(request.case_id, run_id=handle.result_run_id)
        history = await first_run.fetch_history()
        assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")


async def test_postage_in_another_currency_is_recorded_and_not_reimbursed(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R6, R21
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, paid_minor=10_000)
        dollars = Money(amount_minor=500, currency="USD")
        result = await approved_and_sent_back(handle, postage=dollars)
    assert (result.status, result.refunded_total) == (CaseStatus.REFUNDED, eur(10_000))
    shipped_step = await steps(pool, result.case_id, "customer_shipped_back")
    assert "postage 5.00 USD is not in the order's currency (EUR)" in shipped_step[0]["reason"]


async def test_return_postage_is_paid_back_up_to_the_policys_cap(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R6, R21
    capped = PolicySettings(max_return_postage_minor=2_500)
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, policy=capped, paid_minor=10_000)
        result = await approved_and_sent_back(handle, postage=eur(100_000))
    assert (result.status, result.refunded_total) == (CaseStatus.REFUNDED, eur(12_500))
    shipped_step = await steps(pool, result.case_id, "customer_shipped_back")
    assert (
        "postage 1000.00 EUR is above the 25.00 EUR paid back at most" in shipped_step[0]["reason"]
    )


async def test_two_offers_accepted_together_never_refund_past_the_price(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R17, R21
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, paid_minor=8_000)
        offers = [
            CompensationOffer(action_id=f"c-{n}", actor="agent-ann", role=Role.AGENT,
                              amount=eur(5_000), reason="scratched casing, goodwill")
            for n in (1, 2)
        ]  # fmt: skip
        # Both pass validation before either is paid: 50 + 50 > 80.
        await asyncio.gather(
            *(handle.execute_update(ReturnCase.offer_compensation, o) for o in offers)
        )
        state = await state_when(handle, lambda s: len(s.refunds) == 2)
    assert state.status is CaseStatus.UNDER_REVIEW, "the case goes on"
    assert [r.amount for r in state.refunds] == [eur(5_000), eur(3_000)]
    paid = await pool.fetchval(
        "SELECT sum(amount_minor) FROM money_movements WHERE case_id = $1", state.case_id
    )
    assert paid == 8_000
    capped = [e for e in await events(pool, state.case_id) if "capped" in e["reason"]]
    assert len(capped) == 1
    assert "50.00 EUR capped at the 30.00 EUR left" in capped[0]["reason"]


async def test_a_ruling_for_the_customer_refunding_nothing_is_refused(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R19, R21
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        await handle.execute_update(
            ReturnCase.decide, decision(False, reason="photos show wear, not a defect")
        )
        await handle.signal(ReturnCase.dispute, Dispute(event_id="dp-1", reason="it is a defect"))
        await state_when(handle, lambda s: s.status is CaseStatus.IN_ARBITRATION)
        nothing = ArbitrationRuling(
            action_id="ru-1", actor="arb-1", role=Role.ARBITER, favour_customer=True,
            refund=eur(0), reason="the customer is right",
        )  # fmt: skip
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ReturnCase.apply_ruling, nothing)
        assert "refund: a ruling for the customer refunds more than 0" in str(refused.value.cause)
        everything = nothing.model_copy(update={"action_id": "ru-2", "refund": None})
        ruled = await handle.execute_update(ReturnCase.apply_ruling, everything)
    assert (ruled.status, ruled.refunded_total) == (CaseStatus.REFUNDED, ruled.paid)
