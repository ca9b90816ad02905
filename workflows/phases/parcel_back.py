"""The item on its way back (returns and exchanges): what each shipping notice and scan
does, whenever it comes (R12, R13, R26, R27).

Messages may come late or out of order; each has a defined outcome (R26):
- a scan before the customer's shipping notice counts: the parcel is here, so it was
  shipped; a notice that comes after it is still recorded (tracking, R6 postage);
- a shipping notice or a scan before the case was approved is held, and applied at
  approval (no ship-back reminders for a parcel already sent; R13 counts from the
  approval); if the case closes instead, it is recorded for a person (the parcel goes
  back, R20);
- an inspection scan before the dock scan counts as the receipt too; the dock scan
  that follows is recorded as changing nothing;
- anything else a case cannot use is recorded with the reason (`message_ignored`)."""

from __future__ import annotations

from temporalio import workflow

from activities.notifications import Template
from domain.case import CaseKind, Reason, Role, ScanEvent, ShippedBack, WarehouseScan
from domain.ledger import LedgerAction
from domain.policy import (
    inspection_clock_start,
    judge_changed_mind_inspection,
    judge_merchant_fault_inspection,
    late_shipped_back_reason,
    missing_items_deduction,
    postage_note,
)
from domain.refusal import Refusal, RefusalKind
from domain.rules import Rule
from domain.state import CaseStatus, Inspection
from workflows.case_desk import CaseDesk

ParcelMessage = WarehouseScan | ShippedBack

BEFORE_RECEIPT = (CaseStatus.AWAITING_SHIP_BACK, CaseStatus.IN_RETURN_TRANSIT)
# What a passed inspection leads to, by the kind whose item comes back.
_PASSED = {CaseKind.RETURN: CaseStatus.REFUND_DUE, CaseKind.EXCHANGE: CaseStatus.EXCHANGE_DUE}
# Received, and the money or the replacement not yet settled.
_AFTER_RECEIPT = (
    CaseStatus.AWAITING_INSPECTION,
    CaseStatus.REFUND_DUE,
    CaseStatus.EXCHANGE_DUE,
)


async def take(desk: CaseDesk, message: ParcelMessage) -> None:
    """Apply a notice or scan if the case expects it now, else record why not."""
    if not await _apply(desk, message):
        await desk.ignore(message, desk.why_nothing_to_do(message))


async def _apply(desk: CaseDesk, message: ParcelMessage, *, held: bool = False) -> bool:
    if isinstance(message, WarehouseScan):
        return await _scanned(desk, message, held=held)
    return await _shipping_notice(desk, message)


async def hold(desk: CaseDesk, message: ParcelMessage) -> None:
    """Before any decision: kept for the approval (R12, R26)."""
    state = desk.state
    state.held_messages.append(message)
    if isinstance(message, WarehouseScan):
        what, rule = f"{message.event.value} scan {message.scan_id}", Rule.R26
        actor, role = _scanner(message), Role.WAREHOUSE
        details = {"scan_id": message.scan_id, "scanned_at": message.scanned_at.isoformat()}
    else:
        what, rule = f"shipping notice {message.event_id}", Rule.R12
        actor, role = state.request.customer.customer_id, Role.CUSTOMER
        details = {"event_id": message.event_id, "shipped_at": message.shipped_at.isoformat()}
    await desk.book.record(
        LedgerAction.MESSAGE_HELD,
        rule=rule,
        reason=f"{what} came while the case is {state.status.value}, before any "
        "decision: held, and applied if the case is approved",
        actor=actor,
        role=role,
        details=details,
    )


async def apply_held(desk: CaseDesk) -> None:
    """The customer shipped, or the parcel even arrived, before the approval: the case
    goes on from there, with no ship-back reminders for a parcel already sent."""
    state = desk.state
    held, state.held_messages = state.held_messages, []
    for message in held:
        if not await _apply(desk, message, held=True):
            await desk.ignore(message, desk.why_nothing_to_do(message))


async def leave_held_for_a_person(desk: CaseDesk) -> None:
    """The case closed with parcel news held from before any decision (R20)."""
    state = desk.state
    held, state.held_messages = state.held_messages, []
    for message in held:
        what = (
            "the parcel reached the dock"
            if isinstance(message, WarehouseScan)
            else "the customer shipped the parcel"
        )
        await desk.ignore(
            message,
            Refusal(
                # A scan answers to R26 wherever it lands; a notice to the closing's R20.
                rule=Rule.R26 if isinstance(message, WarehouseScan) else Rule.R20,
                kind=RefusalKind.CASE_CLOSED,
                text=f"{what} before any decision, and the case closed as "
                f"{state.status.value}: a person sends the parcel back to the customer (R20)",
            ),
        )


async def _shipping_notice(desk: CaseDesk, notice: ShippedBack) -> bool:
    """Apply the customer's shipping notice; False if it changes nothing."""
    state = desk.state
    if state.status is CaseStatus.AWAITING_SHIP_BACK:
        await _shipped(desk, notice)
        return True
    if (
        state.status in _AFTER_RECEIPT
        and state.shipped_back is None
        and state.received_scan_id is not None
    ):
        await _shipped_after_receipt(desk, notice)
        return True
    return False


async def _scanned(desk: CaseDesk, scan: WarehouseScan, *, held: bool) -> bool:
    """Apply a scan if the case expects it now; False if it changes nothing."""
    status = desk.state.status
    match scan.event:
        case ScanEvent.PARCEL_RECEIVED if status in BEFORE_RECEIPT:
            await _received(desk, scan, held=held)
        case ScanEvent.INSPECTED if status in BEFORE_RECEIPT:
            await _received(desk, scan, held=held)
            await _inspected(desk, scan)
        case ScanEvent.INSPECTED if status is CaseStatus.AWAITING_INSPECTION:
            await _inspected(desk, scan)
        case _:
            return False
    return True


async def _shipped_after_receipt(desk: CaseDesk, notice: ShippedBack) -> None:
    state = desk.state
    state.shipped_back = notice
    await desk.book.record(
        LedgerAction.CUSTOMER_SHIPPED_BACK,
        rule=Rule.R12,
        reason=f"handed to {notice.carrier}, "
        + late_shipped_back_reason(state.received_scan_id)
        + postage_note(notice.postage, state.request.paid, state.policy),
        actor=state.request.customer.customer_id,
        role=Role.CUSTOMER,
        details={
            "event_id": notice.event_id,
            "shipped_at": notice.shipped_at.isoformat(),
            "late": True,
        },
    )


async def _shipped(desk: CaseDesk, notice: ShippedBack) -> None:
    state = desk.state
    state.shipped_back = notice
    await desk.book.record(
        LedgerAction.CUSTOMER_SHIPPED_BACK,
        rule=Rule.R12,
        # Not the tracking number: the ledger keeps no personal data but the customer's id.
        reason=f"handed to {notice.carrier}"
        + postage_note(notice.postage, state.request.paid, state.policy),
        status=CaseStatus.IN_RETURN_TRANSIT,
        actor=state.request.customer.customer_id,
        role=Role.CUSTOMER,
        details={"event_id": notice.event_id, "shipped_at": notice.shipped_at.isoformat()},
    )


async def _received(desk: CaseDesk, scan: WarehouseScan, *, held: bool) -> None:
    state = desk.state
    state.received_at = scan.scanned_at
    state.received_scan_id = scan.scan_id
    state.inspection_deadline = (
        inspection_clock_start(scan.scanned_at, workflow.now(), held=held)
        + state.policy.inspection_deadline
    )
    implied = scan.event is ScanEvent.INSPECTED
    reason = (
        "receipt taken from the inspection scan, which came before any dock scan"
        if implied
        else "parcel scanned at the dock"
    )
    if held:
        reason += "; it came before the approval, so R13 counts from the approval"
    await desk.book.record(
        LedgerAction.PARCEL_RECEIVED,
        rule=Rule.R26,
        reason=reason,
        status=CaseStatus.AWAITING_INSPECTION,
        actor=_scanner(scan),
        role=Role.WAREHOUSE,
        details={"scan_id": scan.scan_id, "station": scan.station,
                 "scanned_at": scan.scanned_at.isoformat()},
    )  # fmt: skip


async def _inspected(desk: CaseDesk, scan: WarehouseScan) -> None:
    state, book = desk.state, desk.book
    if scan.grade is None:
        raise ValueError("an inspected scan always has a grade")
    verdict = (
        judge_changed_mind_inspection(scan.grade)
        if state.request.reason is Reason.CHANGED_MIND
        else judge_merchant_fault_inspection(scan.grade)
    )
    deductions = missing_items_deduction(scan.missing_items, state.request.paid.currency)
    state.inspection = Inspection(
        scan_id=scan.scan_id,
        grade=scan.grade,
        deductions=deductions if deductions.amount_minor else None,
        passed=verdict.passed,
        disposition=verdict.disposition,
        reason=verdict.reason,
        inspected_at=scan.scanned_at,
    )
    details = {
        "scan_id": scan.scan_id,
        "station": scan.station,
        "grade": scan.grade.value,
        "disposition": verdict.disposition.value,  # R27
        "photos": len(scan.photos),
        "missing_items": [item.model_dump(mode="json") for item in scan.missing_items],
    }
    if verdict.passed:
        state.refund_deadline = workflow.now() + state.policy.refund_deadline  # R13
    else:
        state.decision_reason = verdict.reason
        await book.notify(Template.INSPECTION_FAILED, reason=verdict.reason)
    await book.record(
        LedgerAction.INSPECTION_PASSED if verdict.passed else LedgerAction.INSPECTION_FAILED,
        rule=Rule.R13 if verdict.passed else Rule.R20,
        reason=verdict.reason,
        status=_PASSED[state.request.kind] if verdict.passed else CaseStatus.REJECTED,
        actor=_scanner(scan),
        role=Role.WAREHOUSE,
        details=details,
    )


def _scanner(scan: WarehouseScan) -> str:
    """Who the ledger records for a scan (R23): the scanner its credential proves. A scan
    that came by no scanner's credential (the demo's seeded scans, a signal sent by hand)
    has no proven scanner, so its station is the most the ledger can name."""
    return scan.scanned_by or scan.station
