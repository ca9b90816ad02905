"""R12: the customer has a window to hand the item to a carrier, with reminders."""

from collections.abc import Callable

from temporalio import workflow

from activities.notifications import Template
from domain.policy import ship_back_schedule
from domain.state import ReminderSent
from workflows.steps.casebook import CaseBook
from workflows.steps.timers import wait_until


async def await_ship_back(book: CaseBook, news_arrived: Callable[[], bool]) -> bool:
    """Wait until a message arrives (True) or the ship-back window closes (False),
    sending each reminder that falls due on the way."""
    state = book.state
    if state.approved_at is None:
        raise RuntimeError("ship-back window opens only after approval")
    schedule = ship_back_schedule(state.approved_at, state.policy)
    for index, due in enumerate(schedule.reminders):
        if index < len(state.reminders_sent):
            continue
        if await wait_until(news_arrived, due, f"R12 ship-back reminder {index + 1}"):
            return True
        offset = state.policy.ship_back_reminders[index]
        state.reminders_sent.append(ReminderSent(after=offset, due_at=due, sent_at=workflow.now()))
        await book.notify(
            Template.SHIP_BACK_REMINDER,
            deadline=schedule.deadline.isoformat(),
            reminder=str(index + 1),
        )
        await book.record(
            "ship_back_reminder_sent",
            rule="R12",
            reason=f"reminder {index + 1}: not shipped {offset.days} days after approval",
        )
    return await wait_until(news_arrived, schedule.deadline, "R12 ship-back deadline")
