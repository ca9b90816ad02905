"""After the close: parcel news held from before a decision goes to a person (R20), a
rejected case may be disputed to platform arbitration (R19), every case gets a
satisfaction survey (R25), and whatever still reaches the case is recorded."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.workflow import ParentClosePolicy

from activities.notifications import Template
from domain.case import ArbitrationRuling, Dispute, Role
from domain.ledger import LedgerAction
from domain.policy import refund_limit
from domain.rules import Rule
from domain.state import CaseState, CaseStatus
from domain.survey import SurveyRequest
from domain.workflow_ids import WorkflowKind, child_workflow_id
from workflows.case_desk import CaseDesk, Due, Woke
from workflows.case_meanwhile import Meanwhile
from workflows.phases import parcel_back
from workflows.steps.escalation import escalate
from workflows.steps.payments import refund
from workflows.survey import SatisfactionSurvey

_DISPUTABLE = (CaseStatus.REJECTED, CaseStatus.IN_ARBITRATION)


async def after_close(desk: CaseDesk) -> CaseState:
    state = desk.state
    opens_window = state.status in _DISPUTABLE and state.dispute_deadline is None
    if opens_window:
        # R19's window opens as the case closes: the decision's answer already says until
        # when the customer may dispute it.
        state.dispute_deadline = workflow.now() + state.policy.dispute_window
    # The decision that closed the case is answered with the case as it left it.
    desk.inbox.applied()
    await parcel_back.leave_held_for_a_person(desk)
    await _dispute_window(desk, opens_window)
    desk.inbox.applied()  # likewise the ruling
    await _send_survey(desk)
    await desk.refuse_what_is_left()
    return desk.state


async def _dispute_window(desk: CaseDesk, opens: bool) -> None:
    """R19: a rejected case may be disputed within the window; the arbiter's ruling is
    applied as it stands. While the arbiter decides, the R18 ladder climbs (complaints,
    escalation requests, a silent supervisor), calls and assignment apply, and whatever
    would change money or status is refused: the ruling decides those.

    Waits in rejected and in_arbitration for: a dispute, the arbiter's ruling, the
    dispute deadline. Applies: in_arbitration (R19), rejected again or refunded by the
    ruling (R19), the window passed."""
    state = desk.state
    if state.status not in _DISPUTABLE:
        return
    if opens and state.dispute_deadline is not None:
        await _window_opened(desk, state.dispute_deadline)
    while state.status in _DISPUTABLE:
        arbitrating = state.status is CaseStatus.IN_ARBITRATION
        turn = await desk.next(
            (Dispute, ArbitrationRuling),
            lambda: _due(state),
            meanwhile=Meanwhile.NOT_MONEY_OR_STATUS if arbitrating else Meanwhile.NOTHING,
        )
        match turn:
            case Woke():
                await _window_passed(desk)
                return
            case Dispute() if state.status is CaseStatus.REJECTED and state.dispute is None:
                await _disputed(desk, turn)
            case ArbitrationRuling() if state.status is CaseStatus.IN_ARBITRATION:
                await _ruled(desk, turn)
                if not turn.favour_customer:
                    return  # upheld: the case stays rejected, and the window is spent
            case _:
                await desk.ignore(turn, desk.why_nothing_to_do(turn))


async def _window_opened(desk: CaseDesk, deadline: datetime) -> None:
    """The view, its search attributes and the read model say the case waits for a
    possible dispute until the deadline (cases started before that step was recorded
    publish the view only: their histories replay as they ran, docs/versioning.md)."""
    if not desk.run_records_dispute_window:
        desk.book.publish()
        return
    await desk.book.record(
        LedgerAction.DISPUTE_WINDOW_OPENED,
        rule=Rule.R19,
        reason=f"the customer may take the rejection to platform arbitration until "
        f"{deadline:%Y-%m-%d %H:%M} UTC",
    )


async def _window_passed(desk: CaseDesk) -> None:
    """The window closed undisputed: the case waits for nothing any more."""
    desk.state.dispute_window_passed = True
    if desk.run_records_dispute_window:
        await desk.book.record(
            LedgerAction.DISPUTE_WINDOW_CLOSED,
            rule=Rule.R19,
            reason="no dispute by the deadline: the rejection stands",
        )


def _due(state: CaseState) -> Due | None:
    if state.status is CaseStatus.REJECTED and state.dispute_deadline is not None:
        return Due(state.dispute_deadline, "R19 dispute window")
    return None


async def _disputed(desk: CaseDesk, dispute: Dispute) -> None:
    state = desk.state
    state.dispute = dispute
    state.closed_at = None
    await desk.book.record(
        LedgerAction.DISPUTED,
        rule=Rule.R19,
        # The customer's own words stay in the case (its view), not in the ledger's reason.
        reason="the customer asks the platform to arbitrate",
        status=CaseStatus.IN_ARBITRATION,
        actor=state.request.customer.customer_id,
        role=Role.CUSTOMER,
    )
    await escalate(desk.book, "the customer disputes the decision (R19)")


async def _ruled(desk: CaseDesk, ruling: ArbitrationRuling) -> None:
    state = desk.state
    state.ruling = ruling
    state.escalation.respond_by = None
    await desk.book.notify(Template.DISPUTE_RULED, reason=ruling.reason)
    if not ruling.favour_customer:
        await desk.book.record(
            LedgerAction.RULING_UPHOLDS_DECISION, rule=Rule.R19, reason=ruling.reason,
            status=CaseStatus.REJECTED, actor=ruling.actor, role=ruling.role,
        )  # fmt: skip
        return
    limit = refund_limit(state.request.paid, state.reimbursed_shipping)
    amount = ruling.refund or limit.minus_floored_at_zero(state.refunded_total)
    await refund(
        desk, amount, rule=Rule.R19,
        reason=f"the arbiter ruled for the customer: {ruling.reason}",
        actor=ruling.actor, role=ruling.role,
    )  # fmt: skip


async def _send_survey(desk: CaseDesk) -> None:
    state = desk.state
    request = state.request
    survey_id = child_workflow_id(WorkflowKind.SURVEY, state.case_id)
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
