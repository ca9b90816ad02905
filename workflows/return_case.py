"""ReturnCase: money back. Usually the item comes back first (R5, R6, R12, R13, R21);
an order not shipped yet is cancelled and refunded (R3), one still on its way is
awaited or intercepted (R4), and a missing part is refunded or sent (R9).

Its life is `ReturnCase.run`, read top to bottom. Each phase runs only while the case is
in it, so a run resumed after continue-as-new goes on at the phase it was in."""

from __future__ import annotations

from temporalio import workflow

from activities.carrier import CarrierActivities, Intercept
from activities.notifications import Template
from activities.outside import NoType, OutsideNo
from activities.warehouse import CancelShipment, WarehouseActivities
from domain.case import (
    InterceptRequested,
    ParcelDelivered,
    PartRemedy,
    Reason,
    Role,
    ScanEvent,
    ShippedBack,
    WarehouseScan,
)
from domain.ledger import LedgerAction, ShipmentPurpose
from domain.money import Money
from domain.policy import changed_mind_refund, refund_limit
from domain.rules import Rule
from domain.sla import SlaClock
from domain.state import CaseState, CaseStatus
from workflows.case_desk import Due, Woke
from workflows.case_handlers import ItemBackHandlers
from workflows.case_run import CaseRun
from workflows.phases import parcel_back
from workflows.phases.after_close import after_close
from workflows.phases.inspection import inspection
from workflows.phases.opening import open_case
from workflows.phases.review import review
from workflows.phases.ship_back import open_ship_back_window, ship_back
from workflows.phases.wrong_item import apologise_for_wrong_item
from workflows.steps.casebook import Approval
from workflows.steps.escalation import sla_breached
from workflows.steps.outside import call_or_no
from workflows.steps.payments import Watchdog, refund
from workflows.steps.shipment import send_to_customer


@workflow.defn
class ReturnCase(ItemBackHandlers):
    @workflow.run
    async def run(self, run: CaseRun) -> CaseState:
        desk = self._desk
        # 1. Open (R1, R2): refused, approved at once (R3, R4, R5), or to be reviewed.
        approval = await open_case(desk, window_applies=True)
        # 2. Evidence and review (R6, R10, R11); parcel news meanwhile is held (R12, R26).
        approval = await review(desk, holds_parcels=True) or approval
        # 3. What the approval leads to depends on the reason (R3, R4, R7, R9).
        if approval is not None:
            match self._state.request.reason:
                case Reason.NOT_SHIPPED_YET:
                    await self._cancel_before_shipment()  # R3, or R4 if it already left
                case Reason.NOT_RECEIVED:
                    await self._expect_delivery(approval)  # R4
                case Reason.MISSING_PARTS:
                    await self._make_up_missing_part(approval)  # R9
                case Reason.WRONG_ITEM:
                    await apologise_for_wrong_item(desk)  # R7
                    await open_ship_back_window(desk, approval)
                case _:
                    await open_ship_back_window(desk, approval)
        # 4. The parcel the customer still waits for: delivered, or intercepted (R4).
        await self._awaiting_delivery()
        # 5. Ship back (R12), then receipt and inspection (R13, R26, R27).
        await ship_back(desk)
        await inspection(desk)
        # 6. Settle (R13, R21): the refund, less what did not come back.
        await self._settle()
        # 7. After the close: dispute window (R19), survey (R25).
        return await after_close(desk)

    @workflow.signal
    def parcel_delivered(self, delivered: ParcelDelivered) -> None:
        """R4: the parcel the customer was waiting for arrived after all."""
        self._inbox.accept(delivered)

    @workflow.signal
    def intercept_requested(self, request: InterceptRequested) -> None:
        """R4: the customer will not wait; return the parcel to sender."""
        self._inbox.accept(request)

    # ---- 3. the approval, by reason ---------------------------------------------------

    async def _cancel_before_shipment(self) -> None:
        """R3: stop the parcel at the warehouse, and refund at once."""
        book, request = self._desk.book, self._state.request
        cancelled = await call_or_no(
            WarehouseActivities.cancel_shipment,
            CancelShipment(order_id=request.order_id, line_id=request.line_id),
            summary=f"cancel shipment of order {request.order_id} line {request.line_id}",
            refused=NoType.SHIPMENT_REFUSED,
        )
        if cancelled is True:
            await book.record(
                LedgerAction.SHIPMENT_CANCELLED,
                rule=Rule.R3,
                reason="not shipped yet: the warehouse stopped it; refund at once",
                status=CaseStatus.REFUND_DUE,
            )
            return
        # The warehouse's unknown answer is taken as "it left": the customer is told the
        # expected date, and a parcel that never comes breaches R4's clock for a person.
        unknown = f" ({cancelled.reason})" if isinstance(cancelled, OutsideNo) else ""
        await book.record(
            LedgerAction.ALREADY_SHIPPED,
            rule=Rule.R3,
            reason=f"the parcel had already left{unknown}: handled as an in-transit case (R4)",
        )
        await self._expect_delivery(Approval(rule=Rule.R4, reason="the parcel is on its way"))

    async def _expect_delivery(self, approval: Approval) -> None:
        """R4: tell the customer the expected date, and wait for it."""
        book = self._desk.book
        expected = self._state.request.expected_delivery_at
        await book.notify(
            Template.EXPECTED_DELIVERY,
            expected=expected.isoformat() if expected else "unknown",
        )
        await book.record_approved(
            LedgerAction.AWAITING_DELIVERY, approval, status=CaseStatus.AWAITING_DELIVERY
        )

    async def _make_up_missing_part(self, approval: Approval) -> None:
        """R9: the part's value refunded, or the part sent."""
        book = self._desk.book
        part = self._state.request.missing_part
        if part is None:  # OpenCaseRequest guarantees it for missing_parts
            raise ValueError("a missing_parts case names its part")
        if part.remedy is PartRemedy.REFUND:
            await book.record_approved(
                LedgerAction.APPROVED,
                approval,
                status=CaseStatus.REFUND_DUE,
                reason=f"{approval.reason}; refund the part's value (R9)",
            )
            return
        reference = await send_to_customer(
            book, sku=part.sku, quantity=1, purpose=ShipmentPurpose.MISSING_PART, rule=Rule.R9
        )
        if isinstance(reference, OutsideNo):
            await book.record_approved(
                LedgerAction.APPROVED,
                approval,
                status=CaseStatus.REFUND_DUE,
                reason=f"{approval.reason}; the part could not be sent: refund its value (R9)",
            )
            return
        await book.record(
            LedgerAction.MISSING_PART_SHIPPED,
            rule=Rule.R9,
            reason=f"{approval.reason}; the missing {part.sku} was sent ({reference})",
            status=CaseStatus.REPLACED,
        )

    # ---- 4. R4: the parcel on its way to the customer ---------------------------------

    async def _awaiting_delivery(self) -> None:
        """Waits in awaiting_delivery and intercepting for: the delivery, the customer's
        interception request, the parcel back at the dock, the expected date. Applies:
        delivered, intercepting, refund_due once back (R4), an escalation past the date."""
        desk, state = self._desk, self._state
        while state.status in (CaseStatus.AWAITING_DELIVERY, CaseStatus.INTERCEPTING):
            turn = await desk.next(
                (ParcelDelivered, InterceptRequested, WarehouseScan), self._delivery_due
            )
            match turn:
                case Woke.DEADLINE if state.request.expected_delivery_at is not None:
                    await sla_breached(
                        desk.book, SlaClock.EXPECTED_DELIVERY, state.request.expected_delivery_at
                    )
                case ParcelDelivered() if state.status is CaseStatus.AWAITING_DELIVERY:
                    await desk.book.record(
                        LedgerAction.PARCEL_DELIVERED,
                        rule=Rule.R4,
                        reason=f"delivered {turn.delivered_at.isoformat()}: nothing to refund",
                        status=CaseStatus.DELIVERED,
                    )
                case InterceptRequested() if state.status is CaseStatus.AWAITING_DELIVERY:
                    await self._intercept()
                case WarehouseScan(event=ScanEvent.PARCEL_RECEIVED) if (
                    state.status is CaseStatus.INTERCEPTING
                ):
                    await desk.book.record(
                        LedgerAction.PARCEL_BACK,
                        rule=Rule.R4,
                        reason="the intercepted parcel is back at the warehouse",
                        status=CaseStatus.REFUND_DUE,
                        actor=turn.station,
                        role=Role.WAREHOUSE,
                        details={"scan_id": turn.scan_id},
                    )
                case ParcelDelivered() | InterceptRequested() | WarehouseScan():
                    await desk.ignore(turn, desk.why_nothing_to_do(turn))

    def _delivery_due(self) -> Due | None:
        state = self._state
        expected = state.request.expected_delivery_at
        if (
            state.status is not CaseStatus.AWAITING_DELIVERY
            or expected is None
            or state.breached(SlaClock.EXPECTED_DELIVERY)
        ):
            return None
        return Due(expected, "R4 expected delivery")

    async def _intercept(self) -> None:
        request = self._state.request
        reference = await call_or_no(
            CarrierActivities.intercept,
            Intercept(order_id=request.order_id, carrier=request.carrier or "unknown"),
            summary=f"ask {request.carrier or 'the carrier'} to return the parcel",
            refused=NoType.INTERCEPT_REFUSED,
        )
        if isinstance(reference, OutsideNo):
            await self._desk.book.record(
                LedgerAction.INTERCEPT_REFUSED,
                rule=Rule.R4,
                reason=f"the carrier cannot return the parcel ({reference.reason}): it is "
                "still on its way, expected as told",
                details={"answer": reference.answer},
            )
            return
        await self._desk.book.record(
            LedgerAction.INTERCEPT_REQUESTED,
            rule=Rule.R4,
            reason=f"the customer insists: returned to sender ({reference}); refund once back",
            status=CaseStatus.INTERCEPTING,
            actor=request.customer.customer_id,
            role=Role.CUSTOMER,
        )

    # ---- 6. settle --------------------------------------------------------------------

    async def _settle(self) -> None:
        """The refund is due now; messages already in are applied first (a late shipping
        notice adds its postage, R6). Waits in refund_due for nothing but those; applies
        refunded (R21)."""
        desk = self._desk
        while self._state.status is CaseStatus.REFUND_DUE:
            turn = await desk.next((ShippedBack,), until_inbox_empty=True)
            match turn:
                case Woke.INBOX_EMPTY:
                    await self._refund_the_return()
                case ShippedBack():
                    await parcel_back.take(desk, turn)

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
        return Watchdog(
            deadline,
            "R13 refund deadline",
            lambda: sla_breached(self._desk.book, SlaClock.REFUND, deadline),
        )

    async def _refund_the_return(self) -> None:
        book = self._desk.book
        amount = self._amount_due()
        if amount.amount_minor == 0:
            await book.record(
                LedgerAction.REFUND_NOT_DUE,
                rule=Rule.R21,
                reason="nothing is left to refund (fees and earlier refunds)",
                status=CaseStatus.REFUNDED,
                details={"refund_for_rule": Rule.R21},
            )
            return
        state = self._state
        postage = state.reimbursed_shipping
        deducted = state.inspection.deductions if state.inspection else None
        await refund(
            self._desk,
            amount,
            watchdog=self._refund_watchdog(),
            rule=Rule.R21,
            reason=f"{amount} refunded"
            + (f", including {postage} return postage (R6)" if postage else "")
            + (f", less {deducted} for missing accessories or gifts" if deducted else ""),
        )
