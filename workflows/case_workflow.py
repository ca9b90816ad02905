"""What every case kind shares: how messages and decisions arrive, the agenda of
deadlines, review (R10, R11), evidence (R6), authority (R17), escalation (R18),
daily follow-ups (R14), and continue-as-new. Kinds add their own steps on top."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

from activities.notifications import Template
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
    Reason,
    ReviewDecision,
    Role,
    WarehouseScan,
    Withdrawal,
)
from domain.ledger import LedgerAction, RefundPurpose
from domain.money import Money
from domain.policy import (
    NO_REVIEW_RULE,
    agent_limit_refusal,
    check_return_window,
    compensation_refusal,
    escalation_target,
    merchant_pays_return_shipping,
    needs_evidence,
    needs_review,
    refund_limit,
    unapplied_scan_reason,
)
from domain.state import (
    EXTENDABLE,
    WITHDRAWABLE,
    CaseMessage,
    CaseState,
    CaseStatus,
    EscalationLevel,
    message_id,
)
from domain.survey import SurveyRequest
from domain.view import CaseView
from workflows.case_run import CaseRun
from workflows.steps.casebook import MERCHANT_SIDE, Approval, CaseBook
from workflows.steps.payments import refund
from workflows.steps.timers import wait_until
from workflows.survey import SatisfactionSurvey

# The error type of an operator decision beyond their authority (R17).
AUTHORITY_LIMIT = "AuthorityLimit"
# The error type of a decision its validator admitted that the case could then not apply.
NOT_APPLIED = "NotApplied"


@dataclass(frozen=True)
class Due:
    at: datetime
    label: str
    act: Callable[[], Awaitable[None]]


class CaseWorkflow:
    """Base of the case workflows. Subclasses declare `@workflow.defn` and a
    `@workflow.run` that awaits `_run_case`, and implement the kind's steps."""

    @workflow.init
    def __init__(self, run: CaseRun) -> None:
        self._run = run
        self._state = run.carried_state or CaseState(
            case_id=workflow.info().workflow_id,
            request=run.request,
            policy=run.policy,
            opened_at=workflow.now(),
            return_deadline=run.request.delivered_at + run.policy.return_window
            if run.request.delivered_at
            else None,
        )
        self._book = CaseBook(self._state)
        self._in_progress: str | None = None
        # The workflow task time of the latest messages in, and how many of this task's
        # updates wait in the inbox.
        self._arrived_at: datetime | None = None
        self._updates_now = 0
        # The messages update handlers wait on, and what each came to until its handler
        # answers: the case's view right after it was applied, or why it changed nothing.
        self._awaited: set[str] = set()
        self._outcomes: dict[str, CaseView | str] = {}

    # ---- the loop -------------------------------------------------------------------

    async def _run_case(self, run: CaseRun) -> CaseState:
        state = self._state
        if run.carried_state is None:
            self._book.publish_identity()
            await self._open()
        else:
            self._book.publish()
        while not state.status.is_closed:
            if state.inbox:
                await self._take_message(self._dispatch)
            elif not await self._act():
                await self._wait_for_agenda()
            if self._history_is_long():
                # An update handler finishes only once this loop has applied its message:
                # waiting for handlers alone would wait forever on a decision just sent.
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() or bool(state.inbox)
                )
                if not state.inbox:
                    workflow.continue_as_new(run.model_copy(update={"carried_state": state}))
        await self._closing()
        if state.status is CaseStatus.REJECTED:
            await self._dispute_window()
        await self._send_survey()
        await self._refuse_what_is_left()
        return state

    async def _refuse_what_is_left(self) -> None:
        """The case has ended: whatever reaches it is recorded with why it changed nothing
        (never dropped), and the run completes only once every update handler has
        answered, so none ends unfinished and no message lands after the last look."""
        state = self._state
        while True:
            await workflow.wait_condition(
                lambda: workflow.all_handlers_finished() or bool(state.inbox)
            )
            if not state.inbox:
                return
            await self._take_message(
                lambda message: self._ignore(message, self._why_nothing_to_do(message))
            )

    async def _take_message(self, handle: Callable[[CaseMessage], Awaitable[None]]) -> None:
        message = self._state.inbox.pop(0)
        ident = message_id(message)
        self._in_progress = ident
        await handle(message)
        if ident in self._awaited:
            # Taken now, the answer shows this decision's effect (the refund it paid is
            # the view's last) and nothing the case did after it.
            self._outcomes.setdefault(ident, self._view())
        self._in_progress = None

    async def _wait_for_agenda(self) -> None:
        state = self._state
        agenda = self._agenda()
        if not agenda:
            await workflow.wait_condition(lambda: bool(state.inbox) or self._history_is_long())
            return
        due = min(agenda, key=lambda d: d.at)
        if not await wait_until(lambda: bool(state.inbox), due.at, due.label):
            await due.act()

    def _agenda(self) -> list[Due]:
        state = self._state
        agenda: list[Due] = []
        if state.status is CaseStatus.AWAITING_EVIDENCE and state.evidence_deadline:
            agenda.append(Due(state.evidence_deadline, "R6 evidence deadline", self._no_evidence))
        if state.status is CaseStatus.UNDER_REVIEW and state.review_deadline:
            agenda.append(
                Due(state.review_deadline, "R11 review deadline: auto-approve", self._auto_approve)
            )
        if state.status in MERCHANT_SIDE and state.next_follow_up_at:
            agenda.append(
                Due(state.next_follow_up_at, "R14 daily progress update", self._follow_up)
            )
        if state.escalation.respond_by is not None:
            agenda.append(
                Due(state.escalation.respond_by, "R18 supervisor must act", self._supervisor_silent)
            )
        return agenda + self._kind_agenda()

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._run.history_events_before_continue
        )

    # ---- what kinds implement -------------------------------------------------------

    def _kind_agenda(self) -> list[Due]:
        return []

    async def _act(self) -> bool:
        """Work that needs no waiting (a refund now due); True if something was done."""
        return False

    async def _after_approval(self, approval: Approval) -> None:
        raise NotImplementedError

    async def _dispatch_kind(self, message: CaseMessage) -> bool:
        """Kind-specific messages; False if the kind has no use for this one now."""
        return False

    async def _closing(self) -> None:
        """Loose ends once the case has closed, before the R19/R25 closing steps."""

    def _why_nothing_to_do(self, message: CaseMessage) -> str:
        """Why a message changes nothing now (recorded with it, never dropped)."""
        state = self._state
        status = state.status.value + (" (closed)" if state.status.is_closed else "")
        if isinstance(message, WarehouseScan):
            return unapplied_scan_reason(
                message.event,
                status,
                received_scan_id=state.received_scan_id,
                inspection_scan_id=state.inspection.scan_id if state.inspection else None,
            )
        if state.status.is_closed:
            return f"the case is already closed ({state.status.value})"
        return f"nothing to do while the case is {status}"

    # ---- messages in ----------------------------------------------------------------

    @workflow.signal(name="warehouse_scan")
    def warehouse_scan(self, scan: WarehouseScan) -> None:
        """R26: dock and inspection scans. A repeated scan id changes nothing; a scan no
        step of the case expects is recorded with the reason, never dropped."""
        self._accept(scan)

    @workflow.signal(name="evidence_submitted")
    def evidence_submitted(self, evidence: EvidenceSubmitted) -> None:
        """R6: the customer's photos."""
        self._accept(evidence)

    @workflow.signal(name="complaint")
    def complaint(self, complaint: Complaint) -> None:
        """R18: the customer complains; a major complaint goes to the manager."""
        self._accept(complaint)

    @workflow.update
    async def decide(self, decision: ReviewDecision) -> CaseView:
        """R10: approve or reject (with a reason, R20) a case under review."""
        return await self._accept_and_wait(decision)

    @decide.validator
    def _validate_decide(self, decision: ReviewDecision) -> None:
        self._require_staff(decision.role)
        if self._state.status is not CaseStatus.UNDER_REVIEW:
            raise ValueError(
                f"status: the case is {self._state.status.value}, not under_review (R10)"
            )
        wrong_item = self._state.request.reason is Reason.WRONG_ITEM
        if decision.approve and wrong_item and decision.root_cause is None:
            raise ValueError("root_cause: required to approve a wrong_item case (R7)")

    @workflow.update
    async def offer_compensation(self, offer: CompensationOffer) -> CaseView:
        """R17: goodwill compensation, paid at once within the actor's authority; an
        agent's offer above it is refused, recorded, and sends the case to a supervisor
        (R18)."""
        view = await self._accept_and_wait(offer)
        above = agent_limit_refusal(offer.role, offer.amount, self._state.policy)
        if above:
            raise ApplicationError(above, type=AUTHORITY_LIMIT, non_retryable=True)
        return view

    @offer_compensation.validator
    def _validate_offer_compensation(self, offer: CompensationOffer) -> None:
        state = self._state
        if state.status.is_closed:
            raise ValueError(f"status: the case is {state.status.value} (closed)")
        if offer.amount.currency != state.request.paid.currency:
            raise ValueError(
                f"amount.currency: must be the order currency {state.request.paid.currency}"
            )
        refusal = compensation_refusal(
            offer.role,
            offer.amount,
            state.refunded_total,
            refund_limit(state.request.paid, state.reimbursed_shipping),
            state.policy,
        )
        # R18: an agent's offer above their limit is let in, to be refused and escalated.
        if refusal and refusal != agent_limit_refusal(offer.role, offer.amount, state.policy):
            raise ValueError(refusal)

    @workflow.update
    async def escalate(self, request: EscalationRequest) -> CaseView:
        """R18: hand the case to the next level."""
        return await self._accept_and_wait(request)

    @escalate.validator
    def _validate_escalate(self, request: EscalationRequest) -> None:
        self._require_staff(request.role)
        if self._state.status.is_closed:
            raise ValueError(f"status: the case is {self._state.status.value} (closed)")
        if self._state.escalation.level is EscalationLevel.MANAGER:
            raise ValueError("escalation: the case is already at the manager level (R18)")

    @workflow.update
    async def request_call(self, request: CallRequest) -> CaseView:
        """R16: schedule a phone call in the customer's call hours."""
        return await self._accept_and_wait(request)

    @request_call.validator
    def _validate_request_call(self, request: CallRequest) -> None:
        self._require_staff(request.role)
        state = self._state
        if state.status.is_closed:
            raise ValueError(f"status: the case is {state.status.value} (closed)")
        if state.calls_scheduled >= state.policy.max_calls_per_case:
            raise ValueError(
                f"R16: this case already had {state.calls_scheduled} calls, the most allowed"
            )

    @workflow.update
    async def assign(self, assignment: Assignment) -> CaseView:
        """Give the case to an agent."""
        return await self._accept_and_wait(assignment)

    @assign.validator
    def _validate_assign(self, assignment: Assignment) -> None:
        self._require_staff(assignment.role)
        if self._state.status.is_closed:
            raise ValueError(f"status: the case is {self._state.status.value} (closed)")

    @workflow.update
    async def extend_deadline(self, extension: DeadlineExtension) -> CaseView:
        """Give the customer or the merchant more time, with a reason (recorded, R23)."""
        return await self._accept_and_wait(extension)

    @extend_deadline.validator
    def _validate_extend_deadline(self, extension: DeadlineExtension) -> None:
        self._require_staff(extension.role)
        runs_in, _ = EXTENDABLE[extension.deadline]
        if self._state.status is not runs_in:
            raise ValueError(
                f"deadline: the {extension.deadline.value} deadline is not running "
                f"(the case is {self._state.status.value})"
            )

    @workflow.signal(name="withdraw")
    def withdraw(self, withdrawal: Withdrawal) -> None:
        """The customer withdraws the request."""
        self._accept(withdrawal)

    @workflow.signal(name="dispute")
    def dispute(self, dispute: Dispute) -> None:
        """R19: the customer asks the platform to arbitrate a rejection."""
        self._accept(dispute)

    @workflow.update
    async def apply_ruling(self, ruling: ArbitrationRuling) -> CaseView:
        """R19: the arbiter's ruling, applied as it stands."""
        return await self._accept_and_wait(ruling)

    @apply_ruling.validator
    def _validate_ruling(self, ruling: ArbitrationRuling) -> None:
        state = self._state
        if ruling.role is not Role.ARBITER:
            raise ValueError("role: only the platform arbiter rules on disputes (R19)")
        if state.status is not CaseStatus.IN_ARBITRATION:
            raise ValueError(f"status: the case is {state.status.value}, not in_arbitration")
        if ruling.refund is not None:
            if not ruling.refund.amount_minor:
                raise ValueError(
                    "refund: a ruling for the customer refunds more than 0; leave it out "
                    "to refund all that is left (R19, R21)"
                )
            limit = refund_limit(state.request.paid, state.reimbursed_shipping)
            if ruling.refund.currency != state.request.paid.currency or not (
                state.refunded_total + ruling.refund <= limit
            ):
                raise ValueError(f"refund: at most {limit} in all may be refunded (R21)")

    @workflow.query(name="state")
    def state(self) -> CaseView:
        """The case as callers may see it; the durable state stays inside (domain/view.py)."""
        return self._view()

    def _view(self) -> CaseView:
        return CaseView.of(self._state)

    @staticmethod
    def _require_staff(role: Role) -> None:
        if role not in STAFF:
            raise ValueError(
                f"role: {role.value} may not decide cases (agent, supervisor, manager)"
            )

    def _accept(self, message: CaseMessage, *, by_update: bool = False) -> None:
        state = self._state
        ident = message_id(message)
        if ident in state.seen_message_ids:
            workflow.logger.info("duplicate message %s ignored", ident)
            return
        state.seen_message_ids.append(ident)
        # Signals and updates that arrive in one workflow task reach their handlers in an
        # order a replay need not repeat (a replay takes updates from their own history
        # events), so within one task the signals queue ahead of the updates, each stream
        # in its own order: the case applies them alike live and on replay. The inbox
        # only ever loses its head, so this task's updates are its tail.
        if workflow.now() != self._arrived_at:
            self._arrived_at, self._updates_now = workflow.now(), 0
        updates_now = min(self._updates_now, len(state.inbox))
        if by_update:
            state.inbox.append(message)
            updates_now += 1
        else:
            state.inbox.insert(len(state.inbox) - updates_now, message)
        self._updates_now = updates_now

    async def _accept_and_wait(self, message: CaseMessage) -> CaseView:
        """Decisions go through the same inbox as everything else, so one coroutine alone
        changes the case; the caller gets the case's view right after its decision was
        applied."""
        ident = message_id(message)
        if ident not in self._state.seen_message_ids:
            self._awaited.add(ident)
        self._accept(message, by_update=True)
        await workflow.wait_condition(
            lambda: (
                self._in_progress != ident
                and all(message_id(m) != ident for m in self._state.inbox)
            )
        )
        self._awaited.discard(ident)
        outcome = self._outcomes.pop(ident, None)
        # Admitted by its validator, then not applicable by the time its turn came (two
        # approvals at once, an approval after the R11 auto-approval, an offer once the
        # refund limit is reached): the caller hears why, and the ledger says so.
        if isinstance(outcome, str):
            raise ApplicationError(outcome, type=NOT_APPLIED, non_retryable=True)
        return outcome or self._view()

    async def _dispatch(self, message: CaseMessage) -> None:
        status = self._state.status
        match message:
            case EvidenceSubmitted() if status in (
                CaseStatus.AWAITING_EVIDENCE,
                CaseStatus.UNDER_REVIEW,
            ):
                await self._evidence(message)
            case Complaint():
                await self._complaint(message)
            case Withdrawal() if status in WITHDRAWABLE and not self._state.refunds:
                await self._book.record(
                    LedgerAction.WITHDRAWN,
                    reason=f"the customer withdrew the request{': ' if message.reason else ''}"
                    f"{message.reason}",
                    status=CaseStatus.WITHDRAWN,
                    actor=self._state.request.customer.customer_id,
                    role="customer",
                )
            case ReviewDecision() if status is CaseStatus.UNDER_REVIEW:
                await self._decided(message)
            case CompensationOffer() if not status.is_closed:
                await self._compensate(message)
            case Assignment() if not status.is_closed:
                self._state.assigned_agent = message.agent
                await self._book.record(
                    LedgerAction.ASSIGNED, reason=f"assigned to {message.agent}",
                    actor=message.actor, role=message.role.value,
                )  # fmt: skip
            case DeadlineExtension() if status is EXTENDABLE[message.deadline][0]:
                await self._extend(message)
            case CallRequest() if not status.is_closed:
                await self._book.schedule_call(message.purpose)
                await self._book.record(
                    LedgerAction.CALL_SCHEDULED,
                    rule="R16",
                    reason=f"call {self._state.calls_scheduled}: {message.purpose}",
                    actor=message.actor,
                    role=message.role.value,
                )
            case EscalationRequest() if not status.is_closed:
                # The requester's words go to the ledger only (the reason is shown in the UI).
                await self._escalate(
                    f"asked for by {message.role.value} {message.actor}",
                    actor=message.actor, role=message.role.value,
                    details={"request": message.reason},
                )  # fmt: skip
            case _:
                if not await self._dispatch_kind(message):
                    await self._ignore(message, self._why_nothing_to_do(message))

    def _not_applied(self, message: CaseMessage, why: str) -> None:
        """The update waiting on `message`, if any, is refused with `why`."""
        ident = message_id(message)
        if ident in self._awaited:
            self._outcomes[ident] = why

    async def _ignore(self, message: CaseMessage, why: str) -> None:
        self._not_applied(message, why)
        await self._book.record(
            LedgerAction.MESSAGE_IGNORED,
            rule="R26" if type(message).__name__ == "WarehouseScan" else None,
            reason=f"{type(message).__name__} {message_id(message)}: {why}",
            details={"message": message.model_dump(mode="json")},
        )

    # ---- opening, evidence, review --------------------------------------------------

    async def _open(self) -> None:
        state, book = self._state, self._book
        request = state.request
        window = check_return_window(request, state.policy) if self._window_applies() else None
        # The ledger says which moment R1 judged: the caller's requested_at, or our receipt.
        judged = (
            {"r1_judged_by": window.judged_by, "r1_judged_at": window.judged_at.isoformat()}
            if window
            else {}
        )
        await book.record(
            LedgerAction.CASE_OPENED,
            rule="R2",
            reason=f"{request.kind.value} ({request.reason.value}) requested via "
            f"{request.channel.value}",
            actor=request.customer.customer_id,
            role="customer",
            details={"channel": request.channel.value, "request_id": request.request_id} | judged,
        )
        if window is not None and not window.accepted:
            state.decision_reason = window.reason
            await book.notify(Template.CASE_REFUSED, reason=window.reason or "")
            await book.record(
                LedgerAction.REQUEST_REFUSED,
                rule="R1",
                reason=window.reason,
                status=CaseStatus.REFUSED,
            )
            return
        await book.notify(Template.CASE_ACKNOWLEDGED)  # R10: acknowledged at once
        if not needs_review(request.kind, request.reason):
            rule = NO_REVIEW_RULE[request.reason]
            await self._after_approval(
                Approval(
                    rule=rule,
                    reason=f"a {request.reason.value} request needs no review ({rule})"
                    if rule != "R5"
                    else f"a {request.reason.value} request inside the R1 window needs no "
                    "review; the inspection decides",
                )
            )
            return
        state.first_contact_by = workflow.now() + state.policy.first_contact_deadline
        await book.schedule_call("R10 first human contact")
        if needs_evidence(request.reason) and not state.evidence:
            state.evidence_deadline = workflow.now() + state.policy.evidence_window
            await book.notify(
                Template.EVIDENCE_REQUESTED, deadline=state.evidence_deadline.isoformat()
            )
            await book.record(
                LedgerAction.EVIDENCE_REQUESTED,
                rule="R6",
                reason="merchant-fault and transit-damage cases start with the customer's photos",
                status=CaseStatus.AWAITING_EVIDENCE,
            )
            return
        await self._start_review("R10: a person reviews the request")

    def _window_applies(self) -> bool:
        return self._state.request.delivered_at is not None

    async def _start_review(self, reason: str) -> None:
        state = self._state
        state.review_deadline = workflow.now() + state.policy.review_deadline
        await self._book.record(
            LedgerAction.REVIEW_STARTED, rule="R10", reason=reason, status=CaseStatus.UNDER_REVIEW
        )

    async def _evidence(self, evidence: EvidenceSubmitted) -> None:
        state = self._state
        state.evidence.append(evidence)
        if state.status is CaseStatus.AWAITING_EVIDENCE:
            state.review_deadline = workflow.now() + state.policy.review_deadline
            await self._book.record(
                LedgerAction.EVIDENCE_RECEIVED,
                rule="R6",
                reason=f"{len(evidence.photos)} photo(s); review due within "
                f"{state.policy.review_deadline}",
                status=CaseStatus.UNDER_REVIEW,
                actor=state.request.customer.customer_id,
                role="customer",
                details={"event_id": evidence.event_id, "photos": evidence.photos},
            )
            return
        await self._book.record(
            LedgerAction.MORE_EVIDENCE_RECEIVED,
            rule="R6",
            reason=f"{len(evidence.photos)} more photo(s) during review",
            actor=state.request.customer.customer_id,
            role="customer",
            details={"event_id": evidence.event_id, "photos": evidence.photos},
        )

    async def _no_evidence(self) -> None:
        state = self._state
        state.decision_reason = (
            f"R6: no photos of the problem arrived by {state.evidence_deadline}; the case is "
            "closed, and you may open a new one with photos"
        )
        await self._book.notify(Template.CASE_ABANDONED, reason=state.decision_reason)
        await self._book.record(
            LedgerAction.ABANDONED,
            rule="R6",
            reason=state.decision_reason,
            status=CaseStatus.ABANDONED,
        )

    async def _decided(self, decision: ReviewDecision) -> None:
        state = self._state
        self._acknowledge_escalation(decision.role)
        state.decided_by = decision.actor
        state.root_cause = decision.root_cause or state.root_cause
        if decision.approve:
            await self._approve(
                Approval(
                    rule="R10",
                    reason=decision.reason or f"approved by {decision.role.value} {decision.actor}",
                    actor=decision.actor,
                    role=decision.role.value,
                )
            )
            return
        state.decision_reason = f"R20: {decision.reason}"
        await self._book.notify(Template.CASE_REJECTED, reason=state.decision_reason)
        await self._book.record(
            LedgerAction.REJECTED,
            rule="R20",
            reason=state.decision_reason,
            status=CaseStatus.REJECTED,
            actor=decision.actor,
            role=decision.role.value,
        )

    async def _auto_approve(self) -> None:
        state = self._state
        state.auto_approved = True
        state.decided_by = "auto-approval"
        await self._approve(
            Approval(
                rule="R11",
                reason=f"no decision by the review deadline {state.review_deadline}: "
                "approved as the customer asked",
            )
        )

    async def _approve(self, approval: Approval) -> None:
        state = self._state
        state.merchant_pays_shipping = merchant_pays_return_shipping(state.request.reason)
        await self._book.notify(Template.CASE_APPROVED)
        await self._after_approval(approval)

    # ---- R14 follow-ups, R17 compensation, R18 escalation ---------------------------

    async def _follow_up(self) -> None:
        state = self._state
        state.follow_ups_sent += 1
        await self._book.notify(Template.PROGRESS_UPDATE, waiting_for=state.waiting_for)
        # R14 is judged against the slot the update was due at (R16 may have held it).
        due_at = state.next_follow_up_at
        state.next_follow_up_at = self._book.message_slot(
            workflow.now() + state.policy.follow_up_interval
        )
        await self._book.record(
            LedgerAction.PROGRESS_UPDATE_SENT,
            rule="R14",
            reason=f"daily update {state.follow_ups_sent}: waiting for {state.waiting_for}",
            details={"due_at": due_at},
        )

    async def _compensate(self, offer: CompensationOffer) -> None:
        above = agent_limit_refusal(offer.role, offer.amount, self._state.policy)
        if above:
            await self._book.record(
                LedgerAction.COMPENSATION_REFUSED, rule="R17", reason=f"{offer.amount}: {above}",
                actor=offer.actor, role=offer.role.value,
            )  # fmt: skip
            if self._state.escalation.level is EscalationLevel.NONE:
                await self._escalate(
                    f"agent {offer.actor} asked to grant {offer.amount}, above the agent "
                    "limit (R17)",
                    actor=offer.actor, role=offer.role.value,
                )  # fmt: skip
            return
        self._acknowledge_escalation(offer.role)
        paid = await refund(
            self._book,
            offer.amount,
            rule="R17",
            reason=f"{offer.role.value} {offer.actor} granted {offer.amount}: {offer.reason}",
            purpose=RefundPurpose.COMPENSATION,
            closes_case=False,
            actor=offer.actor,
            role=offer.role.value,
        )
        if not paid.amount_minor:
            # Offers admitted together can exhaust the limit before this one's turn: it
            # paid nothing (refund_not_due in the ledger), so it is refused.
            state = self._state
            limit = refund_limit(state.request.paid, state.reimbursed_shipping)
            self._not_applied(
                offer,
                f"R21: nothing left to refund: {state.refunded_total} of {limit} already "
                f"refunded, so the offer of {offer.amount} paid nothing",
            )

    async def _extend(self, extension: DeadlineExtension) -> None:
        state = self._state
        _, field = EXTENDABLE[extension.deadline]
        current: datetime | None = getattr(state, field)
        if current is None:
            raise ValueError(f"{field} is not set while its deadline runs")
        setattr(state, field, current + extension.extend_by)
        await self._book.record(
            LedgerAction.DEADLINE_EXTENDED,
            reason=f"{extension.deadline.value} deadline moved to {current + extension.extend_by}"
            f": {extension.reason}",
            actor=extension.actor,
            role=extension.role.value,
        )

    async def _complaint(self, complaint: Complaint) -> None:
        state = self._state
        state.complaints.append(complaint)
        # The customer's words go to the ledger only: the reason is shown in the UI.
        await self._escalate(
            f"customer complaint {complaint.event_id}{' (major)' if complaint.major else ''}",
            major=complaint.major,
            actor=state.request.customer.customer_id,
            role="customer",
            details={"complaint": complaint.summary},
        )

    async def _escalate(
        self, reason: str, *, major: bool = False, actor: str = "aftersales-workflow",
        role: str = "system", details: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        state = self._state
        level = escalation_target(state.escalation.level, major=major)
        now = workflow.now()
        state.escalation.level = level
        state.escalation.reason = reason
        state.escalation.since = now
        state.escalation.respond_by = (
            now + state.policy.supervisor_response if level is EscalationLevel.SUPERVISOR else None
        )
        await self._book.record(
            LedgerAction.ESCALATED,
            rule="R18",
            reason=f"to {level.value}: {reason}",
            actor=actor,
            role=role,
            details={"level": level.value, **(details or {})},
        )

    async def _supervisor_silent(self) -> None:
        await self._escalate(
            f"the supervisor did not act within {self._state.policy.supervisor_response}"
        )

    def _acknowledge_escalation(self, role: Role) -> None:
        """A supervisor or manager acting on the case answers its escalation."""
        if role in (Role.SUPERVISOR, Role.MANAGER):
            self._state.escalation.respond_by = None

    async def _apologise_for_wrong_item(self) -> None:
        """R7: an apology coupon, and the root cause on record."""
        state = self._state
        coupon = Money(
            amount_minor=state.policy.wrong_item_coupon_minor,
            currency=state.request.paid.currency,
        )
        await self._book.notify(Template.APOLOGY_COUPON, amount=str(coupon))
        cause = state.root_cause.value if state.root_cause else "to be tagged (auto-approved)"
        await self._book.record(
            LedgerAction.APOLOGY_COUPON_ISSUED,
            rule="R7",
            reason=f"coupon of {coupon} for shipping the wrong item; root cause {cause}",
            details={"coupon_minor": coupon.amount_minor, "root_cause": cause},
        )

    # ---- after the close: R19 disputes, R25 survey -----------------------------------

    async def _dispute_window(self) -> None:
        state = self._state
        state.dispute_deadline = workflow.now() + state.policy.dispute_window
        self._book.publish()
        while state.status in (CaseStatus.REJECTED, CaseStatus.IN_ARBITRATION):
            if state.inbox:
                await self._take_message(self._after_decision)
                if state.status is CaseStatus.REJECTED and state.ruling is not None:
                    return
            elif state.status is CaseStatus.IN_ARBITRATION:
                # R18: the escalation the dispute raised climbs while the arbiter decides.
                respond_by = state.escalation.respond_by
                if respond_by is None:
                    await workflow.wait_condition(lambda: bool(state.inbox))
                elif not await wait_until(
                    lambda: bool(state.inbox), respond_by, "R18 supervisor must act"
                ):
                    await self._supervisor_silent()
            elif not await wait_until(
                lambda: bool(state.inbox), state.dispute_deadline, "R19 dispute window"
            ):
                return

    async def _after_decision(self, message: CaseMessage) -> None:
        state = self._state
        match message:
            case Dispute() if state.status is CaseStatus.REJECTED and state.dispute is None:
                state.dispute = message
                state.closed_at = None
                await self._book.record(
                    LedgerAction.DISPUTED,
                    rule="R19",
                    reason=f"the customer asks the platform to arbitrate: {message.reason}",
                    status=CaseStatus.IN_ARBITRATION,
                    actor=state.request.customer.customer_id,
                    role="customer",
                )
                await self._escalate("the customer disputes the decision (R19)")
            case ArbitrationRuling() if state.status is CaseStatus.IN_ARBITRATION:
                await self._ruled(message)
            case _:
                await self._ignore(message, self._why_nothing_to_do(message))

    async def _ruled(self, ruling: ArbitrationRuling) -> None:
        state = self._state
        state.ruling = ruling
        self._state.escalation.respond_by = None
        await self._book.notify(Template.DISPUTE_RULED, reason=ruling.reason)
        if not ruling.favour_customer:
            await self._book.record(
                LedgerAction.RULING_UPHOLDS_DECISION, rule="R19", reason=ruling.reason,
                status=CaseStatus.REJECTED, actor=ruling.actor, role=ruling.role.value,
            )  # fmt: skip
            return
        limit = refund_limit(state.request.paid, state.reimbursed_shipping)
        amount = ruling.refund or limit.minus_floored_at_zero(state.refunded_total)
        await refund(
            self._book, amount, rule="R19",
            reason=f"the arbiter ruled for the customer: {ruling.reason}",
            actor=ruling.actor, role=ruling.role.value,
        )  # fmt: skip

    async def _send_survey(self) -> None:
        state = self._state
        request = state.request
        survey_id = f"survey-{state.case_id}"
        await workflow.start_child_workflow(
            SatisfactionSurvey.run,
            SurveyRequest(
                case_id=state.case_id,
                customer_id=request.customer.customer_id,
                time_zone=request.customer.time_zone,
                case_outcome=state.status.value,
                policy=state.policy,
            ),
            id=survey_id,
            # The survey waits days for answers; the case itself is done.
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"R25 survey · {state.case_id}",
        )
        state.survey_id = survey_id

    async def _sla_breached(self, what: str) -> None:
        self._state.sla_breaches.append(what)
        await self._escalate(f"{what} deadline breached")
