"""ExchangeCase (R22): the item comes back, the replacement goes out, and the price
difference is charged or refunded. Out of stock becomes a refund only with the
customer's consent; without it the case waits for stock.

Its life is `ExchangeCase.run`, read top to bottom. Each phase runs only while the case
is in it, so a run resumed after continue-as-new goes on at the phase it was in."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from activities.notifications import Template
from activities.outside import NoType, OutsideNo
from activities.warehouse import StockQuery, WarehouseActivities
from domain.case import ExchangeItem, Reason, RefundConsent, ShippedBack
from domain.ledger import LedgerAction, RefundPurpose, ShipmentPurpose
from domain.policy import price_difference, refund_limit
from domain.rules import Rule
from domain.state import CaseState, CaseStatus
from domain.view import CaseView
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
from workflows.steps.outside import call_or_no
from workflows.steps.payments import charge, refund
from workflows.steps.shipment import send_to_customer

_STOCK_CHECK_INTERVAL = timedelta(days=1)
_EXCHANGING = (
    CaseStatus.EXCHANGE_DUE,
    CaseStatus.AWAITING_REFUND_CONSENT,
    CaseStatus.WAITING_FOR_STOCK,
)
_OUT_OF_STOCK = (CaseStatus.AWAITING_REFUND_CONSENT, CaseStatus.WAITING_FOR_STOCK)


@workflow.defn
class ExchangeCase(ItemBackHandlers):
    @workflow.run
    async def run(self, run: CaseRun) -> CaseState:
        desk = self._desk
        # 1. Open (R1, R2), then evidence and review (R6, R10, R11); parcel news meanwhile
        #    is held (R12, R26).
        approval = await open_case(desk, window_applies=True)
        approval = await review(desk, holds_parcels=True) or approval
        # 2. Approved: a wrong item's replacement leaves at once (R7); the window to send
        #    the item back opens.
        if approval is not None:
            if self._state.request.reason is Reason.WRONG_ITEM:
                await self._send_the_right_item_at_once()
            await open_ship_back_window(desk, approval)
        # 3. Ship back (R12), then receipt and inspection (R13, R26, R27).
        await ship_back(desk)
        await inspection(desk)
        # 4. Settle (R22): the replacement and the price difference, or, out of stock, a
        #    refund with the customer's consent, else wait for stock.
        await self._exchange_or_wait_for_stock()
        # 5. After the close: dispute window (R19), survey (R25).
        return await after_close(desk)

    @workflow.update
    async def consent_to_refund(self, consent: RefundConsent) -> CaseView:
        """R22: the customer accepts (or declines) a refund for an out-of-stock item."""
        return await self._inbox.accept_and_wait(consent)

    @consent_to_refund.validator
    def _validate_consent(self, consent: RefundConsent) -> None:
        if self._state.status not in _OUT_OF_STOCK:
            self._refuse_status(
                consent, "; consent is asked only when the replacement is out of stock (R22)"
            )

    @property
    def _item(self) -> ExchangeItem:
        item = self._state.request.exchange_for
        if item is None:  # OpenCaseRequest guarantees it for exchanges
            raise ValueError("an exchange names its replacement")
        return item

    # ---- 2. R7: the right item first --------------------------------------------------

    async def _send_the_right_item_at_once(self) -> None:
        book = self._desk.book
        await apologise_for_wrong_item(self._desk)
        reference = await send_to_customer(
            book, sku=self._item.sku, quantity=self._state.request.quantity,
            purpose=ShipmentPurpose.CORRECT_ITEM, rule=Rule.R7,
        )  # fmt: skip
        if isinstance(reference, OutsideNo):
            return  # recorded; the exchange sends it, or asks for consent, at settlement
        await book.record(
            LedgerAction.CORRECT_ITEM_SHIPPED, rule=Rule.R7,
            reason=f"{self._item.sku} sent at once ({reference}), before the wrong one "
            "comes back",
        )  # fmt: skip

    # ---- 4. settle --------------------------------------------------------------------

    async def _exchange_or_wait_for_stock(self) -> None:
        """Waits in exchange_due, awaiting_refund_consent and waiting_for_stock for: the
        customer's consent to a refund, the consent deadline, the next stock check.
        Applies: exchanged, awaiting_refund_consent, waiting_for_stock, refunded (R22)."""
        desk, state = self._desk, self._state
        while state.status in _EXCHANGING:
            turn = await desk.next(
                (RefundConsent, ShippedBack),
                self._stock_due,
                until_inbox_empty=state.status is CaseStatus.EXCHANGE_DUE,
            )
            match turn:
                case Woke.DEADLINE if state.status is CaseStatus.AWAITING_REFUND_CONSENT:
                    await self._wait_for_stock(
                        "no consent to a refund by the deadline, so no refund"
                    )
                case Woke.DEADLINE | Woke.INBOX_EMPTY:
                    await self._try_to_exchange()
                case RefundConsent() if state.status in _OUT_OF_STOCK:
                    if turn.consent:
                        await self._refund_instead()
                    else:
                        await self._wait_for_stock("the customer prefers to wait for the item")
                case ShippedBack():
                    await parcel_back.take(desk, turn)
                case RefundConsent():
                    await desk.ignore(turn, desk.why_nothing_to_do(turn))

    def _stock_due(self) -> Due | None:
        state = self._state
        if state.status is CaseStatus.AWAITING_REFUND_CONSENT and state.consent_deadline:
            return Due(state.consent_deadline, "R22 refund consent deadline")
        if state.status is CaseStatus.WAITING_FOR_STOCK and state.next_stock_check:
            return Due(state.next_stock_check, "R22 check stock again")
        return None

    async def _try_to_exchange(self) -> None:
        state, item = self._state, self._item
        if state.shipments:  # R7: already sent at approval
            await self._exchange(state.shipments[-1])
            return
        in_stock = await call_or_no(
            WarehouseActivities.check_stock,
            StockQuery(sku=item.sku, quantity=state.request.quantity),
            summary=f"is {item.sku} in stock?",
            refused=NoType.SHIPMENT_REFUSED,
        )
        sent = None
        if in_stock is True:
            sent = await send_to_customer(
                self._desk.book, sku=item.sku, quantity=state.request.quantity,
                purpose=ShipmentPurpose.EXCHANGE, rule=Rule.R22,
            )  # fmt: skip
        if isinstance(sent, str):
            await self._exchange(sent)
            return
        # Out of stock, the stock's answer unknown, or the warehouse would not send it.
        if state.status is CaseStatus.WAITING_FOR_STOCK:
            await self._wait_for_stock("still out of stock")
            return
        state.consent_deadline = workflow.now() + state.policy.remedy_choice_window
        await self._desk.book.notify(
            Template.REFUND_CONSENT_REQUESTED, deadline=state.consent_deadline.isoformat()
        )
        await self._desk.book.record(
            LedgerAction.REFUND_CONSENT_REQUESTED,
            rule=Rule.R22,
            reason=f"{item.sku} is out of stock; a refund needs the customer's consent",
            status=CaseStatus.AWAITING_REFUND_CONSENT,
        )

    async def _exchange(self, reference: str) -> None:
        state, item, book = self._state, self._item, self._desk.book
        difference = price_difference(state.request.paid, item.price)
        if difference.to_charge.amount_minor:
            await charge(
                self._desk, difference.to_charge, rule=Rule.R22,
                reason=f"{item.sku} costs {item.price}, {difference.to_charge} more than paid",
            )  # fmt: skip
        if difference.to_refund.amount_minor:
            await refund(
                self._desk, difference.to_refund, rule=Rule.R22,
                reason=f"{item.sku} costs {item.price}, {difference.to_refund} less than paid",
                purpose=RefundPurpose.PRICE_DIFFERENCE, closes_case=False,
            )  # fmt: skip
        postage = state.reimbursed_shipping
        if postage is not None:
            await refund(
                self._desk, postage, rule=Rule.R6,
                reason=f"the return postage {postage}: the fault was ours",
                purpose=RefundPurpose.RETURN_POSTAGE, closes_case=False,
            )  # fmt: skip
        await book.record(
            LedgerAction.REPLACEMENT_SHIPPED,
            rule=Rule.R22,
            reason=f"{item.sku} sent, shipment {reference}",
            status=CaseStatus.EXCHANGED,
        )

    async def _refund_instead(self) -> None:
        state = self._state
        # R6: a merchant's fault refunds the return postage with the price.
        owed = refund_limit(state.request.paid, state.reimbursed_shipping)
        await refund(
            self._desk,
            owed.minus_floored_at_zero(state.refunded_total),
            rule=Rule.R22,
            reason="the replacement is out of stock and the customer consented to a refund",
        )

    async def _wait_for_stock(self, why: str) -> None:
        state = self._state
        state.next_stock_check = workflow.now() + _STOCK_CHECK_INTERVAL
        await self._desk.book.record(
            LedgerAction.WAITING_FOR_STOCK,
            rule=Rule.R22,
            reason=why,
            status=CaseStatus.WAITING_FOR_STOCK,
        )
