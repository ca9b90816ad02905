"""R12: the customer has a window to hand the item to a carrier, with reminders."""

from datetime import datetime

from temporalio import workflow

from activities.notifications import Template
from domain.ledger import LedgerAction
from domain.policy import ship_back_schedule
from domain.state import CaseState, CaseStatus, ReminderSent
from workflows.steps.casebook import Approval, CaseBook


def next_ship_back_due(state: CaseState) -> tuple[datetime, str]:
    """The next R12 moment: a reminder not yet sent, else the deadline."""
    if state.approved_at is None:
        raise RuntimeError("the ship-back window opens only after approval")
    schedule = ship_back_schedule(state.approved_at, state.policy)
    sent = len(state.reminders_sent)
    deadline = state.ship_back_deadline or schedule.deadline  # an operator may extend it
    if sent < len(schedule.reminders) and schedule.reminders[sent] < deadline:
        return schedule.reminders[sent], f"R12 ship-back reminder {sent + 1}"
    return deadline, "R12 ship-back deadline"


async def open_ship_back_window(book: CaseBook, approval: Approval) -> None:
    state = book.state
    state.approved_at = workflow.now()
    state.ship_back_deadline = ship_back_schedule(state.approved_at, state.policy).deadline
    await book.notify(
        Template.SHIP_BACK_INSTRUCTIONS, deadline=state.ship_back_deadline.isoformat()
    )
    await book.record_approved(
        LedgerAction.APPROVED, approval, status=CaseStatus.AWAITING_SHIP_BACK
    )


async def ship_back_moment_passed(book: CaseBook) -> None:
    """Send the reminder that fell due, or close the case if it was the deadline."""
    state = book.state
    due, label = next_ship_back_due(state)
    index = len(state.reminders_sent)
    if label == "R12 ship-back deadline":
        await abandon(book)
        return
    offset = state.policy.ship_back_reminders[index]
    state.reminders_sent.append(ReminderSent(after=offset, due_at=due, sent_at=workflow.now()))
    await book.notify(
        Template.SHIP_BACK_REMINDER,
        deadline=(state.ship_back_deadline or due).isoformat(),
        reminder=str(index + 1),
    )
    await book.record(
        LedgerAction.SHIP_BACK_REMINDER_SENT,
        rule="R12",
        reason=f"reminder {index + 1}: not shipped {offset.days} days after approval",
    )


async def abandon(book: CaseBook) -> None:
    state = book.state
    state.decision_reason = (
        f"R12: the parcel was not handed to a carrier by {state.ship_back_deadline}; "
        "the return is closed and nothing is refunded"
    )
    await book.notify(Template.CASE_ABANDONED, reason=state.decision_reason)
    await book.record(
        LedgerAction.ABANDONED,
        rule="R12",
        reason=state.decision_reason,
        status=CaseStatus.ABANDONED,
    )
