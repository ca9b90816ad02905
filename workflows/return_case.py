"""ReturnCase: money back. Usually the item comes back first (R5, R6, R12, R13, R21);
an order not shipped yet is cancelled and refunded (R3), one still on its way is
awaited or intercepted (R4), and a missing part is refunded or sent (R9)."""

from __future__ import annotations

from temporalio import workflow

from activities.carrier import CarrierActivities, Intercept
from activities.notifications import Template
from activities.warehouse import CancelShipment, WarehouseActivities
from domain.case import (
    InterceptRequested,
    ParcelDelivered,
    PartRemedy,
    Reason,
    ScanEvent,
    WarehouseScan,
)
from domain.ledger import LedgerAction, ShipmentPurpose
from domain.money import Money
from domain.policy import changed_mind_refund, refund_limit
from domain.state import CaseMessage, CaseState, CaseStatus
from workflows.case_run import CaseRun
from workflows.case_workflow import Due
from workflows.item_back_case import ItemBackCase
from workflows.steps.casebook import Approval
from workflows.steps.outside import call_outside
from workflows.steps.payments import Watchdog, refund
from workflows.steps.shipment import send_to_customer


@workflow.defn
class ReturnCase(ItemBackCase):
    @workflow.run
    async def run(self, run: CaseRun) -> CaseState:
        return await self._run_case(run)

    @workflow.signal(name="parcel_delivered")
    def parcel_delivered(self, delivered: ParcelDelivered) -> None:
        """R4: the parcel the customer was waiting for arrived after all."""
        self._accept(delivered)

    @workflow.signal(name="intercept_requested")
    def intercept_requested(self, request: InterceptRequested) -> None:
        """R4: the customer will not wait; return the parcel to sender."""
        self._accept(request)

    async def _after_approval(self, approval: Approval) -> None:
        match self._state.request.reason:
            case Reason.NOT_SHIPPED_YET:
                await self._cancel_before_shipment()
            case Reason.NOT_RECEIVED:
                await self._wait_for_delivery(approval)
            case Reason.MISSING_PARTS:
                await self._make_up_missing_part(approval)
            case Reason.WRONG_ITEM:
                await self._apologise_for_wrong_item()
                await super()._after_approval(approval)
            case _:
                await super()._after_approval(approval)

    def _kind_agenda(self) -> list[Due]:
        state = self._state
        expected = state.request.expected_delivery_at
        if (
            state.status is CaseStatus.AWAITING_DELIVERY
            and expected is not None
            and "R4 delivery" not in state.sla_breaches
        ):
            return [
                Due(expected, "R4 expected delivery", lambda: self._sla_breached("R4 delivery"))
            ]
        return super()._kind_agenda()

    async def _dispatch_kind(self, message: CaseMessage) -> bool:
        status = self._state.status
        match message:
            case ParcelDelivered() if status is CaseStatus.AWAITING_DELIVERY:
                await self._book.record(
                    LedgerAction.PARCEL_DELIVERED,
                    rule="R4",
                    reason=f"delivered {message.delivered_at.isoformat()}: nothing to refund",
                    status=CaseStatus.DELIVERED,
                )
            case InterceptRequested() if status is CaseStatus.AWAITING_DELIVERY:
                await self._intercept()
            case WarehouseScan(event=ScanEvent.PARCEL_RECEIVED) if (
                status is CaseStatus.INTERCEPTING
            ):
                await self._book.record(
                    LedgerAction.PARCEL_BACK,
                    rule="R4",
                    reason="the intercepted parcel is back at the warehouse",
                    status=CaseStatus.REFUND_DUE,
                    actor=message.station,
                    role="warehouse",
                    details={"scan_id": message.scan_id},
                )
            case _:
                return await super()._dispatch_kind(message)
        return True

    async def _cancel_before_shipment(self) -> None:
        request = self._state.request
        cancelled = await call_outside(
            WarehouseActivities.cancel_shipment,
            CancelShipment(order_id=request.order_id, line_id=request.line_id),
            summary=f"cancel shipment of order {request.order_id} line {request.line_id}",
        )
        if cancelled:
            await self._book.record(
                LedgerAction.SHIPMENT_CANCELLED,
                rule="R3",
                reason="not shipped yet: the warehouse stopped it; refund at once",
                status=CaseStatus.REFUND_DUE,
            )
            return
        await self._book.record(
            LedgerAction.ALREADY_SHIPPED,
            rule="R3",
            reason="the parcel had already left: handled as an in-transit case (R4)",
        )
        await self._wait_for_delivery(Approval(rule="R4", reason="the parcel is on its way"))

    async def _wait_for_delivery(self, approval: Approval) -> None:
        expected = self._state.request.expected_delivery_at
        await self._book.notify(
            Template.EXPECTED_DELIVERY,
            expected=expected.isoformat() if expected else "unknown",
        )
        await self._book.record_approved(
            LedgerAction.AWAITING_DELIVERY, approval, status=CaseStatus.AWAITING_DELIVERY
        )

    async def _intercept(self) -> None:
        request = self._state.request
        reference = await call_outside(
            CarrierActivities.intercept,
            Intercept(order_id=request.order_id, carrier=request.carrier or "unknown"),
            summary=f"ask {request.carrier or 'the carrier'} to return the parcel",
        )
        await self._book.record(
            LedgerAction.INTERCEPT_REQUESTED,
            rule="R4",
            reason=f"the customer insists: returned to sender ({reference}); refund once back",
            status=CaseStatus.INTERCEPTING,
            actor=request.customer.customer_id,
            role="customer",
        )

    async def _make_up_missing_part(self, approval: Approval) -> None:
        part = self._state.request.missing_part
        if part is None:  # OpenCaseRequest guarantees it for missing_parts
            raise ValueError("a missing_parts case names its part")
        if part.remedy is PartRemedy.REFUND:
            await self._book.record_approved(
                LedgerAction.APPROVED,
                approval,
                status=CaseStatus.REFUND_DUE,
                reason=f"{approval.reason}; refund the part's value (R9)",
            )
            return
        reference = await send_to_customer(
            self._book, sku=part.sku, quantity=1, purpose=ShipmentPurpose.MISSING_PART
        )
        await self._book.record(
            LedgerAction.MISSING_PART_SHIPPED,
            rule="R9",
            reason=f"{approval.reason}; the missing {part.sku} was sent ({reference})",
            status=CaseStatus.REPLACED,
        )

    async def _act(self) -> bool:
        if self._state.status is not CaseStatus.REFUND_DUE:
            return False
        await self._refund_the_return()
        return True

    def _amount_due(self) -> Money:
        due = self._amount_before_deductions()
        inspection = self._state.inspection
        if inspection is None or inspection.deductions is None:
            return due
        return due.minus_floored_at_zero(inspection.deductions)  # R21

    def _amount_before_deductions(self) -> Money:
        state = self._state
        if state.request.reason is Reason.CHANGED_MIND:
            return changed_mind_refund(state.request.paid, state.policy, state.refunded_total)
        if state.request.missing_part is not None:  # R9: the part's value only
            left = state.request.paid.minus_floored_at_zero(state.refunded_total)
            value = state.request.missing_part.value
            return value if value <= left else left
        # R6 + R21: the merchant's fault refunds the full price and the return postage.
        limit = refund_limit(state.request.paid, state.reimbursed_shipping)
        return limit.minus_floored_at_zero(state.refunded_total)

    def _refund_watchdog(self) -> Watchdog | None:
        deadline = self._state.refund_deadline
        if deadline is None:
            return None
        return Watchdog(deadline, "R13 refund deadline", lambda: self._sla_breached("R13 refund"))

    async def _refund_the_return(self) -> None:
        amount = self._amount_due()
        if amount.amount_minor == 0:
            await self._book.record(
                LedgerAction.REFUND_NOT_DUE,
                rule="R21",
                reason="nothing is left to refund (fees and earlier refunds)",
                status=CaseStatus.REFUNDED,
            )
            return
        state = self._state
        postage = state.reimbursed_shipping
        deducted = state.inspection.deductions if state.inspection else None
        await refund(
            self._book,
            amount,
            watchdog=self._refund_watchdog(),
            rule="R21",
            reason=f"{amount} refunded"
            + (f", including {postage} return postage (R6)" if postage else "")
            + (f", less {deducted} for missing accessories or gifts" if deducted else ""),
        )
