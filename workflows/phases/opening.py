"""Open (R1, R2): record the request, judge the return window, acknowledge, and say what
comes next: refused, approved at once (the reasons that need no review), or reviewed."""

from __future__ import annotations

from temporalio import workflow

from activities.notifications import Template
from domain.case import Reason, Role
from domain.ledger import LedgerAction
from domain.policy import NO_REVIEW_RULE, check_return_window, needs_evidence, needs_review
from domain.rules import Rule
from domain.state import CaseStatus
from workflows.case_desk import CaseDesk
from workflows.steps.casebook import Approval


async def open_case(desk: CaseDesk, *, window_applies: bool) -> Approval | None:
    """Open the case; the approval when its reason needs no review (R3, R4, R5), None when
    it was refused (R1) or waits for evidence (R6) or a review (R10), or when this run
    resumes a case an earlier one opened (continue-as-new).
    `window_applies`: R1 governs returns and exchanges of delivered orders."""
    state, book = desk.state, desk.book
    if desk.resumed:
        book.publish()
        return None
    book.publish_identity()
    request = state.request
    window = (
        check_return_window(request, state.policy)
        if window_applies and request.delivered_at is not None
        else None
    )
    # The ledger says which moment R1 judged: the caller's requested_at, or our receipt.
    judged = (
        {"r1_judged_by": window.judged_by.value, "r1_judged_at": window.judged_at.isoformat()}
        if window
        else {}
    )
    await book.record(
        LedgerAction.CASE_OPENED,
        rule=Rule.R2,
        reason=f"{request.kind.value} ({request.reason.value}) requested via "
        f"{request.channel.value}",
        actor=request.customer.customer_id,
        role=Role.CUSTOMER,
        details={"channel": request.channel.value, "request_id": request.request_id} | judged,
    )
    if window is not None and not window.accepted:
        state.decision_reason = window.reason
        await book.notify(Template.CASE_REFUSED, reason=window.reason or "")
        await book.record(
            LedgerAction.REQUEST_REFUSED,
            rule=Rule.R1,
            reason=window.reason,
            status=CaseStatus.REFUSED,
        )
        return None
    await book.notify(Template.CASE_ACKNOWLEDGED)  # R10: acknowledged at once
    if not needs_review(request.kind, request.reason):
        rule = NO_REVIEW_RULE[request.reason]
        return Approval(
            rule=rule,
            reason=f"a {request.reason.value} request needs no review ({rule})"
            if request.reason is not Reason.CHANGED_MIND
            else f"a {request.reason.value} request inside the R1 window needs no "
            "review; the inspection decides",
        )
    state.first_contact_by = workflow.now() + state.policy.first_contact_deadline
    await book.schedule_call("R10 first human contact")
    if needs_evidence(request.reason) and not state.evidence:
        state.evidence_deadline = workflow.now() + state.policy.evidence_window
        await book.notify(Template.EVIDENCE_REQUESTED, deadline=state.evidence_deadline.isoformat())
        await book.record(
            LedgerAction.EVIDENCE_REQUESTED,
            rule=Rule.R6,
            reason="merchant-fault and transit-damage cases start with the customer's photos",
            status=CaseStatus.AWAITING_EVIDENCE,
        )
        return None
    state.review_deadline = workflow.now() + state.policy.review_deadline
    await book.record(
        LedgerAction.REVIEW_STARTED,
        rule=Rule.R10,
        reason="R10: a person reviews the request",
        status=CaseStatus.UNDER_REVIEW,
    )
    return None
