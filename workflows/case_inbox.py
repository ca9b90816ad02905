"""How messages reach a case: handlers only enqueue; the case's one coroutine takes them
in order; an Update waits for its message to be applied and answers with what it came to
(the case's view right after it, or why it changed nothing)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from domain.state import CaseMessage, CaseState, message_id
from domain.view import CaseView

# The error type of a decision its validator admitted that the case could then not apply.
NOT_APPLIED = "NotApplied"


class CaseInbox:
    def __init__(self, state: CaseState, view: Callable[[], CaseView]) -> None:
        self._state = state
        self._view = view
        # The message the case is applying now, until it takes the next one.
        self._in_progress: str | None = None
        # The workflow task time of the latest messages in, and how many of this task's
        # updates wait in the inbox.
        self._arrived_at: datetime | None = None
        self._updates_now = 0
        # The messages update handlers wait on, and what each came to until its handler
        # answers: the case's view right after it was applied, or why it changed nothing.
        self._awaited: set[str] = set()
        self._outcomes: dict[str, CaseView | str] = {}

    def __bool__(self) -> bool:
        return bool(self._state.inbox)

    def accept(self, message: CaseMessage, *, by_update: bool = False) -> None:
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

    async def accept_and_wait(self, message: CaseMessage) -> CaseView:
        """Decisions go through the same inbox as everything else, so one coroutine alone
        changes the case; the caller gets the case's view right after its decision was
        applied."""
        ident = message_id(message)
        if ident not in self._state.seen_message_ids:
            self._awaited.add(ident)
        self.accept(message, by_update=True)
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

    def take(self) -> CaseMessage:
        """The oldest message, now being applied until `applied` (or the next `take`)."""
        self.applied()
        message = self._state.inbox.pop(0)
        self._in_progress = message_id(message)
        return message

    def applied(self) -> None:
        """The message taken last is applied: its Update, if one waits, answers with the
        case as this decision left it (the refund it paid is the view's last) and nothing
        the case did after it."""
        ident = self._in_progress
        if ident is None:
            return
        if ident in self._awaited:
            self._outcomes.setdefault(ident, self._view())
        self._in_progress = None

    def not_applied(self, message: CaseMessage, why: str) -> None:
        """The update waiting on `message`, if any, is refused with `why`."""
        ident = message_id(message)
        if ident in self._awaited:
            self._outcomes[ident] = why
