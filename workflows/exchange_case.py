"""ExchangeCase (R22): the item comes back, the replacement goes out, and the price
difference is charged or refunded. Out of stock becomes a refund only with the
customer's consent; without it the case waits for stock."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

from activities.notifications import Template
from activities.warehouse import StockQuery, WarehouseActivities
from domain.case import ExchangeItem, Reason, RefundConsent
from domain.ledger import LedgerAction, RefundPurpose, ShipmentPurpose
from domain.policy import price_difference, refund_limit
from domain.state import CaseMessage, CaseState, CaseStatus
from domain.view import CaseView
from workflows.case_run import CaseRun
from workflows.case_workflow import Due
from workflows.item_back_case import ItemBackCase
from workflows.steps.casebook import Approval
from workflows.steps.outside import call_outside
from workflows.steps.payments import charge, refund
from workflows.steps.shipment import send_to_customer

_STOCK_CHECK_INTERVAL = timedelta(days=1)


@workflow.defn
class ExchangeCase(ItemBackCase):
    _after_passed_inspection = CaseStatus.EXCHANGE_DUE

    @workflow.run
    async def run(self, run: CaseRun) -> CaseState:
        return await self._run_case(run)

    @workflow.update
    async def consent_to_refund(self, consent: RefundConsent) -> CaseView:
        """R22: the customer accepts (or declines) a refund for an out-of-stock item."""
        return await self._accept_and_wait(consent)

    @consent_to_refund.validator
    def _validate_consent(self, consent: RefundConsent) -> None:
        if self._state.status not in (
            CaseStatus.AWAITING_REFUND_CONSENT,
            CaseStatus.WAITING_FOR_STOCK,
        ):
            raise ValueError(
                f"status: the case is {self._state.status.value}; consent is asked only "
                "when the replacement is out of stock (R22)"
            )

    async def _after_approval(self, approval: Approval) -> None:
        if self._state.request.reason is Reason.WRONG_ITEM:
            # R7: the right item goes out at once; the wrong one comes back afterwards.
            await self._apologise_for_wrong_item()
            reference = await send_to_customer(
                self._book, sku=self._item.sku, quantity=self._state.request.quantity,
                purpose=ShipmentPurpose.CORRECT_ITEM,
            )  # fmt: skip
            await self._book.record(
                LedgerAction.CORRECT_ITEM_SHIPPED, rule="R7",
                reason=f"{self._item.sku} sent at once ({reference}), before the wrong one "
                "comes back",
            )  # fmt: skip
        await super()._after_approval(approval)

    @property
    def _item(self) -> ExchangeItem:
        item = self._state.request.exchange_for
        if item is None:  # OpenCaseRequest guarantees it for exchanges
            raise ValueError("an exchange names its replacement")
        return item

    def _kind_agenda(self) -> list[Due]:
        state = self._state
        if state.status is CaseStatus.AWAITING_REFUND_CONSENT and state.consent_deadline:
            return [Due(state.consent_deadline, "R22 refund consent deadline", self._no_consent)]
        if state.status is CaseStatus.WAITING_FOR_STOCK and state.next_stock_check:
            return [Due(state.next_stock_check, "R22 check stock again", self._try_to_exchange)]
        return super()._kind_agenda()

    async def _act(self) -> bool:
        if self._state.status is not CaseStatus.EXCHANGE_DUE:
            return False
        await self._try_to_exchange()
        return True

    async def _dispatch_kind(self, message: CaseMessage) -> bool:
        if isinstance(message, RefundConsent) and self._state.status in (
            CaseStatus.AWAITING_REFUND_CONSENT,
            CaseStatus.WAITING_FOR_STOCK,
        ):
            if message.consent:
                await self._refund_instead()
            else:
                await self._wait_for_stock("the customer prefers to wait for the item")
            return True
        return await super()._dispatch_kind(message)

    async def _try_to_exchange(self) -> None:
        state, item = self._state, self._item
        if state.shipments:  # R7: already sent at approval
            await self._exchange()
            return
        in_stock = await call_outside(
            WarehouseActivities.check_stock,
            StockQuery(sku=item.sku, quantity=state.request.quantity),
            summary=f"is {item.sku} in stock?",
        )
        if in_stock:
            await self._exchange()
            return
        if state.status is CaseStatus.WAITING_FOR_STOCK:
            await self._wait_for_stock("still out of stock")
            return
        state.consent_deadline = workflow.now() + state.policy.remedy_choice_window
        await self._book.notify(
            Template.REFUND_CONSENT_REQUESTED, deadline=state.consent_deadline.isoformat()
        )
        await self._book.record(
            LedgerAction.REFUND_CONSENT_REQUESTED,
            rule="R22",
            reason=f"{item.sku} is out of stock; a refund needs the customer's consent",
            status=CaseStatus.AWAITING_REFUND_CONSENT,
        )

    async def _exchange(self) -> None:
        state, item = self._state, self._item
        # R7: for a wrong item the right one went out at approval already.
        reference = (
            state.shipments[-1]
            if state.shipments
            else await send_to_customer(
                self._book,
                sku=item.sku,
                quantity=state.request.quantity,
                purpose=ShipmentPurpose.EXCHANGE,
            )
        )
        difference = price_difference(state.request.paid, item.price)
        if difference.to_charge.amount_minor:
            await charge(
                self._book, difference.to_charge, rule="R22",
                reason=f"{item.sku} costs {item.price}, {difference.to_charge} more than paid",
            )  # fmt: skip
        if difference.to_refund.amount_minor:
            await refund(
                self._book, difference.to_refund, rule="R22",
                reason=f"{item.sku} costs {item.price}, {difference.to_refund} less than paid",
                purpose=RefundPurpose.PRICE_DIFFERENCE, closes_case=False,
            )  # fmt: skip
        postage = state.reimbursed_shipping
        if postage is not None:
            await refund(
                self._book, postage, rule="R6",
                reason=f"the return postage {postage}: the fault was ours",
                purpose=RefundPurpose.RETURN_POSTAGE, closes_case=False,
            )  # fmt: skip
        await self._book.record(
            LedgerAction.REPLACEMENT_SHIPPED,
            rule="R22",
            reason=f"{item.sku} sent, shipment {reference}",
            status=CaseStatus.EXCHANGED,
        )

    async def _refund_instead(self) -> None:
        state = self._state
        # R6: a merchant's fault refunds the return postage with the price.
        owed = refund_limit(state.request.paid, state.reimbursed_shipping)
        await refund(
            self._book,
            owed.minus_floored_at_zero(state.refunded_total),
            rule="R22",
            reason="the replacement is out of stock and the customer consented to a refund",
        )

    async def _no_consent(self) -> None:
        await self._wait_for_stock("no consent to a refund by the deadline, so no refund")

    async def _wait_for_stock(self, why: str) -> None:
        state = self._state
        state.next_stock_check = workflow.now() + _STOCK_CHECK_INTERVAL
        await self._book.record(
            LedgerAction.WAITING_FOR_STOCK,
            rule="R22",
            reason=why,
            status=CaseStatus.WAITING_FOR_STOCK,
        )
