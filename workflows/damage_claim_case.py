"""DamageClaimCase (R8): goods damaged or lost in transit. The customer gets a remedy at
once; in parallel the merchant claims the loss from the carrier (a CarrierClaim child
that outlives the case, R15)."""

from __future__ import annotations

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

from activities.notifications import Template
from domain.case import Remedy, RemedyChoice
from domain.claim import CarrierClaimRequest
from domain.ledger import LedgerAction, ShipmentPurpose
from domain.money import Money
from domain.state import CaseMessage, CaseState, CaseStatus
from domain.view import CaseView
from workflows.carrier_claim import CLAIM_ID_PREFIX, CarrierClaim, ClaimRun
from workflows.case_run import CaseRun
from workflows.case_workflow import CaseWorkflow, Due
from workflows.steps.casebook import Approval
from workflows.steps.payments import refund
from workflows.steps.shipment import send_to_customer


@workflow.defn
class DamageClaimCase(CaseWorkflow):
    @workflow.run
    async def run(self, run: CaseRun) -> CaseState:
        return await self._run_case(run)

    @workflow.update
    async def choose_remedy(self, choice: RemedyChoice) -> CaseView:
        """R8: replacement, partial refund (keep the item) or full refund."""
        return await self._accept_and_wait(choice)

    @choose_remedy.validator
    def _validate_choose_remedy(self, choice: RemedyChoice) -> None:
        state = self._state
        if state.status is not CaseStatus.AWAITING_REMEDY_CHOICE:
            raise ValueError(f"status: the case is {state.status.value}, no remedy is open (R8)")
        amount = choice.partial_amount
        if amount is not None and (
            amount.currency != state.request.paid.currency
            or not amount <= state.request.paid
            or amount.amount_minor == 0
        ):
            raise ValueError(
                f"partial_amount: must be above zero and at most the {state.request.paid} "
                "paid (R21)"
            )

    def _window_applies(self) -> bool:
        return False  # R1 governs returns and exchanges; a carrier's loss has R15's deadline

    async def _after_approval(self, approval: Approval) -> None:
        state = self._state
        await self._open_carrier_claim()
        state.approved_at = workflow.now()
        state.remedy_deadline = workflow.now() + state.policy.remedy_choice_window
        await self._book.notify(Template.REMEDY_OFFERED, deadline=state.remedy_deadline.isoformat())
        await self._book.record_approved(
            LedgerAction.APPROVED, approval, status=CaseStatus.AWAITING_REMEDY_CHOICE
        )

    async def _open_carrier_claim(self) -> None:
        state = self._state
        request = state.request
        if request.carrier is None:
            await self._book.record(
                LedgerAction.CARRIER_CLAIM_NOT_FILED,
                rule="R15",
                reason="the order names no carrier to claim from",
            )
            return
        claim_id = f"{CLAIM_ID_PREFIX}{state.case_id}"
        await workflow.start_child_workflow(
            CarrierClaim.run,
            ClaimRun(
                request=CarrierClaimRequest(
                    claim_id=claim_id,
                    case_id=state.case_id,
                    carrier=request.carrier,
                    amount=request.paid,
                    deadline_counts_from=request.claim_clock_start,
                    policy=state.policy,
                )
            ),
            id=claim_id,
            # The claim can take months; the customer's case must not wait for it.
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"carrier claim · {request.carrier} · order {request.order_id}",
        )
        state.carrier_claim_id = claim_id
        await self._book.record(
            LedgerAction.CARRIER_CLAIM_OPENED,
            rule="R8",
            reason=f"the carrier {request.carrier}, not the customer, bears the loss (R15)",
            details={"claim_id": claim_id},
        )

    def _kind_agenda(self) -> list[Due]:
        state = self._state
        if state.status is CaseStatus.AWAITING_REMEDY_CHOICE and state.remedy_deadline:
            return [Due(state.remedy_deadline, "R8 remedy choice deadline", self._default_remedy)]
        return []

    async def _dispatch_kind(self, message: CaseMessage) -> bool:
        if isinstance(message, RemedyChoice) and (
            self._state.status is CaseStatus.AWAITING_REMEDY_CHOICE
        ):
            await self._apply(message.remedy, message.partial_amount, chosen=True)
            return True
        return False

    async def _default_remedy(self) -> None:
        # Silence favours the customer (the spirit of R11): the full refund.
        await self._apply(Remedy.FULL_REFUND, None, chosen=False)

    async def _apply(self, remedy: Remedy, partial: Money | None, *, chosen: bool) -> None:
        state = self._state
        state.remedy = remedy
        how = "chosen by the customer" if chosen else "no choice by the deadline: the default"
        customer = state.request.customer.customer_id
        match remedy:
            case Remedy.REPLACEMENT:
                reference = await send_to_customer(
                    self._book,
                    sku=state.request.sku,
                    quantity=state.request.quantity,
                    purpose=ShipmentPurpose.REPLACEMENT,
                )
                await self._book.record(
                    LedgerAction.REPLACEMENT_SHIPPED,
                    rule="R8",
                    reason=f"replacement ({how}), shipment {reference}",
                    status=CaseStatus.REPLACED,
                    actor=customer if chosen else "aftersales-workflow",
                    role="customer" if chosen else "system",
                )
            case Remedy.PARTIAL_REFUND if partial is not None:
                await refund(
                    self._book, partial, rule="R8",
                    reason=f"partial refund of {partial}, the customer keeps the item ({how})",
                )  # fmt: skip
            case _:
                await refund(
                    self._book, state.request.paid.minus_floored_at_zero(state.refunded_total),
                    rule="R8", reason=f"full refund ({how})",
                )  # fmt: skip
