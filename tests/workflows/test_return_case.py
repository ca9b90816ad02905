"""ReturnCase.run, a return's life phase by phase and each reason's branch (R3, R4, R7,
R9), over stand-in activities: no PostgreSQL, days pass in milliseconds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.notifications import Template
from domain.case import (
    Dispute,
    Grade,
    InterceptRequested,
    MissingItem,
    MissingPart,
    OpenCaseRequest,
    ParcelDelivered,
    PartRemedy,
    Reason,
    ReviewDecision,
    Role,
    RootCause,
    ScanEvent,
)
from domain.ledger import LedgerAction as A
from domain.state import CaseStatus, Disposition
from tests.conftest import a_request, eur, eventually
from tests.helpers import (
    Handle,
    open_case,
    photos,
    scan,
    shipped,
    state_when,
    under_review,
)
from tests.workflows.standins import StandIns
from workflows.return_case import ReturnCase
from workflows.search_attributes import NEXT_DEADLINE


async def test_r1_a_request_after_7_days_is_refused_and_recorded(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request(requested_after=timedelta(days=7, minutes=1))
    async with running_worker(time_skipping_env.client):
        result = await (await open_case(time_skipping_env, task_queue, request)).result()
    assert request.delivered_at is not None
    assert result.status is CaseStatus.REFUSED
    assert result.decision_reason is not None
    assert (request.delivered_at + timedelta(days=7)).isoformat() in result.decision_reason
    assert [(s.action, s.rule_id) for s in standins.steps(request.case_id)] == [
        (A.CASE_OPENED, "R2"),
        (A.REQUEST_REFUSED, "R1"),
    ]
    assert Template.CASE_REFUSED in standins.templates(request.case_id)
    assert standins.money == {}


async def test_r1_a_request_at_6_days_23_hours_is_accepted(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:
    request = a_request(requested_after=timedelta(days=6, hours=23))
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        state = await state_when(handle, lambda s: s.status is not CaseStatus.OPENED)
    assert state.status is CaseStatus.AWAITING_SHIP_BACK


async def test_r5_r13_r27_a_changed_mind_return_inspected_resellable_is_refunded_once(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request(paid_minor=12_345)
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await handle.signal(ReturnCase.shipped_back, shipped())
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert result.inspection is not None
    assert result.inspection.disposition is Disposition.RESTOCK
    assert standins.refunded(request.case_id) == result.refunded_total.amount_minor
    assert [m.kind for m in standins.money.values()] == ["refund"]
    assert standins.actions(request.case_id)[-2:] == [A.INSPECTION_PASSED, A.REFUND_ISSUED]


async def test_r5_r20_r27_a_damaged_item_is_rejected_with_its_reason_and_nothing_paid(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request()
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.DAMAGED)
        )
        result = await handle.result()
    assert result.status is CaseStatus.REJECTED
    assert result.decision_reason is not None
    assert "damaged" in result.decision_reason
    assert standins.money == {}
    inspected, *after = [s for s in standins.steps(request.case_id) if s.rule_id in ("R20", "R19")]
    assert (inspected.action, inspected.rule_id) == (A.INSPECTION_FAILED, "R20")
    assert inspected.details["disposition"] == Disposition.RETURN_TO_CUSTOMER.value
    assert [step.action for step in after] == [A.DISPUTE_WINDOW_OPENED, A.DISPUTE_WINDOW_CLOSED]
    failed = [m for m in standins.messages.values() if m.template is Template.INSPECTION_FAILED]
    assert [m.params["reason"] for m in failed] == [result.decision_reason]


async def test_r6_merchant_fault_waits_for_photos_then_goes_to_review(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await open_case(
            time_skipping_env, task_queue, a_request(reason=Reason.NOT_AS_DESCRIBED)
        )
        waiting = await state_when(handle, lambda s: s.status is not CaseStatus.OPENED)
        assert waiting.status is CaseStatus.AWAITING_EVIDENCE
        await handle.signal(ReturnCase.evidence_submitted, photos())
        reviewing = await state_when(handle, lambda s: s.status is CaseStatus.UNDER_REVIEW)
    assert reviewing.photos_received == 1


async def test_r6_no_photos_within_the_evidence_window_abandons_the_case(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request(reason=Reason.QUALITY_DEFECT)
    async with running_worker(time_skipping_env.client):
        result = await (await open_case(time_skipping_env, task_queue, request)).result()
    assert result.status is CaseStatus.ABANDONED
    assert result.decision_reason is not None
    assert "R6" in result.decision_reason
    assert standins.actions(request.case_id)[-1] is A.ABANDONED
    assert standins.money == {}


async def test_r12_reminders_on_day_3_and_6_then_abandoned_on_day_7(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    env = time_skipping_env
    request = a_request()
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, request)
        opened = await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
        approved_at = opened.approved_at
        assert approved_at is not None
        await env.sleep(timedelta(days=2, hours=23, minutes=59))
        assert (await handle.query(ReturnCase.state)).reminders_sent == []
        await env.sleep(timedelta(minutes=2))
        day3 = await state_when(handle, lambda s: len(s.reminders_sent) == 1)
        assert [r.due_at for r in day3.reminders_sent] == [approved_at + timedelta(days=3)]
        await env.sleep(timedelta(days=3))
        day6 = await state_when(handle, lambda s: len(s.reminders_sent) == 2)
        assert day6.reminders_sent[1].due_at == approved_at + timedelta(days=6)
        await env.sleep(timedelta(hours=23, minutes=58))
        assert (await handle.query(ReturnCase.state)).status is CaseStatus.AWAITING_SHIP_BACK
        result = await handle.result()
    assert result.status is CaseStatus.ABANDONED
    assert result.closed_at is not None
    assert (
        timedelta(0) <= result.closed_at - (approved_at + timedelta(days=7)) < timedelta(minutes=1)
    )
    assert standins.actions(request.case_id) == [
        A.CASE_OPENED,
        A.APPROVED,
        A.SHIP_BACK_REMINDER_SENT,
        A.SHIP_BACK_REMINDER_SENT,
        A.ABANDONED,
    ]
    assert standins.templates(request.case_id).count(Template.SHIP_BACK_REMINDER) == 2
    assert standins.money == {}


async def test_r12_shipping_back_stops_the_ship_back_clock(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, a_request())
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
        await env.sleep(timedelta(days=2))
        await handle.signal(ReturnCase.shipped_back, shipped())
        await state_when(handle, lambda s: s.status is CaseStatus.IN_RETURN_TRANSIT)
        await env.sleep(timedelta(days=10))
        state = await handle.query(ReturnCase.state)
    assert state.status is CaseStatus.IN_RETURN_TRANSIT
    assert state.reminders_sent == []


async def test_r26_duplicate_scans_change_nothing_and_pay_once(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request()
    dock = scan(ScanEvent.PARCEL_RECEIVED, scan_id="dock-1")
    graded = scan(ScanEvent.INSPECTED, scan_id="qc-1", grade=Grade.RESELLABLE)
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        for message in (dock, dock, graded, graded, dock):
            await handle.signal(ReturnCase.warehouse_scan, message)
        result = await handle.result()
    assert standins.actions(request.case_id) == [
        A.CASE_OPENED,
        A.APPROVED,
        A.PARCEL_RECEIVED,
        A.INSPECTION_PASSED,
        A.REFUND_ISSUED,
    ]
    assert list(result.seen_messages) == ["dock-1", "qc-1"]
    assert len(standins.money) == 1


async def test_r26_an_inspection_before_the_dock_scan_counts_as_receipt(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request()
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await handle.signal(
            ReturnCase.warehouse_scan,
            scan(ScanEvent.INSPECTED, scan_id="qc-early", grade=Grade.RESELLABLE),
        )
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED, scan_id="dock-late")
        )
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert result.received_scan_id == "qc-early"
    steps = standins.steps(request.case_id)
    ignored = [s.reason or "" for s in steps if s.action is A.MESSAGE_IGNORED]
    assert len(ignored) == 1
    assert "dock-late" in ignored[0]


async def test_r21_missing_accessories_are_deducted_from_the_refund(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request(paid_minor=10_000)
    inspected = scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE).model_copy(
        update={"missing_items": [MissingItem(sku="SKU-42-CHARGER", value=eur(1_500))]}
    )
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await handle.signal(ReturnCase.warehouse_scan, inspected)
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert result.refunded_total == eur(8_500)
    assert standins.refunded(request.case_id) == 8_500


async def test_r21_a_case_continued_as_new_keeps_its_ledger_and_pays_once(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    env = time_skipping_env
    request = a_request()
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, request, history_events_before_continue=10)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
        await env.sleep(timedelta(days=3, hours=1))
        await state_when(handle, lambda s: len(s.reminders_sent) == 1)
        await handle.signal(ReturnCase.shipped_back, shipped())
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        result = await handle.result()
        first_history = await env.client.get_workflow_handle(
            request.case_id, run_id=handle.result_run_id
        ).fetch_history()
    assert first_history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    assert result.status is CaseStatus.REFUNDED
    assert len(result.reminders_sent) == 1
    assert len(standins.money) == 1
    seqs = sorted(standins.ledger[request.case_id])
    assert seqs == list(range(1, len(seqs) + 1))


def in_transit(reason: Reason, paid_minor: int = 5990) -> OpenCaseRequest:
    return a_request(
        delivered_at=datetime.now(UTC) + timedelta(days=2),  # the expected delivery
        requested_after=timedelta(days=-2), carrier="SF", reason=reason, paid_minor=paid_minor,
    )  # fmt: skip


def approve(root_cause: RootCause | None = None) -> ReviewDecision:
    return ReviewDecision(
        action_id="d-1", actor="agent-ann", role=Role.AGENT, approve=True, root_cause=root_cause
    )


async def test_r3_an_order_not_shipped_yet_is_cancelled_and_refunded_at_once(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = in_transit(Reason.NOT_SHIPPED_YET, paid_minor=3_000)
    async with running_worker(time_skipping_env.client):
        result = await (await open_case(time_skipping_env, task_queue, request)).result()
    assert result.status is CaseStatus.REFUNDED
    assert standins.refunded(request.case_id) == 3_000
    assert standins.cancelled == [f"{request.order_id}/1"]
    assert standins.actions(request.case_id) == [
        A.CASE_OPENED,
        A.SHIPMENT_CANCELLED,
        A.REFUND_ISSUED,
    ]


async def test_r3_r4_an_order_that_already_left_waits_for_delivery_and_pays_nothing(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = in_transit(Reason.NOT_SHIPPED_YET)
    standins.already_shipped.add(request.order_id)
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_DELIVERY)
        await handle.signal(
            ReturnCase.parcel_delivered,
            ParcelDelivered(event_id="dlv-1", delivered_at=datetime.now(UTC)),
        )
        result = await handle.result()
    assert result.status is CaseStatus.DELIVERED
    assert standins.money == {}


async def test_r4_a_customer_who_insists_is_refunded_when_the_parcel_is_back(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = in_transit(Reason.NOT_RECEIVED, paid_minor=4_500)
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_DELIVERY)
        await handle.signal(ReturnCase.intercept_requested, InterceptRequested(event_id="i-1"))
        await state_when(handle, lambda s: s.status is CaseStatus.INTERCEPTING)
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert standins.refunded(request.case_id) == 4_500
    assert standins.intercepted == [request.order_id]
    told = [m for m in standins.messages.values() if m.template is Template.EXPECTED_DELIVERY]
    assert request.expected_delivery_at is not None
    assert [m.params["expected"] for m in told] == [request.expected_delivery_at.isoformat()]


async def test_r7_a_wrong_item_return_apologises_with_a_coupon(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, reason=Reason.WRONG_ITEM)
        state = await handle.execute_update(ReturnCase.decide, approve(RootCause.PICKING_ERROR))
    coupons = [m for m in standins.messages.values() if m.template is Template.APOLOGY_COUPON]
    assert [c.params["amount"] for c in coupons] == ["10.00 EUR"]
    assert state.status is CaseStatus.AWAITING_SHIP_BACK
    assert state.merchant_pays_shipping
    apology = [s for s in standins.steps(state.case_id) if s.action is A.APOLOGY_COUPON_ISSUED]
    assert [s.details["root_cause"] for s in apology] == ["picking_error"]


@pytest.mark.parametrize("remedy", [PartRemedy.REFUND, PartRemedy.SHIP])
async def test_r9_r21_a_missing_part_is_refunded_or_sent_and_nothing_comes_back(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    standins: StandIns,
    remedy: PartRemedy,
) -> None:
    part = MissingPart(sku="SKU-42-STRAP", value=eur(1_500), remedy=remedy)
    async with running_worker(time_skipping_env.client):
        handle = await under_review(
            time_skipping_env, task_queue, reason=Reason.MISSING_PARTS, missing_part=part
        )
        await handle.execute_update(ReturnCase.decide, approve())
        result = await handle.result()
    if remedy is PartRemedy.REFUND:
        assert result.status is CaseStatus.REFUNDED
        assert standins.refunded(result.case_id) == 1_500
        assert standins.shipments == {}
    else:
        assert result.status is CaseStatus.REPLACED
        assert standins.money == {}
        assert [(s.sku, s.quantity) for s in standins.shipments.values()] == [("SKU-42-STRAP", 1)]
    assert result.ship_back_deadline is None


# ---- R19: what the view says while a rejection may still be disputed ------------------


async def _next_deadline_attribute(handle: Handle) -> datetime | None:
    """NextDeadline as the case last upserted it, read from its history (the
    time-skipping server does not describe datetime search attributes)."""
    history = await handle.fetch_history()
    upserted = [
        event.upsert_workflow_search_attributes_event_attributes.search_attributes
        for event in history.events
        if event.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    last = next(a for a in reversed(upserted) if NEXT_DEADLINE.name in a.indexed_fields)
    value = json.loads(last.indexed_fields[NEXT_DEADLINE.name].data or b"null")
    return datetime.fromisoformat(value) if isinstance(value, str) else None


async def test_r19_a_rejected_case_waits_for_a_possible_dispute_until_its_deadline(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        case_id = (await handle.query(ReturnCase.state)).case_id
        answer = await handle.execute_update(ReturnCase.decide, ReviewDecision(
            action_id="d-1", actor="agent-ann", role=Role.AGENT, approve=False,
            reason="the photos show wear, not a defect",
        ))  # fmt: skip
        # The read model moves with the ledger's step that opened the window.
        window = await eventually(
            lambda: handle.query(ReturnCase.state),
            lambda _: A.DISPUTE_WINDOW_OPENED in standins.actions(case_id),
        )
        in_window_attribute = await _next_deadline_attribute(handle)
        opened = standins.steps(case_id)[-1]
        result = await handle.result()  # the window passes undisputed
        after_attribute = await _next_deadline_attribute(handle)
    deadline, closed_at = answer.dispute_deadline, answer.closed_at
    assert deadline is not None
    assert closed_at is not None
    # The window opens as the case closes (the same workflow task, give or take the step).
    assert (
        timedelta(0) <= deadline - closed_at - result.policy.dispute_window < timedelta(seconds=5)
    )
    # The decision's answer, the live view, the read model and NextDeadline all say it.
    for view in (answer, window, opened.case.case_view):
        assert view.status is CaseStatus.REJECTED
        assert view.dispute_deadline == deadline
        assert view.next_deadline == deadline
        assert view.waiting_for.startswith("a possible dispute")
        assert f"until {deadline:%Y-%m-%d %H:%M} UTC (R19)" in view.waiting_for
    assert (opened.action, opened.rule_id) == (A.DISPUTE_WINDOW_OPENED, "R19")
    assert opened.case.next_deadline == deadline
    assert in_window_attribute == deadline
    # Once the window passed, the case waits for nothing, and says so everywhere.
    closed = standins.steps(case_id)[-1]
    assert (closed.action, closed.rule_id) == (A.DISPUTE_WINDOW_CLOSED, "R19")
    assert closed.case.waiting_for == "nothing: the case is closed"
    assert closed.case.next_deadline is None
    assert closed.case.case_view.dispute_deadline == deadline  # when the window was
    assert result.next_deadline is None
    assert after_attribute is None


async def test_r19_r18_a_disputed_case_waits_for_the_arbiter_with_the_supervisors_deadline(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, a_request())
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.DAMAGED)
        )
        await state_when(handle, lambda s: s.dispute_deadline is not None)
        await handle.signal(ReturnCase.dispute, Dispute(event_id="dsp-1", reason="unfair"))
        arbitrating = await state_when(handle, lambda s: s.status is CaseStatus.IN_ARBITRATION)
        attribute = await _next_deadline_attribute(handle)
    respond_by = arbitrating.escalation.respond_by
    assert respond_by is not None
    assert "arbiter" in arbitrating.waiting_for
    assert arbitrating.next_deadline == respond_by
    assert attribute == respond_by
