"""DamageClaimCase (R8): goods damaged or lost in transit. The customer gets a remedy at
once; in parallel the merchant claims the loss from the carrier (a CarrierClaim child
that outlives the case, R15).

Its life is `DamageClaimCase.run`, read top to bottom. Each phase runs only while the
case is in it, so a run resumed after continue-as-new goes on at the phase it was in."""

from __future__ import annotations

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

from activities.notifications import Template
from activities.outside import OutsideNo
from domain.case import Remedy, RemedyChoice, Role
from domain.claim import CarrierClaimRequest
from domain.ledger import LedgerAction, ShipmentPurpose
from domain.money import Money
from domain.refusal import Refusal, RefusalKind
from domain.rules import Rule
from domain.state import CaseState, CaseStatus
from domain.view import CaseView
from domain.workflow_ids import WorkflowKind, child_workflow_id
from workflows.carrier_claim import CarrierClaim, ClaimRun
from workflows.case_desk import Due, Woke
from workflows.case_handlers import CaseHandlers, refuse
from workflows.case_run import CaseRun
from workflows.phases.after_close import after_close
from workflows.phases.opening import open_case
from workflows.phases.review import review
from workflows.steps.casebook import SYSTEM_ACTOR, Approval
from workflows.steps.payments import refund
from workflows.steps.shipment import send_to_customer


@workflow.defn
class DamageClaimCase(CaseHandlers):
    @workflow.run
    async def run(self, run: CaseRun) -> CaseState:
        desk = self._desk
        # 1. Open (R2; R1 governs returns: a carrier's loss has R15's deadline), then the
        #    customer's photos and a review (R6, R10, R11).
        approval = await open_case(desk, window_applies=False)
        approval = await review(desk, holds_parcels=False) or approval
        # 2. Approved: the carrier claim starts (R8, R15) and the customer picks a remedy.
        if approval is not None:
            await self._claim_from_the_carrier()
            await self._offer_remedies(approval)
        # 3. The customer's remedy: replacement, partial refund, or full refund (R8).
        await self._remedy()
        # 4. After the close: dispute window (R19), survey (R25).
        return await after_close(desk)

    @workflow.update
    async def choose_remedy(self, choice: RemedyChoice) -> CaseView:
        """R8: replacement, partial refund (keep the item) or full refund."""
        return await self._inbox.accept_and_wait(choice)

    @choose_remedy.validator
    def _validate_choose_remedy(self, choice: RemedyChoice) -> None:
        state = self._state
        if state.status is not CaseStatus.AWAITING_REMEDY_CHOICE:
            self._refuse_status(choice, ", no remedy is open (R8)")
        amount = choice.partial_amount
        if amount is None:
            return
        if amount.currency != state.request.paid.currency:
            kind = RefusalKind.WRONG_CURRENCY
        elif amount.amount_minor == 0:
            kind = RefusalKind.EMPTY_REFUND
        elif not amount <= state.request.paid:
            kind = RefusalKind.ABOVE_REFUND_LIMIT
        else:
            return
        refuse(
            Refusal(
                rule=Rule.R21,
                kind=kind,
                text=f"partial_amount: must be above zero and at most the "
                f"{state.request.paid} paid (R21)",
            )
        )

    # ---- 2. the approval --------------------------------------------------------------

    async def _claim_from_the_carrier(self) -> None:
        state, book = self._state, self._desk.book
        request = state.request
        if request.carrier is None:
            await book.record(
                LedgerAction.CARRIER_CLAIM_NOT_FILED,
                rule=Rule.R15,
                reason="the order names no carrier to claim from",
            )
            return
        claim_id = child_workflow_id(WorkflowKind.CARRIER_CLAIM, state.case_id)
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
        await book.record(
            LedgerAction.CARRIER_CLAIM_OPENED,
            rule=Rule.R8,
            reason=f"the carrier {request.carrier}, not the customer, bears the loss (R15)",
            details={"claim_id": claim_id},
        )

    async def _offer_remedies(self, approval: Approval) -> None:
        state, book = self._state, self._desk.book
        state.approved_at = workflow.now()
        state.remedy_deadline = workflow.now() + state.policy.remedy_choice_window
        await book.notify(Template.REMEDY_OFFERED, deadline=state.remedy_deadline.isoformat())
        await book.record_approved(
            LedgerAction.APPROVED, approval, status=CaseStatus.AWAITING_REMEDY_CHOICE
        )

    # ---- 3. the remedy ----------------------------------------------------------------

    async def _remedy(self) -> None:
        """Waits in awaiting_remedy_choice for: the customer's choice, its deadline.
        Applies: replaced or refunded (R8; the full refund at the deadline)."""
        desk, state = self._desk, self._state
        while state.status is CaseStatus.AWAITING_REMEDY_CHOICE:
            turn = await desk.next((RemedyChoice,), self._remedy_due)
            match turn:
                case Woke.DEADLINE:
                    # Silence favours the customer (the spirit of R11): the full refund.
                    await self._apply(Remedy.FULL_REFUND, None, chosen=False)
                case RemedyChoice():
                    await self._apply(turn.remedy, turn.partial_amount, chosen=True)

    def _remedy_due(self) -> Due | None:
        deadline = self._state.remedy_deadline
        return Due(deadline, "R8 remedy choice deadline") if deadline else None

    async def _apply(self, remedy: Remedy, partial: Money | None, *, chosen: bool) -> None:
        state, book = self._state, self._desk.book
        state.remedy = remedy
        how = "chosen by the customer" if chosen else "no choice by the deadline: the default"
        customer = state.request.customer.customer_id
        match remedy:
            case Remedy.REPLACEMENT:
                reference = await send_to_customer(
                    book,
                    sku=state.request.sku,
                    quantity=state.request.quantity,
                    purpose=ShipmentPurpose.REPLACEMENT,
                    rule=Rule.R8,
                )
                if isinstance(reference, OutsideNo):
                    # R8's other full remedy: with no replacement to send, the money.
                    await refund(
                        self._desk, state.request.paid.minus_floored_at_zero(state.refunded_total),
                        rule=Rule.R8, reason=f"full refund: the replacement ({how}) could not be "
                        f"sent ({reference.reason})",
                    )  # fmt: skip
                    return
                await book.record(
                    LedgerAction.REPLACEMENT_SHIPPED,
                    rule=Rule.R8,
                    reason=f"replacement ({how}), shipment {reference}",
                    status=CaseStatus.REPLACED,
                    actor=customer if chosen else SYSTEM_ACTOR,
                    role=Role.CUSTOMER if chosen else Role.SYSTEM,
                )
            case Remedy.PARTIAL_REFUND if partial is not None:
                await refund(
                    self._desk, partial, rule=Rule.R8,
                    reason=f"partial refund of {partial}, the customer keeps the item ({how})",
                )  # fmt: skip
            case _:
                await refund(
                    self._desk, state.request.paid.minus_floored_at_zero(state.refunded_total),
                    rule=Rule.R8, reason=f"full refund ({how})",
                )  # fmt: skip
