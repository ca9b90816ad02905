"""How messages get into a case, for every kind: the signal and Update handlers with their
validators, and the query. Handlers only admit and enqueue (case_inbox.py); the kind's
`@workflow.run` alone changes the case, phase by phase."""

from __future__ import annotations

from typing import NoReturn

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from domain.case import (
    STAFF,
    ArbitrationRuling,
    Assignment,
    CallRequest,
    CompensationOffer,
    Complaint,
    DeadlineExtension,
    Dispute,
    EscalationRequest,
    EvidenceSubmitted,
    PaymentResolution,
    Reason,
    ReviewDecision,
    Role,
    ShippedBack,
    WarehouseScan,
    Withdrawal,
)
from domain.policy import (
    agent_limit_refusal,
    call_limit_refusal,
    compensation_refusal,
    escalation_refusal,
    refund_limit,
    rule_of,
)
from domain.refusal import Refusal, RefusalKind
from domain.rules import Rule
from domain.state import EXTENDABLE, CaseMessage, CaseState, CaseStatus
from domain.view import CaseView
from workflows.case_desk import CaseDesk
from workflows.case_inbox import CaseInbox, refusal_details
from workflows.case_run import CaseRun
from workflows.steps.casebook import CaseBook

# The error type of an operator decision beyond their authority (R17).
AUTHORITY_LIMIT = "AuthorityLimit"
# The error type of a decision its validator refused (the Update is rejected: nothing of
# it reaches the history); its details are one `refusal_details` mapping.
REFUSED = "Refused"


def refuse(refusal: Refusal) -> NoReturn:
    """A validator's no, typed for the caller: the rule and the kind ride in the details,
    the text (`field: words`) is for people."""
    raise ApplicationError(refusal.text, refusal_details(refusal), type=REFUSED, non_retryable=True)


class CaseHandlers:
    """Base of the case workflows: each kind declares `@workflow.defn` and a
    `@workflow.run` that reads its life top to bottom on `self._desk`."""

    @workflow.init
    def __init__(self, run: CaseRun) -> None:
        self._state = run.carried_state or CaseState(
            case_id=workflow.info().workflow_id,
            request=run.request,
            policy=run.policy,
            opened_at=workflow.now(),
            return_deadline=run.request.delivered_at + run.policy.return_window
            if run.request.delivered_at
            else None,
        )
        self._inbox = CaseInbox(self._state, self._view)
        self._desk = CaseDesk(run, self._state, CaseBook(self._state), self._inbox)

    def _view(self) -> CaseView:
        return CaseView.of(self._state)

    @workflow.query
    def state(self) -> CaseView:
        """The case as callers may see it; the durable state stays inside (domain/view.py)."""
        return self._view()

    @workflow.signal
    def warehouse_scan(self, scan: WarehouseScan) -> None:
        """R26: dock and inspection scans. A repeated scan id changes nothing; a scan no
        step of the case expects is recorded with the reason, never dropped."""
        self._inbox.accept(scan)

    @workflow.signal
    def evidence_submitted(self, evidence: EvidenceSubmitted) -> None:
        """R6: the customer's photos."""
        self._inbox.accept(evidence)

    @workflow.signal
    def complaint(self, complaint: Complaint) -> None:
        """R18: the customer complains; a major complaint goes to the manager."""
        self._inbox.accept(complaint)

    @workflow.signal
    def withdraw(self, withdrawal: Withdrawal) -> None:
        """The customer withdraws the request."""
        self._inbox.accept(withdrawal)

    @workflow.signal
    def dispute(self, dispute: Dispute) -> None:
        """R19: the customer asks the platform to arbitrate a rejection."""
        self._inbox.accept(dispute)

    @workflow.update
    async def decide(self, decision: ReviewDecision) -> CaseView:
        """R10: approve or reject (with a reason, R20) a case under review."""
        return await self._inbox.accept_and_wait(decision)

    @decide.validator
    def _validate_decide(self, decision: ReviewDecision) -> None:
        _require_staff(decision.role)
        if self._state.status is not CaseStatus.UNDER_REVIEW:
            self._refuse_status(decision, ", not under_review (R10)")
        wrong_item = self._state.request.reason is Reason.WRONG_ITEM
        if decision.approve and wrong_item and decision.root_cause is None:
            refuse(
                Refusal(
                    rule=Rule.R7,
                    kind=RefusalKind.ROOT_CAUSE_REQUIRED,
                    text="root_cause: required to approve a wrong_item case (R7)",
                )
            )

    @workflow.update
    async def offer_compensation(self, offer: CompensationOffer) -> CaseView:
        """R17: goodwill compensation, paid at once within the actor's authority; an
        agent's offer above it is refused, recorded, and sends the case to a supervisor
        (R18)."""
        view = await self._inbox.accept_and_wait(offer)
        above = agent_limit_refusal(offer.role, offer.amount, self._state.policy)
        if above:
            raise ApplicationError(
                above.text, refusal_details(above), type=AUTHORITY_LIMIT, non_retryable=True
            )
        return view

    @offer_compensation.validator
    def _validate_offer_compensation(self, offer: CompensationOffer) -> None:
        state = self._state
        self._refuse_if_closed(offer)
        if offer.amount.currency != state.request.paid.currency:
            refuse(
                Refusal(
                    rule=Rule.R17,
                    kind=RefusalKind.WRONG_CURRENCY,
                    text=f"amount.currency: must be the order currency "
                    f"{state.request.paid.currency}",
                )
            )
        refusal = compensation_refusal(
            offer.role,
            offer.amount,
            state.refunded_total,
            refund_limit(state.request.paid, state.reimbursed_shipping),
            state.policy,
        )
        # R18: an agent's offer above their limit is let in, to be refused and escalated.
        if refusal and refusal.kind is not RefusalKind.ABOVE_AGENT_LIMIT:
            refuse(refusal)

    @workflow.update
    async def escalate(self, request: EscalationRequest) -> CaseView:
        """R18: hand the case to the next level."""
        return await self._inbox.accept_and_wait(request)

    @escalate.validator
    def _validate_escalate(self, request: EscalationRequest) -> None:
        _require_staff(request.role)
        self._refuse_if_closed(request)
        if at_the_top := escalation_refusal(self._state.escalation.level):
            refuse(at_the_top)

    @workflow.update
    async def request_call(self, request: CallRequest) -> CaseView:
        """R16: schedule a phone call in the customer's call hours."""
        return await self._inbox.accept_and_wait(request)

    @request_call.validator
    def _validate_request_call(self, request: CallRequest) -> None:
        _require_staff(request.role)
        state = self._state
        self._refuse_if_closed(request)
        if too_many := call_limit_refusal(state.calls_scheduled, state.policy):
            refuse(too_many)

    @workflow.update
    async def assign(self, assignment: Assignment) -> CaseView:
        """Give the case to an agent."""
        return await self._inbox.accept_and_wait(assignment)

    @assign.validator
    def _validate_assign(self, assignment: Assignment) -> None:
        _require_staff(assignment.role)
        self._refuse_if_closed(assignment)

    @workflow.update
    async def extend_deadline(self, extension: DeadlineExtension) -> CaseView:
        """Give the customer or the merchant more time, with a reason (recorded, R23)."""
        return await self._inbox.accept_and_wait(extension)

    @extend_deadline.validator
    def _validate_extend_deadline(self, extension: DeadlineExtension) -> None:
        _require_staff(extension.role)
        runs_in, _ = EXTENDABLE[extension.deadline]
        if self._state.status is not runs_in:
            refuse(
                Refusal(
                    rule=rule_of(extension),
                    kind=RefusalKind.DEADLINE_NOT_RUNNING,
                    text=f"deadline: the {extension.deadline.value} deadline is not running "
                    f"(the case is {self._state.status.value})",
                )
            )

    @workflow.update
    async def resolve_declined_payment(self, resolution: PaymentResolution) -> CaseView:
        """R21: a payment the provider declined, retried under its key or recorded
        settled another way; the case's view once the payment went through or was
        declined again."""
        return await self._inbox.accept_and_wait(resolution)

    @resolve_declined_payment.validator
    def _validate_resolve_declined_payment(self, resolution: PaymentResolution) -> None:
        _require_staff(resolution.role)
        if self._state.status is not CaseStatus.PAYMENT_DECLINED:
            self._refuse_status(resolution, ", no declined payment waits for a person (R21)")

    @workflow.update
    async def apply_ruling(self, ruling: ArbitrationRuling) -> CaseView:
        """R19: the arbiter's ruling, applied as it stands."""
        return await self._inbox.accept_and_wait(ruling)

    @apply_ruling.validator
    def _validate_ruling(self, ruling: ArbitrationRuling) -> None:
        state = self._state
        if ruling.role is not Role.ARBITER:
            refuse(
                Refusal(
                    rule=Rule.R19,
                    kind=RefusalKind.NOT_ARBITER,
                    text="role: only the platform arbiter rules on disputes (R19)",
                )
            )
        if state.status is not CaseStatus.IN_ARBITRATION:
            self._refuse_status(ruling, ", not in_arbitration")
        if ruling.refund is not None:
            if not ruling.refund.amount_minor:
                refuse(
                    Refusal(
                        rule=Rule.R19,
                        kind=RefusalKind.EMPTY_REFUND,
                        text="refund: a ruling for the customer refunds more than 0; leave "
                        "it out to refund all that is left (R19, R21)",
                    )
                )
            limit = refund_limit(state.request.paid, state.reimbursed_shipping)
            if ruling.refund.currency != state.request.paid.currency:
                refuse(
                    Refusal(
                        rule=Rule.R21,
                        kind=RefusalKind.WRONG_CURRENCY,
                        text=f"refund: at most {limit} in all may be refunded (R21)",
                    )
                )
            if not state.refunded_total + ruling.refund <= limit:
                refuse(
                    Refusal(
                        rule=Rule.R21,
                        kind=RefusalKind.ABOVE_REFUND_LIMIT,
                        text=f"refund: at most {limit} in all may be refunded (R21)",
                    )
                )

    def _refuse_if_closed(self, message: CaseMessage) -> None:
        if self._state.status.is_closed:
            self._refuse_status(message, " (closed)")

    def _refuse_status(self, message: CaseMessage, why: str) -> NoReturn:
        """The case's status is why `message` is refused: the message's own rule names it."""
        status = self._state.status
        refuse(
            Refusal(
                rule=rule_of(message),
                kind=RefusalKind.CASE_CLOSED if status.is_closed else RefusalKind.NOT_NOW,
                text=f"status: the case is {status.value}{why}",
            )
        )


class ItemBackHandlers(CaseHandlers):
    """Kinds whose item comes back to the warehouse (returns, exchanges)."""

    @workflow.signal
    def shipped_back(self, notice: ShippedBack) -> None:
        """R12: the customer handed the parcel to a carrier."""
        self._inbox.accept(notice)


def _require_staff(role: Role) -> None:
    if role not in STAFF:
        refuse(
            Refusal(
                rule=Rule.R17,
                kind=RefusalKind.NOT_STAFF,
                text=f"role: {role.value} may not decide cases (agent, supervisor, manager)",
            )
        )
