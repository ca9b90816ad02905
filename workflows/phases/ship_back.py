"""Ship back (R12): once approved, the customer has a window to hand the item to a
carrier, with reminders; the window closing with nothing sent abandons the case."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow

from activities.notifications import Template
from domain.case import ShippedBack, WarehouseScan
from domain.ledger import LedgerAction
from domain.policy import ship_back_schedule
from domain.rules import Rule
from domain.state import CaseState, CaseStatus, ReminderSent
from workflows.case_desk import CaseDesk, Due, Woke
from workflows.phases import parcel_back
from workflows.steps.casebook import Approval


async def open_ship_back_window(desk: CaseDesk, approval: Approval) -> None:
    """The approval opens the window; parcel news held from before it applies now."""
    state = desk.state
    state.approved_at = workflow.now()
    state.ship_back_deadline = ship_back_schedule(state.approved_at, state.policy).deadline
    await desk.book.notify(
        Template.SHIP_BACK_INSTRUCTIONS, deadline=state.ship_back_deadline.isoformat()
    )
    await desk.book.record_approved(
        LedgerAction.APPROVED, approval, status=CaseStatus.AWAITING_SHIP_BACK
    )
    await parcel_back.apply_held(desk)


async def ship_back(desk: CaseDesk) -> None:
    """Run until the parcel is at the warehouse, or the window closed (abandoned) or the
    customer withdrew (the desk closed the case).

    Waits in awaiting_ship_back and in_return_transit for: the shipping notice, dock and
    inspection scans, each R12 reminder and the ship-back deadline. Applies:
    in_return_transit (R12), awaiting_inspection on the dock scan (R26), a reminder,
    abandoned at the deadline (R12)."""
    state = desk.state
    while state.status in parcel_back.BEFORE_RECEIPT:
        turn = await desk.next((WarehouseScan, ShippedBack), lambda: _next_due(state))
        match turn:
            case Woke.DEADLINE:
                await _moment_passed(desk)
            case WarehouseScan() | ShippedBack():
                await parcel_back.take(desk, turn)


@dataclass(frozen=True)
class _Moment:
    at: datetime
    # The reminder's index, or None for the deadline.
    reminder: int | None


def _next_moment(state: CaseState) -> _Moment:
    """The next R12 moment: a reminder not yet sent, else the deadline."""
    if state.approved_at is None:
        raise RuntimeError("the ship-back window opens only after approval")
    schedule = ship_back_schedule(state.approved_at, state.policy)
    sent = len(state.reminders_sent)
    deadline = state.ship_back_deadline or schedule.deadline  # an operator may extend it
    if sent < len(schedule.reminders) and schedule.reminders[sent] < deadline:
        return _Moment(schedule.reminders[sent], reminder=sent)
    return _Moment(deadline, reminder=None)


def _next_due(state: CaseState) -> Due | None:
    if state.status is not CaseStatus.AWAITING_SHIP_BACK:
        return None  # in transit: the parcel is on its way
    moment = _next_moment(state)
    if moment.reminder is None:
        return Due(moment.at, "R12 ship-back deadline")
    return Due(moment.at, f"R12 ship-back reminder {moment.reminder + 1}")


async def _moment_passed(desk: CaseDesk) -> None:
    """Send the reminder that fell due, or close the case if it was the deadline."""
    state = desk.state
    moment = _next_moment(state)
    if moment.reminder is None:
        await _abandon(desk)
        return
    index = moment.reminder
    offset = state.policy.ship_back_reminders[index]
    state.reminders_sent.append(
        ReminderSent(after=offset, due_at=moment.at, sent_at=workflow.now())
    )
    await desk.book.notify(
        Template.SHIP_BACK_REMINDER,
        deadline=(state.ship_back_deadline or moment.at).isoformat(),
        reminder=str(index + 1),
    )
    await desk.book.record(
        LedgerAction.SHIP_BACK_REMINDER_SENT,
        rule=Rule.R12,
        reason=f"reminder {index + 1}: not shipped {offset.days} days after approval",
    )


async def _abandon(desk: CaseDesk) -> None:
    state = desk.state
    state.decision_reason = (
        f"R12: the parcel was not handed to a carrier by {state.ship_back_deadline}; "
        "the return is closed and nothing is refunded"
    )
    await desk.book.notify(Template.CASE_ABANDONED, reason=state.decision_reason)
    await desk.book.record(
        LedgerAction.ABANDONED,
        rule=Rule.R12,
        reason=state.decision_reason,
        status=CaseStatus.ABANDONED,
    )
