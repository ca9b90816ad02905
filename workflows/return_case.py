"""ReturnCase: the customer sends an item back for money (R5, R6, R12, R13, R21)."""

from __future__ import annotations

from temporalio import workflow

from activities.notifications import Template
from domain.case import Reason, ScanEvent, ShippedBack, WarehouseScan
from domain.money import Money
from domain.policy import (
    changed_mind_refund,
    judge_changed_mind_inspection,
    judge_merchant_fault_inspection,
    refund_limit,
)
from domain.state import CaseMessage, CaseState, CaseStatus, Inspection
from workflows.case_run import CaseRun
from workflows.case_workflow import CaseWorkflow, Due
from workflows.steps.refund import refund
from workflows.steps.ship_back import (
    next_ship_back_due,
    open_ship_back_window,
    ship_back_moment_passed,
)

_BEFORE_RECEIPT = (CaseStatus.AWAITING_SHIP_BACK, CaseStatus.IN_RETURN_TRANSIT)


@workflow.defn
class ReturnCase(CaseWorkflow):
    @workflow.run
    async def run(self, run: CaseRun) -> CaseState:
        return await self._run_case(run)

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

    async def _act(self) -> bool:
        if self._state.status is not CaseStatus.REFUND_DUE:
            return False
        await self._refund_the_return()
        return True

    async def _after_approval(self, *, rule: str, reason: str) -> None:
        await open_ship_back_window(self._book, rule=rule, reason=reason)

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
        state.inspection = Inspection(
            scan_id=scan.scan_id,
            grade=scan.grade,
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
        }
        if not verdict.passed:
            state.decision_reason = verdict.reason
            await book.notify(Template.INSPECTION_FAILED, reason=verdict.reason)
        await book.record(
            "inspection_passed" if verdict.passed else "inspection_failed",
            rule="R13" if verdict.passed else "R20",
            reason=verdict.reason,
            status=CaseStatus.REFUND_DUE if verdict.passed else CaseStatus.REJECTED,
            actor=scan.station,
            role="warehouse",
            details=details,
        )

    def _amount_due(self) -> Money:
        state = self._state
        if state.request.reason is Reason.CHANGED_MIND:
            return changed_mind_refund(state.request.paid, state.policy, state.refunded_total)
        # R6 + R21: the merchant's fault refunds the full price and the return postage.
        limit = refund_limit(state.request.paid, state.reimbursed_shipping)
        return limit.minus_floored_at_zero(state.refunded_total)

    async def _refund_the_return(self) -> None:
        amount = self._amount_due()
        if amount.amount_minor == 0:
            await self._book.record(
                "refund_not_due",
                rule="R21",
                reason="nothing is left to refund (fees and earlier refunds)",
                status=CaseStatus.REFUNDED,
            )
            return
        postage = self._state.reimbursed_shipping
        await refund(
            self._book,
            amount,
            rule="R21",
            reason=f"passed inspection: {amount} refunded"
            + (f", including {postage} return postage (R6)" if postage else ""),
        )
