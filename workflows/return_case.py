"""ReturnCase: a customer sends an item back for money (reason `changed_mind`)."""

from __future__ import annotations

from temporalio import workflow

from activities.notifications import Template
from domain.case import ScanEvent, ShippedBack, WarehouseScan
from domain.policy import (
    changed_mind_refund,
    check_return_window,
    judge_changed_mind_inspection,
    ship_back_schedule,
)
from domain.state import CaseState, CaseStatus, Inspection
from workflows.case_run import CaseRun
from workflows.steps.casebook import CaseBook
from workflows.steps.refund import refund
from workflows.steps.ship_back import await_ship_back

_BEFORE_RECEIPT = (CaseStatus.AWAITING_SHIP_BACK, CaseStatus.IN_RETURN_TRANSIT)


@workflow.defn
class ReturnCase:
    @workflow.init
    def __init__(self, run: CaseRun) -> None:
        self._run = run
        self._state = run.carried_state or CaseState(
            case_id=workflow.info().workflow_id,
            request=run.request,
            policy=run.policy,
            opened_at=workflow.now(),
            return_deadline=run.request.delivered_at + run.policy.return_window,
        )
        self._book = CaseBook(self._state)

    @workflow.run
    async def run(self, run: CaseRun) -> CaseState:
        state = self._state
        if run.carried_state is None:
            self._book.publish_identity()
            await self._open()
        else:
            self._book.publish()
        while not state.status.is_closed:
            if state.inbox:
                await self._handle(state.inbox.pop(0))
            else:
                await self._wait_for_next_step()
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(run.model_copy(update={"carried_state": state}))
        while state.inbox:
            await self._ignore(state.inbox.pop(0), "the case is already closed")
        return state

    @workflow.signal(name="warehouse_scan")
    def warehouse_scan(self, scan: WarehouseScan) -> None:
        """R26: dock and inspection scans. A repeated scan id changes nothing."""
        self._accept(scan.scan_id, scan)

    @workflow.signal(name="shipped_back")
    def shipped_back(self, notice: ShippedBack) -> None:
        """R12: the customer handed the parcel to a carrier."""
        self._accept(notice.event_id, notice)

    @workflow.query(name="state")
    def state(self) -> CaseState:
        return self._state

    def _accept(self, message_id: str, message: WarehouseScan | ShippedBack) -> None:
        if message_id in self._state.seen_message_ids:
            workflow.logger.info("duplicate message %s ignored", message_id)
            return
        self._state.seen_message_ids.append(message_id)
        self._state.inbox.append(message)

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._run.history_events_before_continue
        )

    async def _open(self) -> None:
        state, book = self._state, self._book
        request = state.request
        await book.record(
            "case_opened",
            rule="R2",
            reason=f"{request.kind.value} ({request.reason.value}) requested via "
            f"{request.channel.value}",
            actor=request.customer.customer_id,
            role="customer",
            details={"channel": request.channel.value, "request_id": request.request_id},
        )
        window = check_return_window(request, state.policy)
        if not window.accepted:
            state.decision_reason = window.reason
            await book.notify(Template.CASE_REFUSED, reason=window.reason or "")
            await book.record(
                "request_refused", rule="R1", reason=window.reason, status=CaseStatus.REFUSED
            )
            return
        await book.notify(Template.CASE_ACKNOWLEDGED)  # R10: acknowledged at once
        state.approved_at = workflow.now()
        state.ship_back_deadline = ship_back_schedule(state.approved_at, state.policy).deadline
        await book.notify(
            Template.SHIP_BACK_INSTRUCTIONS, deadline=state.ship_back_deadline.isoformat()
        )
        await book.record(
            "approved",
            rule="R5",
            reason="a changed-mind return inside the R1 window needs no review; "
            "the inspection decides",
            status=CaseStatus.AWAITING_SHIP_BACK,
        )

    async def _wait_for_next_step(self) -> None:
        state = self._state
        match state.status:
            case CaseStatus.AWAITING_SHIP_BACK:
                if not await await_ship_back(self._book, lambda: bool(state.inbox)):
                    await self._abandon()
            case CaseStatus.REFUND_DUE:
                await self._refund()
            case _:
                await workflow.wait_condition(lambda: bool(state.inbox) or self._history_is_long())

    async def _handle(self, message: WarehouseScan | ShippedBack) -> None:
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
                await self._ignore(message, f"nothing to do while the case is {status.value}")

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
        verdict = judge_changed_mind_inspection(scan.grade)
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
        if verdict.passed:
            await book.record(
                "inspection_passed",
                rule="R13",
                reason=verdict.reason,
                status=CaseStatus.REFUND_DUE,
                actor=scan.station,
                role="warehouse",
                details=details,
            )
            return
        state.decision_reason = verdict.reason
        await book.notify(Template.INSPECTION_FAILED, reason=verdict.reason)
        await book.record(
            "inspection_failed",
            rule="R20",
            reason=verdict.reason,
            status=CaseStatus.REJECTED,
            actor=scan.station,
            role="warehouse",
            details=details,
        )

    async def _refund(self) -> None:
        state = self._state
        amount = changed_mind_refund(state.request.paid, state.policy, state.refunded_total)
        if amount.amount_minor == 0:
            await self._book.record(
                "refund_not_due",
                rule="R21",
                reason="the handling fee leaves nothing to refund",
                status=CaseStatus.REFUNDED,
            )
            return
        await refund(
            self._book,
            amount,
            rule="R21",
            reason=f"passed inspection: {amount} refunded (price less the R5 handling fee)",
        )

    async def _abandon(self) -> None:
        state = self._state
        state.decision_reason = (
            f"R12: the parcel was not handed to a carrier by {state.ship_back_deadline}; "
            "the return is closed and nothing is refunded"
        )
        await self._book.notify(Template.CASE_ABANDONED, reason=state.decision_reason)
        await self._book.record(
            "abandoned", rule="R12", reason=state.decision_reason, status=CaseStatus.ABANDONED
        )

    async def _ignore(self, message: WarehouseScan | ShippedBack, why: str) -> None:
        message_id = message.scan_id if isinstance(message, WarehouseScan) else message.event_id
        await self._book.record(
            "message_ignored",
            rule="R26" if isinstance(message, WarehouseScan) else None,
            reason=f"{type(message).__name__} {message_id}: {why}",
            details={"message": message.model_dump(mode="json")},
        )
