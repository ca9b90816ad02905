"""What a case applies in every phase while the phase waits, whatever it waits for: the
customer's complaints and withdrawal, operators' assignment, deadline extensions, calls
(R16), compensation offers (R17) and escalation requests (R18), and the daily progress
update (R14). The desk (case_desk.py) hands them here; `Meanwhile` is how a phase says
which of them apply while it waits (in arbitration, what would change money or status
does not, R19)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

from temporalio import workflow

from activities.notifications import Template
from domain.case import (
    Assignment,
    CallRequest,
    CompensationOffer,
    Complaint,
    DeadlineExtension,
    EscalationRequest,
    Role,
    Withdrawal,
)
from domain.ledger import LedgerAction, RefundPurpose
from domain.policy import agent_limit_refusal, escalation_refusal, refund_limit
from domain.refusal import Refusal, RefusalKind
from domain.rules import Rule
from domain.state import EXTENDABLE, WITHDRAWABLE, CaseMessage, CaseStatus, EscalationLevel
from workflows.steps.escalation import acknowledge_escalation, escalate
from workflows.steps.payments import refund

if TYPE_CHECKING:  # the desk hands messages here, and these act through it
    from workflows.case_desk import CaseDesk


class Meanwhile(Enum):
    """Which of the messages every phase shares the desk applies while a phase waits."""

    EVERYTHING = "everything"
    # Arbitration: complaints, escalations, calls and assignment apply; what would change
    # money or status is refused (R19).
    NOT_MONEY_OR_STATUS = "not_money_or_status"
    NOTHING = "nothing"  # a closed case that only waits for a dispute (R19)


# In arbitration the arbiter's ruling alone changes money and status (R19).
_MONEY_OR_STATUS = (CompensationOffer, Withdrawal, DeadlineExtension)


async def apply_shared(desk: CaseDesk, message: CaseMessage, scope: Meanwhile) -> bool:
    """Apply a message every phase takes alike; False if it is not one now. A message
    refused here for its own reason (R16, R18) counts as handled."""
    state = desk.state
    status = state.status
    if scope is Meanwhile.NOTHING or (
        scope is Meanwhile.NOT_MONEY_OR_STATUS and isinstance(message, _MONEY_OR_STATUS)
    ):
        return False
    match message:
        case Complaint():
            await _complaint(desk, message)
        case Withdrawal() if status in WITHDRAWABLE and not state.refunds:
            await desk.book.record(
                LedgerAction.WITHDRAWN,
                reason=f"the customer withdrew the request{': ' if message.reason else ''}"
                f"{message.reason}",
                status=CaseStatus.WITHDRAWN,
                actor=state.request.customer.customer_id,
                role=Role.CUSTOMER,
            )
        case CompensationOffer() if not status.is_closed:
            await _compensate(desk, message)
        case Assignment() if not status.is_closed:
            state.assigned_agent = message.agent
            await desk.book.record(
                LedgerAction.ASSIGNED, reason=f"assigned to {message.agent}",
                actor=message.actor, role=message.role,
            )  # fmt: skip
        case DeadlineExtension() if status is EXTENDABLE[message.deadline][0]:
            await _extend(desk, message)
        case CallRequest() if not status.is_closed:
            if too_many := await desk.book.schedule_call(message.purpose):
                # Calls admitted together can pass the cap before this one's turn; the
                # book recorded call_not_scheduled.
                desk.inbox.not_applied(message, too_many)
                return True
            await desk.book.record(
                LedgerAction.CALL_SCHEDULED,
                rule=Rule.R16,
                reason=f"call {state.calls_scheduled}: {message.purpose}",
                actor=message.actor,
                role=message.role,
            )
        case EscalationRequest() if at_the_top := escalation_refusal(state.escalation.level):
            # Requests admitted together can reach the ladder's top before this one.
            await desk.ignore(message, at_the_top)
        case EscalationRequest() if not status.is_closed:
            # The requester's words go to the ledger only (the reason is shown in the UI).
            await escalate(
                desk.book, f"asked for by {message.role.value} {message.actor}",
                actor=message.actor, role=message.role,
                details={"request": message.reason},
            )  # fmt: skip
        case _:
            return False
    return True


async def follow_up(desk: CaseDesk) -> None:
    """R14: the day's progress update while the case waits on us."""
    state = desk.state
    state.follow_ups_sent += 1
    await desk.book.notify(Template.PROGRESS_UPDATE, waiting_for=state.waiting_for)
    # R14 is judged against the slot the update was due at (R16 may have held it).
    due_at = state.next_follow_up_at
    state.next_follow_up_at = desk.book.message_slot(
        workflow.now() + state.policy.follow_up_interval
    )
    await desk.book.record(
        LedgerAction.PROGRESS_UPDATE_SENT,
        rule=Rule.R14,
        reason=f"daily update {state.follow_ups_sent}: waiting for {state.waiting_for}",
        details={"due_at": due_at},
    )


async def _compensate(desk: CaseDesk, offer: CompensationOffer) -> None:
    state = desk.state
    above = agent_limit_refusal(offer.role, offer.amount, state.policy)
    if above:
        await desk.book.record(
            LedgerAction.COMPENSATION_REFUSED,
            rule=above.rule,
            reason=f"{offer.amount}: {above.text}",
            actor=offer.actor,
            role=offer.role,
        )
        if state.escalation.level is EscalationLevel.NONE:
            await escalate(
                desk.book, f"agent {offer.actor} asked to grant {offer.amount}, above the agent "
                "limit (R17)",
                actor=offer.actor, role=offer.role,
            )  # fmt: skip
        return
    acknowledge_escalation(desk.state, offer.role)
    paid = await refund(
        desk,
        offer.amount,
        rule=Rule.R17,
        reason=f"{offer.role.value} {offer.actor} granted {offer.amount}: {offer.reason}",
        purpose=RefundPurpose.COMPENSATION,
        closes_case=False,
        actor=offer.actor,
        role=offer.role,
    )
    if not paid.amount_minor:
        # Offers admitted together can exhaust the limit before this one's turn: it
        # paid nothing (refund_not_due in the ledger), so it is refused.
        limit = refund_limit(state.request.paid, state.reimbursed_shipping)
        desk.inbox.not_applied(
            offer,
            Refusal(
                rule=Rule.R21,
                kind=RefusalKind.NOTHING_LEFT_TO_REFUND,
                text=f"R21: nothing left to refund: {state.refunded_total} of {limit} "
                f"already refunded, so the offer of {offer.amount} paid nothing",
            ),
        )


async def _extend(desk: CaseDesk, extension: DeadlineExtension) -> None:
    state = desk.state
    _, field = EXTENDABLE[extension.deadline]
    current: datetime | None = getattr(state, field)
    if current is None:
        raise ValueError(f"{field} is not set while its deadline runs")
    setattr(state, field, current + extension.extend_by)
    await desk.book.record(
        LedgerAction.DEADLINE_EXTENDED,
        reason=f"{extension.deadline.value} deadline moved to {current + extension.extend_by}"
        f": {extension.reason}",
        actor=extension.actor,
        role=extension.role,
    )


async def _complaint(desk: CaseDesk, complaint: Complaint) -> None:
    state = desk.state
    state.complaints.append(complaint)
    # The customer's words go to the ledger only: the reason is shown in the UI.
    await escalate(
        desk.book,
        f"customer complaint {complaint.event_id}{' (major)' if complaint.major else ''}",
        major=complaint.major,
        actor=state.request.customer.customer_id,
        role=Role.CUSTOMER,
        details={"complaint": complaint.summary},
    )
