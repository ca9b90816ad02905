"""How messages reach a case: handlers only enqueue; the case's one coroutine takes them
in order; an Update waits for its message to be applied and answers with what it came to
(the case's view once the case next waits, or the typed refusal of why it changed
nothing). A retried Update (same action id, same message) gets the same refusal again;
another message under an id the case already took is refused (`RefusalKind.ID_REUSED`)."""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from domain.refusal import Refusal, RefusalKind
from domain.state import (
    REFUSALS_KEPT,
    CaseMessage,
    CaseState,
    message_fingerprint,
    message_id,
    message_key,
)
from domain.view import CaseView

# The error type of a decision its validator admitted that the case could then not apply;
# its details are one `refusal_details` mapping (the rule and the kind of no).
NOT_APPLIED = "NotApplied"


def refusal_details(refusal: Refusal) -> dict[str, str | None]:
    return {"rule": refusal.rule, "kind": refusal.kind.value}


def id_reused(message: CaseMessage) -> Refusal:
    return Refusal(
        rule=None,
        kind=RefusalKind.ID_REUSED,
        text=f"id: {message_id(message)} already names another message this case took; "
        "send this one under an id of its own",
    )


class CaseInbox:
    def __init__(self, state: CaseState, view: Callable[[], CaseView]) -> None:
        self._state = state
        self._view = view
        # The `message_key` of the message the case is applying now, until it takes the
        # next one.
        self._in_progress: str | None = None
        # The workflow task of the latest messages in, and how many of this task's updates
        # wait in the inbox. A task is told by the history's length at its start: each
        # task adds events, so two tasks never share it (two may share a start time), and
        # a replay sees the same length as the live run did.
        self._arrived_in_task: int | None = None
        self._updates_now = 0
        # The messages (by key) update handlers wait on, and the case's view once each was
        # applied, until its handler answers (refusals are kept in the state, for retries
        # too).
        self._awaited: set[str] = set()
        self._views: dict[str, CaseView] = {}

    def __bool__(self) -> bool:
        return bool(self._state.inbox)

    def is_repeat(self, message: CaseMessage) -> bool:
        """The message came before: its id with the same fingerprint, or an Update refused
        for reusing an id, retried."""
        first = self._state.seen_messages.get(message_id(message))
        return (
            first == message_fingerprint(message)
            or message_key(message) in self._state.refused_updates
        )

    def reuses_an_id(self, message: CaseMessage) -> bool:
        """Another message took this message's id first (the case refuses this one)."""
        first = self._state.seen_messages.get(message_id(message))
        return first is not None and first != message_fingerprint(message)

    def accept(self, message: CaseMessage, *, by_update: bool = False) -> None:
        """A repeat changes nothing and leaves no trace (its first coming is in the
        ledger, and a retried Update gets its first answer). Any other message is queued,
        one that reuses an id too: the case refuses it in turn, in the ledger."""
        state = self._state
        if self.is_repeat(message):
            workflow.logger.info("repeated message %s ignored", message_id(message))
            return
        state.seen_messages.setdefault(message_id(message), message_fingerprint(message))
        # Signals and updates that arrive in one workflow task reach their handlers in an
        # order a replay need not repeat (a replay takes updates from their own history
        # events), so within one task the signals queue ahead of the updates, each stream
        # in its own order: the case applies them alike live and on replay. The inbox
        # only ever loses its head, so this task's updates are its tail.
        task = workflow.info().get_current_history_length()
        if task != self._arrived_in_task:
            self._arrived_in_task, self._updates_now = task, 0
        updates_now = min(self._updates_now, len(state.inbox))
        if by_update:
            state.inbox.append(message)
            updates_now += 1
        else:
            state.inbox.insert(len(state.inbox) - updates_now, message)
        self._updates_now = updates_now

    async def accept_and_wait(self, message: CaseMessage) -> CaseView:
        """Decisions go through the same inbox as everything else, so one coroutine alone
        changes the case. The caller gets the case's view as it stood when the case next
        waited after applying the decision (see `applied`), or NOT_APPLIED with the
        refusal; a retry of a decision already applied gets the case's view now."""
        key = message_key(message)
        if not self.is_repeat(message):
            self._awaited.add(key)
        self.accept(message, by_update=True)
        await workflow.wait_condition(
            lambda: (
                self._in_progress != key and all(message_key(m) != key for m in self._state.inbox)
            )
        )
        self._awaited.discard(key)
        view = self._views.pop(key, None)
        # Admitted by its validator, then not applicable by the time its turn came (two
        # approvals at once, an approval after the R11 auto-approval, an offer once the
        # refund limit is reached): the caller hears why, and the ledger says so.
        refusal = self._state.refused_updates.get(key)
        if refusal is not None:
            raise ApplicationError(
                refusal.text, refusal_details(refusal), type=NOT_APPLIED, non_retryable=True
            )
        return view or self._view()

    def take(self) -> CaseMessage:
        """The oldest message, now being applied until `applied` (or the next `take`)."""
        self.applied()
        message = self._state.inbox.pop(0)
        self._in_progress = message_key(message)
        return message

    def applied(self) -> None:
        """The message taken last is applied. The case calls this when it next waits
        (`CaseDesk.next`, or the end of its run), so the waiting Update, if any, answers
        with everything the case did on it before waiting again: an approval's answer
        shows the ship-back window it opened, an offer's shows the refund it paid last."""
        key = self._in_progress
        if key is None:
            return
        if key in self._awaited and key not in self._state.refused_updates:
            self._views.setdefault(key, self._view())
        self._in_progress = None

    def not_applied(self, message: CaseMessage, refusal: Refusal) -> None:
        """The Update waiting on `message`, if any, is refused with `refusal`, and so is
        any retry of it."""
        key = message_key(message)
        if key not in self._awaited:
            return
        refused = self._state.refused_updates
        refused[key] = refusal
        while len(refused) > REFUSALS_KEPT:
            del refused[next(iter(refused))]
