"""What returns and exchanges share: the item comes back (R12), is scanned at the dock
and inspected (R13, R26), and is routed (R27). Each kind says what a passed inspection
leads to."""

from __future__ import annotations

from temporalio import workflow

from activities.notifications import Template
from domain.case import Reason, ScanEvent, ShippedBack, WarehouseScan
from domain.policy import (
    judge_changed_mind_inspection,
    judge_merchant_fault_inspection,
    missing_items_deduction,
)
from domain.state import CaseMessage, CaseStatus, Inspection
from workflows.case_workflow import CaseWorkflow, Due
from workflows.steps.casebook import Approval
from workflows.steps.ship_back import (
    next_ship_back_due,
    open_ship_back_window,
    ship_back_moment_passed,
)

_BEFORE_RECEIPT = (CaseStatus.AWAITING_SHIP_BACK, CaseStatus.IN_RETURN_TRANSIT)


class ItemBackCase(CaseWorkflow):
    # What a passed inspection leads to: REFUND_DUE for a return, EXCHANGE_DUE for an
    # exchange; the kind's `_act` takes it from there.
    _after_passed_inspection = CaseStatus.REFUND_DUE

    @workflow.signal(name="warehouse_scan")
    def warehouse_scan(self, scan: WarehouseScan) -> None:
        """R26: dock and inspection scans. A repeated scan id changes nothing."""
        self._accept(scan)

    @workflow.signal(name="shipped_back")
    def shipped_back(self, notice: ShippedBack) -> None:
        """R12: the customer handed the parcel to a carrier."""
        self._accept(notice)

    def _kind_agenda(self) -> list[Due]:
        state = self._state
        if state.status is CaseStatus.AWAITING_SHIP_BACK:
            at, label = next_ship_back_due(state)
            return [Due(at, label, lambda: ship_back_moment_passed(self._book))]
        if (
            state.status is CaseStatus.AWAITING_INSPECTION
            and state.inspection_deadline is not None
            and "R13 inspection" not in state.sla_breaches
            and self._sla_timers()
        ):
            return [
                Due(
                    state.inspection_deadline,
                    "R13 inspection deadline",
                    lambda: self._sla_breached("R13 inspection"),
                )
            ]
        return []

    async def _after_approval(self, approval: Approval) -> None:
        await open_ship_back_window(self._book, approval)

    async def _dispatch_kind(self, message: CaseMessage) -> bool:
        status = self._state.status
        match message:
            case ShippedBack() if status is CaseStatus.AWAITING_SHIP_BACK:
                await self._shipped(message)
            case WarehouseScan(event=ScanEvent.PARCEL_RECEIVED) if status in _BEFORE_RECEIPT:
                await self._received(message)
            case WarehouseScan(event=ScanEvent.INSPECTED) if status in _BEFORE_RECEIPT:
                await self._received(message)
                await self._inspected(message)
            case WarehouseScan(event=ScanEvent.INSPECTED) if (
                status is CaseStatus.AWAITING_INSPECTION
            ):
                await self._inspected(message)
            case _:
                return False
        return True

    async def _shipped(self, notice: ShippedBack) -> None:
        self._state.shipped_back = notice
        await self._book.record(
            "customer_shipped_back",
            rule="R12",
            reason=f"handed to {notice.carrier}, tracking {notice.tracking_number}",
            status=CaseStatus.IN_RETURN_TRANSIT,
            actor=self._state.request.customer.customer_id,
            role="customer",
            details={"event_id": notice.event_id, "shipped_at": notice.shipped_at.isoformat()},
        )

    async def _received(self, scan: WarehouseScan) -> None:
        state = self._state
        state.received_at = scan.scanned_at
        state.received_scan_id = scan.scan_id
        # R13 counts from the dock scan; a scanner clock ahead of ours cannot extend it.
        state.inspection_deadline = (
            min(scan.scanned_at, workflow.now()) + state.policy.inspection_deadline
        )
        implied = scan.event is ScanEvent.INSPECTED
        await self._book.record(
            "parcel_received",
            rule="R26",
            reason="receipt taken from the inspection scan, which came before any dock scan"
            if implied
            else "parcel scanned at the dock",
            status=CaseStatus.AWAITING_INSPECTION,
            actor=scan.station,
            role="warehouse",
            details={"scan_id": scan.scan_id, "scanned_at": scan.scanned_at.isoformat()},
        )

    async def _inspected(self, scan: WarehouseScan) -> None:
        state, book = self._state, self._book
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
            "inspection_passed" if verdict.passed else "inspection_failed",
            rule="R13" if verdict.passed else "R20",
            reason=verdict.reason,
            status=self._after_passed_inspection if verdict.passed else CaseStatus.REJECTED,
            actor=scan.station,
            role="warehouse",
            details=details,
        )
