"""Evidence and review (R6, R10, R11): the customer's photos where the fault is ours, then
a person's decision, or approval by silence at the review deadline. An approval's
consequences are the kind's (what it leads to differs by kind and reason)."""

from __future__ import annotations

from temporalio import workflow

from activities.notifications import Template
from domain.case import EvidenceSubmitted, ReviewDecision, Role, ShippedBack, WarehouseScan
from domain.ledger import LedgerAction
from domain.policy import merchant_pays_return_shipping
from domain.rules import Rule
from domain.state import CaseState, CaseStatus
from workflows.case_desk import CaseDesk, Due, Woke
from workflows.phases.parcel_back import hold
from workflows.steps.casebook import Approval
from workflows.steps.escalation import acknowledge_escalation

IN_REVIEW = (CaseStatus.AWAITING_EVIDENCE, CaseStatus.UNDER_REVIEW)


async def review(desk: CaseDesk, *, holds_parcels: bool) -> Approval | None:
    """Run while the case awaits evidence or a review: the approval (by a person, or by
    silence, R11), or None if the case was rejected, abandoned, withdrawn, or was not
    under review. With `holds_parcels` (the item comes back) a shipping notice or scan
    that comes meanwhile is held for the approval.

    Waits in awaiting_evidence and under_review for: the customer's photos (R6), a
    person's decision (R10), parcel news (held), the evidence or review deadline.
    Applies: under_review (R6), approval (R10, or R11 at the deadline: the kind's run
    says where it leads), rejected (R20), abandoned with no photos (R6)."""
    state = desk.state
    parcels = (WarehouseScan, ShippedBack) if holds_parcels else ()
    while state.status in IN_REVIEW:
        turn = await desk.next((EvidenceSubmitted, ReviewDecision, *parcels), lambda: _due(state))
        match turn:
            case Woke.CASE_CLOSED:
                return None
            case Woke.DEADLINE if state.status is CaseStatus.AWAITING_EVIDENCE:
                await _no_evidence(desk)
                return None
            case Woke.DEADLINE:
                return await _auto_approve(desk)
            case EvidenceSubmitted():
                await _evidence(desk, turn)
            case ReviewDecision() if state.status is CaseStatus.UNDER_REVIEW:
                return await _decided(desk, turn)
            case WarehouseScan() | ShippedBack():
                await hold(desk, turn)
            case _:
                await desk.ignore(turn, desk.why_nothing_to_do(turn))
    return None


def _due(state: CaseState) -> Due | None:
    # The decision comes before the day's progress update when both fall due at once.
    if state.status is CaseStatus.AWAITING_EVIDENCE and state.evidence_deadline:
        return Due(state.evidence_deadline, "R6 evidence deadline", first_on_a_tie=True)
    if state.status is CaseStatus.UNDER_REVIEW and state.review_deadline:
        return Due(state.review_deadline, "R11 review deadline: auto-approve", first_on_a_tie=True)
    return None


async def _evidence(desk: CaseDesk, evidence: EvidenceSubmitted) -> None:
    state = desk.state
    state.evidence.append(evidence)
    if state.status is CaseStatus.AWAITING_EVIDENCE:
        state.review_deadline = workflow.now() + state.policy.review_deadline
        await desk.book.record(
            LedgerAction.EVIDENCE_RECEIVED,
            rule=Rule.R6,
            reason=f"{len(evidence.photos)} photo(s); review due within "
            f"{state.policy.review_deadline}",
            status=CaseStatus.UNDER_REVIEW,
            actor=state.request.customer.customer_id,
            role=Role.CUSTOMER,
            details={"event_id": evidence.event_id, "photos": evidence.photos},
        )
        return
    await desk.book.record(
        LedgerAction.MORE_EVIDENCE_RECEIVED,
        rule=Rule.R6,
        reason=f"{len(evidence.photos)} more photo(s) during review",
        actor=state.request.customer.customer_id,
        role=Role.CUSTOMER,
        details={"event_id": evidence.event_id, "photos": evidence.photos},
    )


async def _no_evidence(desk: CaseDesk) -> None:
    state = desk.state
    state.decision_reason = (
        f"R6: no photos of the problem arrived by {state.evidence_deadline}; the case is "
        "closed, and you may open a new one with photos"
    )
    await desk.book.notify(Template.CASE_ABANDONED, reason=state.decision_reason)
    await desk.book.record(
        LedgerAction.ABANDONED,
        rule=Rule.R6,
        reason=state.decision_reason,
        status=CaseStatus.ABANDONED,
    )


async def _decided(desk: CaseDesk, decision: ReviewDecision) -> Approval | None:
    state = desk.state
    acknowledge_escalation(state, decision.role)
    state.decided_by = decision.actor
    state.root_cause = decision.root_cause or state.root_cause
    if decision.approve:
        approval = Approval(
            rule=Rule.R10,
            reason=decision.reason or f"approved by {decision.role.value} {decision.actor}",
            actor=decision.actor,
            role=decision.role,
        )
        await _approve(desk)
        return approval
    state.decision_reason = f"R20: {decision.reason}"
    await desk.book.notify(Template.CASE_REJECTED, reason=state.decision_reason)
    await desk.book.record(
        LedgerAction.REJECTED,
        rule=Rule.R20,
        reason=state.decision_reason,
        status=CaseStatus.REJECTED,
        actor=decision.actor,
        role=decision.role,
    )
    return None


async def _auto_approve(desk: CaseDesk) -> Approval:
    state = desk.state
    state.auto_approved = True
    state.decided_by = "auto-approval"
    await _approve(desk)
    return Approval(
        rule=Rule.R11,
        reason=f"no decision by the review deadline {state.review_deadline}: "
        "approved as the customer asked",
    )


async def _approve(desk: CaseDesk) -> None:
    desk.state.merchant_pays_shipping = merchant_pays_return_shipping(desk.state.request.reason)
    await desk.book.notify(Template.CASE_APPROVED)
