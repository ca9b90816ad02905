"""ReturnCase: the customer sends an item back for money (R5, R6, R12, R13, R21)."""

from __future__ import annotations

from temporalio import workflow

from domain.case import Reason
from domain.money import Money
from domain.policy import changed_mind_refund, refund_limit
from domain.state import CaseState, CaseStatus
from workflows.case_run import CaseRun
from workflows.item_back_case import ItemBackCase
from workflows.steps.payments import refund


@workflow.defn
class ReturnCase(ItemBackCase):
    @workflow.run
    async def run(self, run: CaseRun) -> CaseState:
        return await self._run_case(run)

    async def _act(self) -> bool:
        if self._state.status is not CaseStatus.REFUND_DUE:
            return False
        await self._refund_the_return()
        return True

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
