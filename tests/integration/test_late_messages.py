"""Late, duplicate and out-of-order messages (issue 5): each has a defined outcome, and
none is dropped. A message is either applied as a careful after-sales team would, or
recorded with the reason it changes nothing (`case_events`, `claim_events`), or, once
its workflow is gone, kept for a person (`unmatched_scans`).

- A scan before the customer's shipping notice (R26, R12): the scan counts, the parcel
  is here so it was shipped; no reminder, no abandonment. The notice that follows is
  recorded (`customer_shipped_back`, details.late) and its postage reimbursed (R6, R21).
- A shipping notice or scan before the approval (R26, R12, R13): held (`message_held`)
  and applied at approval, R13 counting from the approval; if the case closes instead,
  recorded for a person, who sends the parcel back (`message_ignored`, R20).
- The inspection scan before the dock scan (R26, R13): the inspection is the receipt
  too; the dock scan is recorded as changing nothing, naming the inspection scan.
- A carrier answer after the claim closed (R15): recorded in the claim's ledger
  (`carrier_answered_after_close`) during the policy's late-answer window (30 days),
  never reopening the claim; one that differs from the outcome is left for a person.
  After the window the workflow is gone (NOT_FOUND) and the receiver keeps the callback.
- The original item after the replacement shipped (R7, R22, R8): an R7 exchange takes it
  as its return leg and settles once; after the case closed, the scan is kept in
  `unmatched_scans`; a damage claim still open records it (`message_ignored`, R26).

Tests elsewhere that cover parts of this: test_return_case_timers.py
(test_duplicate_scans_change_nothing, test_inspection_before_dock_scan_counts_as_receipt,
test_second_inspection_with_another_scan_id_is_recorded_not_applied), test_return_reasons.py
(test_wrong_item_exchange_ships_the_right_item_before_the_wrong_one_is_back) and
test_integration.py (test_scan_for_an_unknown_case_is_refused_and_kept). The recorded
history return_quality_defect_auto_approved is the case these rules fix: its parcel was
shipped, scanned and inspected during review, all ignored, and it closed as abandoned.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.payments import SandboxPaymentProvider
from activities.policy_file import load_policy_file
from activities.warehouse import SandboxWarehouse
from domain.case import (
    CaseKind,
    ExchangeItem,
    Grade,
    Reason,
    Remedy,
    RemedyChoice,
    ReviewDecision,
    Role,
    RootCause,
    ScanEvent,
    ShippedBack,
)
from domain.claim import CarrierAnswer, CarrierClaimRequest, ClaimState, ClaimStatus
from domain.ledger import LedgerAction
from domain.policy_settings import PolicySettings
from domain.sla import SlaClock
from domain.state import CaseStatus, Disposition
from domain.view import CaseView
from infra.case_errors import UnknownCaseError
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eur, eventually
from tests.helpers import Handle, events, open_case, scan, state_when, under_review
from workflows.carrier_claim import CarrierClaim, ClaimRun
from workflows.damage_claim_case import DamageClaimCase
from workflows.exchange_case import ExchangeCase
from workflows.return_case import ReturnCase

ClaimHandle = WorkflowHandle[CarrierClaim, ClaimState]
PARCEL, INSPECTED = ScanEvent.PARCEL_RECEIVED, ScanEvent.INSPECTED
POSTAGE = eur(690)


def approve(root_cause: RootCause | None = None) -> ReviewDecision:
    return ReviewDecision(
        action_id="d-1", actor="agent-ann", role=Role.AGENT, approve=True, root_cause=root_cause
    )


def shipping_notice(event_id: str) -> ShippedBack:
    return ShippedBack(
        event_id=event_id, carrier="DHL", tracking_number="JD0001",
        shipped_at=datetime.now(UTC), postage=POSTAGE,
    )  # fmt: skip


def gateway_for(env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str) -> CaseGateway:
    return CaseGateway(env.client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))


def applied(ledger: list[asyncpg.Record]) -> list[str]:
    """The steps the case took, without the progress updates and escalations that time
    brings (R14, R18)."""
    noise = {"progress_update_sent", "escalated", "message_ignored"}
    return [e["action"] for e in ledger if e["action"] not in noise]


# ---- a scan before the customer shipped (R26, R12) --------------------------------------


async def test_a_dock_scan_before_the_shipping_notice_counts_and_the_late_notice_pays_postage(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R26, R12, R13, R6, R21
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue, reason=Reason.QUALITY_DEFECT)
        await handle.execute_update(ReturnCase.decide, approve())
        await handle.signal(ReturnCase.warehouse_scan, scan(PARCEL, scan_id="dock-1"))
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_INSPECTION)
        # Past both R12 reminders and the ship-back deadline: the parcel is here, so
        # neither a reminder nor the abandonment comes; the R13 inspection is late.
        await env.sleep(timedelta(days=7, hours=1))
        waited = await handle.query(ReturnCase.state)
        await handle.signal(ReturnCase.shipped_back, shipping_notice("ship-late"))
        await state_when(handle, lambda s: s.shipped_back is not None)
        await handle.signal(ReturnCase.warehouse_scan, scan(INSPECTED, grade=Grade.RESELLABLE))
        result = await handle.result()
    assert waited.status is CaseStatus.AWAITING_INSPECTION
    assert waited.reminders_sent == []
    assert [b.clock for b in waited.sla_breaches] == [SlaClock.INSPECTION]
    # R6: the merchant's fault, so the postage the late notice names is reimbursed (R21).
    assert result.status is CaseStatus.REFUNDED
    assert result.refunded_total == eur(5_990) + POSTAGE
    ledger = await events(pool, result.case_id)
    assert applied(ledger)[-5:] == [
        "approved", "parcel_received", "customer_shipped_back", "inspection_passed",
        "refund_issued",
    ]  # fmt: skip
    assert not [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    notice = next(e for e in ledger if e["action"] == LedgerAction.CUSTOMER_SHIPPED_BACK)
    assert (notice["rule_id"], notice["status_after"]) == ("R12", "awaiting_inspection")
    assert notice["details"]["late"] is True
    assert "dock-1" in notice["reason"]
    money = await pool.fetch(
        "SELECT amount_minor FROM money_movements WHERE case_id = $1", result.case_id
    )
    assert [m["amount_minor"] for m in money] == [5_990 + 690]


async def test_a_parcel_sent_before_the_approval_is_held_and_counts_once_approved(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R26, R12, R13, R10
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue, reason=Reason.QUALITY_DEFECT)
        await handle.signal(ReturnCase.shipped_back, shipping_notice("ship-early"))
        await handle.signal(ReturnCase.warehouse_scan, scan(PARCEL, scan_id="dock-early"))
        await state_when(handle, lambda s: s.messages_held == 2)
        await env.sleep(timedelta(hours=40))  # the review takes its time (R10: 48 h)
        approved = await handle.execute_update(ReturnCase.decide, approve())
        # R13 counts from the approval, not from the scan 40 h earlier: 47 h later the
        # inspection is not late yet.
        await env.sleep(timedelta(hours=47))
        before_inspection = await handle.query(ReturnCase.state)
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        result = await handle.result()
    # The update answers with the held messages applied: no ship-back window to wait out.
    assert approved.status is CaseStatus.AWAITING_INSPECTION
    assert approved.messages_held == 0
    assert approved.received_scan_id == "dock-early"
    assert approved.shipped_back is not None
    assert approved.approved_at is not None
    assert approved.inspection_deadline is not None
    assert (
        timedelta(0)
        <= approved.inspection_deadline - (approved.approved_at + timedelta(hours=48))
        < timedelta(minutes=1)
    )
    assert before_inspection.sla_breaches == []
    assert before_inspection.reminders_sent == []
    assert result.status is CaseStatus.REFUNDED
    assert result.refunded_total == eur(5_990) + POSTAGE
    ledger = await events(pool, result.case_id)
    assert applied(ledger)[-7:] == [
        "message_held", "message_held", "approved", "customer_shipped_back",
        "parcel_received", "inspection_passed", "refund_issued",
    ]  # fmt: skip
    held = [e for e in ledger if e["action"] == LedgerAction.MESSAGE_HELD]
    assert [(e["rule_id"], e["status_after"]) for e in held] == [
        ("R12", "under_review"), ("R26", "under_review"),
    ]  # fmt: skip
    received = next(e for e in ledger if e["action"] == LedgerAction.PARCEL_RECEIVED)
    assert received["details"]["scan_id"] == "dock-early"
    assert "counts from the approval" in received["reason"]
    assert not [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]


async def test_a_parcel_held_before_a_rejection_is_left_for_a_person(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R26, R20
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue, reason=Reason.NOT_AS_DESCRIBED)
        await handle.signal(ReturnCase.warehouse_scan, scan(PARCEL, scan_id="dock-early"))
        await state_when(handle, lambda s: s.messages_held > 0)
        await handle.execute_update(
            ReturnCase.decide,
            ReviewDecision(
                action_id="d-1", actor="agent-ann", role=Role.AGENT, approve=False,
                reason="the photos show the item as described",
            ),
        )  # fmt: skip
        result = await handle.result()  # after the R19 dispute window
    assert result.status is CaseStatus.REJECTED
    assert result.held_messages == []
    ledger = await events(pool, result.case_id)
    assert applied(ledger)[-4:] == [
        "message_held", "rejected", "dispute_window_opened", "dispute_window_closed"
    ]  # fmt: skip
    [kept] = [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    assert kept["rule_id"] == "R26"
    assert kept["details"]["message"]["scan_id"] == "dock-early"
    assert "a person sends the parcel back to the customer (R20)" in kept["reason"]


# ---- the inspection scan before the dock scan (R26, R13) --------------------------------


async def test_an_inspection_before_the_dock_scan_is_the_receipt_and_the_dock_scan_is_recorded(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    payments: SandboxPaymentProvider,
) -> None:  # R26, R13, R21
    request = a_request()
    inspected = scan(ScanEvent.INSPECTED, scan_id="qc-early", grade=Grade.RESELLABLE)
    dock = scan(ScanEvent.PARCEL_RECEIVED, scan_id="dock-late")
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await handle.signal(ReturnCase.shipped_back, shipping_notice("ship-1"))
        for message in (inspected, dock, dock):  # the dock scan, late and repeated
            await handle.signal(ReturnCase.warehouse_scan, message)
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert result.received_scan_id == "qc-early"
    assert result.sla_breaches == []  # the inspection was on time: it came first
    assert list(result.seen_messages) == ["ship-1", "qc-early", "dock-late"]
    assert len(payments.calls) == 1
    ledger = await events(pool, request.case_id)
    assert applied(ledger)[-4:] == [
        "customer_shipped_back", "parcel_received", "inspection_passed", "refund_issued",
    ]  # fmt: skip
    received = next(e for e in ledger if e["action"] == LedgerAction.PARCEL_RECEIVED)
    assert received["details"]["scan_id"] == "qc-early"
    assert "inspection scan" in received["reason"]
    [ignored] = [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    assert ignored["rule_id"] == "R26"
    assert ignored["details"]["message"]["scan_id"] == "dock-late"
    assert "after the inspection scan qc-early" in ignored["reason"]
    assert "nothing changes" in ignored["reason"]


# ---- a carrier answer after the claim closed (R15) --------------------------------------


def answer(response_id: str, *, accepted: bool, recovered: int, note: str = "") -> CarrierAnswer:
    return CarrierAnswer(
        response_id=response_id, accepted=accepted, recovered=eur(recovered), note=note
    )


async def claim_when(claim: ClaimHandle, accept: Callable[[ClaimState], bool]) -> ClaimState:
    return await eventually(lambda: claim.query(CarrierClaim.state), accept)


async def test_a_carrier_answer_after_the_claim_closed_is_recorded_and_reopens_nothing(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R15
    env = time_skipping_env
    run = ClaimRun(
        request=CarrierClaimRequest(
            claim_id="claim-late-answers", case_id="damage_claim-LATE-1-r1", carrier="DHL",
            amount=eur(10_000), deadline_counts_from=datetime.now(UTC) - timedelta(days=2),
            policy=PolicySettings(),
        )
    )  # fmt: skip
    async with running_worker(env.client):
        claim: ClaimHandle = await env.client.start_workflow(
            CarrierClaim.run, run, id=run.request.claim_id, task_queue=task_queue
        )
        await claim_when(claim, lambda s: s.status is ClaimStatus.AWAITING_CARRIER)
        first = answer("dhl-1", accepted=True, recovered=8_000)
        # Callbacks in a burst: the first closes the claim, the revised one comes after it,
        # and the repeated one (same id) changes nothing at all.
        for response in (
            first,
            answer("dhl-2", accepted=True, recovered=9_500, note="revised offer"),
            first,
        ):
            await claim.signal(CarrierClaim.carrier_response, response)
        await claim_when(claim, lambda s: len(s.late_responses) == 1)
        await env.sleep(timedelta(days=10))
        resent = first.model_copy(update={"response_id": "dhl-1-resent"})
        await claim.signal(CarrierClaim.carrier_response, resent)
        settled = await claim_when(claim, lambda s: len(s.late_responses) == 2)
        assert settled.closed_at is not None
        # The late-answer window: still listening just before its end...
        window_ends = settled.closed_at + timedelta(days=30)
        await env.sleep(window_ends - await env.get_current_time() - timedelta(minutes=5))
        running = (await claim.describe()).status
        result = await claim.result()
        finished = await claim.describe()
        # ...and gone after it: a callback now must be kept by whoever receives it.
        with pytest.raises(RPCError) as gone:
            await claim.signal(
                CarrierClaim.carrier_response, answer("dhl-3", accepted=False, recovered=0)
            )
    assert running is WorkflowExecutionStatus.RUNNING
    assert finished.close_time is not None
    assert timedelta(0) <= finished.close_time - window_ends < timedelta(minutes=1)
    assert gone.value.status is RPCStatusCode.NOT_FOUND
    assert result.status is ClaimStatus.SETTLED
    assert result.recovered == eur(8_000)
    assert [r.response_id for r in result.late_responses] == ["dhl-2", "dhl-1-resent"]
    rows = await pool.fetch(
        "SELECT action, rule_id, reason, status_after FROM claim_events WHERE claim_id = $1 "
        "ORDER BY seq",
        run.request.claim_id,
    )
    assert [(r["action"], r["status_after"]) for r in rows] == [
        ("claim_filed", "awaiting_carrier"),
        ("carrier_answered", "settled"),
        ("carrier_answered_after_close", "settled"),
        ("carrier_answered_after_close", "settled"),
    ]
    revised, repeated = rows[2]["reason"], rows[3]["reason"]
    assert "dhl-2" in revised
    assert "95.00 EUR" in revised
    assert "a person reconciles it" in revised
    assert "repeats answer dhl-1" in repeated
    assert "nothing changes" in repeated
    claim_row = await pool.fetchrow(
        "SELECT status, recovered_minor, last_seq FROM carrier_claims WHERE claim_id = $1",
        run.request.claim_id,
    )
    assert claim_row is not None
    assert dict(claim_row) == {"status": "settled", "recovered_minor": 8_000, "last_seq": 4}


# ---- the original item after the replacement shipped (R7, R22, R8) ----------------------


async def wrong_item_exchange_approved(
    env: WorkflowEnvironment, task_queue: str, *, new_price: int
) -> tuple[Handle, CaseView]:
    handle = await under_review(
        env, task_queue, kind=CaseKind.EXCHANGE, reason=Reason.WRONG_ITEM,
        exchange_for=ExchangeItem(sku="SKU-42-BLUE", price=eur(new_price)),
    )  # fmt: skip
    approved = await handle.execute_update(ExchangeCase.decide, approve(RootCause.LABEL_ERROR))
    return handle, approved


async def test_the_wrong_item_back_after_the_right_one_shipped_settles_the_exchange_once(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    warehouse: SandboxWarehouse,
    payments: SandboxPaymentProvider,
) -> None:  # R7, R22, R26, R27
    async with running_worker(time_skipping_env.client):
        handle, approved = await wrong_item_exchange_approved(
            time_skipping_env, task_queue, new_price=6_990
        )
        await handle.signal(ExchangeCase.shipped_back, shipping_notice("ship-1"))
        await handle.signal(ExchangeCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ExchangeCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        result = await handle.result()
    # R7: the right item left at the approval, before anything came back.
    assert approved.status is CaseStatus.AWAITING_SHIP_BACK
    [reference] = approved.shipments
    # The original arriving afterwards is the exchange's return leg: inspected, routed
    # (R27), the difference charged once (R22), and the replacement not sent again.
    assert result.status is CaseStatus.EXCHANGED
    assert result.shipments == [reference]
    assert result.inspection is not None
    assert result.inspection.disposition is Disposition.RESTOCK
    assert list(warehouse.shipped.values()) == [("SKU-42-BLUE", 1)]
    assert list(payments.charges.values()) == [eur(1_000)]
    ledger = await events(pool, result.case_id)
    # R7: the wrong item comes back at the merchant's cost, its postage paid back (R6).
    assert applied(ledger)[-9:] == [
        "apology_coupon_issued", "correct_item_shipped", "approved", "customer_shipped_back",
        "parcel_received", "inspection_passed", "price_difference_charged",
        "return_postage_paid", "replacement_shipped",
    ]  # fmt: skip
    replacement = next(e for e in ledger if e["action"] == LedgerAction.REPLACEMENT_SHIPPED)
    assert reference in replacement["reason"]
    shipments = await pool.fetch(
        "SELECT purpose, reference FROM shipments WHERE case_id = $1", result.case_id
    )
    assert [(s["purpose"], s["reference"]) for s in shipments] == [("correct item", reference)]
    money = await pool.fetch(
        "SELECT kind, amount_minor FROM money_movements WHERE case_id = $1", result.case_id
    )
    assert sorted((m["kind"], m["amount_minor"]) for m in money) == [
        ("charge", 1_000),
        ("refund", POSTAGE.amount_minor),
    ]


async def test_the_original_arriving_after_the_case_closed_is_kept_for_a_person(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    warehouse: SandboxWarehouse,
) -> None:  # R7, R12, R26
    env = time_skipping_env
    gateway = gateway_for(env, pool, task_queue)
    async with running_worker(env.client):
        handle, _ = await wrong_item_exchange_approved(env, task_queue, new_price=5_990)
        result = await handle.result()  # never shipped back: closed after the R12 window
        late = scan(ScanEvent.PARCEL_RECEIVED, scan_id=f"{result.case_id}-late")
        with pytest.raises(UnknownCaseError, match="matches no open case"):
            await gateway.scan(result.case_id, late)
    assert result.status is CaseStatus.ABANDONED
    assert list(warehouse.shipped.values()) == [("SKU-42-BLUE", 1)]  # the right item went
    kept = await pool.fetchrow(
        "SELECT barcode, payload, problem FROM unmatched_scans WHERE scan_id = $1", late.scan_id
    )
    assert kept is not None
    assert kept["barcode"] == result.case_id
    assert kept["payload"]["event"] == "parcel_received"
    matched = await pool.fetchval("SELECT count(*) FROM scans WHERE scan_id = $1", late.scan_id)
    assert matched == 0
    assert (await events(pool, result.case_id))[-1]["action"] == LedgerAction.ABANDONED


async def test_a_lost_parcel_turning_up_is_recorded_before_and_kept_after_the_replacement(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    warehouse: SandboxWarehouse,
) -> None:  # R8, R26
    env = time_skipping_env
    request = a_request(kind=CaseKind.DAMAGE_CLAIM, reason=Reason.LOST_IN_TRANSIT)
    gateway = gateway_for(env, pool, task_queue)
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.UNDER_REVIEW)
        await handle.execute_update(DamageClaimCase.decide, approve(RootCause.ROUTE))
        # The lost parcel comes back to the dock while the customer chooses a remedy.
        await handle.signal(
            DamageClaimCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED, scan_id="found-1")
        )
        await eventually(
            lambda: events(pool, request.case_id),
            lambda ledger: any(e["action"] == LedgerAction.MESSAGE_IGNORED for e in ledger),
        )
        await handle.execute_update(
            DamageClaimCase.choose_remedy, RemedyChoice(choice_id="r-1", remedy=Remedy.REPLACEMENT)
        )
        result = await handle.result()
        with pytest.raises(UnknownCaseError):
            await gateway.scan(
                request.case_id, scan(ScanEvent.PARCEL_RECEIVED, scan_id=f"{request.case_id}-2")
            )
    assert result.status is CaseStatus.REPLACED
    assert list(warehouse.shipped.values()) == [("SKU-42", 1)]
    ledger = await events(pool, request.case_id)
    [found] = [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    assert found["rule_id"] == "R26"
    assert found["details"]["message"]["scan_id"] == "found-1"
    assert "no parcel is expected while the case is awaiting_remedy_choice" in found["reason"]
    kept = await pool.fetchval(
        "SELECT count(*) FROM unmatched_scans WHERE barcode = $1", request.case_id
    )
    assert kept == 1
