"""How a phase of a case waits, whatever it waits for.

A phase asks the desk for its next message: `await desk.next(accepts=(...), due=...)`
returns the next message of those types, or why the wait ended without one: the phase's
deadline came (`Woke.DEADLINE`), no message is left in (`Woke.INBOX_EMPTY`, for a phase
with work to do then), or the case closed meanwhile (`Woke.CASE_CLOSED`: withdrawn).
Meanwhile the desk applies the messages every phase shares (case_meanwhile.py), sends the
R14 daily update and escalates a silent supervisor (R18), records any other message as
`message_ignored` with its typed refusal (never dropped; the Update that sent it is
refused with it), and continues as new when the history is long. It marks the message a
phase took applied when the phase next waits, so the Update that sent it answers with
what it came to."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Literal, overload

from pydantic import BaseModel
from temporalio import workflow

from domain.case import (
    PaymentResolution,
    PaymentResolutionKind,
)
from domain.ledger import LedgerAction
from domain.policy import (
    unapplied_message_refusal,
)
from domain.refusal import OutsideAnswer, Refusal
from domain.rules import Rule
from domain.state import (
    MERCHANT_SIDE,
    CaseMessage,
    CaseState,
    CaseStatus,
    DeclinedPayment,
    message_id,
)
from workflows.case_inbox import CaseInbox, id_reused
from workflows.case_meanwhile import Meanwhile, apply_shared, follow_up
from workflows.case_run import CaseRun
from workflows.steps.casebook import CaseBook
from workflows.steps.escalation import (
    acknowledge_escalation,
    supervisor_silent,
)
from workflows.steps.timers import wait_until

# Fields of a message that name a person's parcel, not what the message asked: an ignored
# message is recorded without them (the ledger holds no tracking number).
_KEPT_OUT_OF_THE_LEDGER = {"tracking_number"}


class Woke(Enum):
    """Why a phase's wait ended when it was not for one of its messages."""

    DEADLINE = "deadline"  # the phase's deadline came
    # No message waits, and the phase has work to do once none does (`until_inbox_empty`).
    INBOX_EMPTY = "inbox_empty"
    CASE_CLOSED = "case_closed"  # the case closed meanwhile (the customer withdrew)


@dataclass(frozen=True)
class Due:
    """A phase's next deadline. The summary labels the timer (display only)."""

    at: datetime
    summary: str
    # On a tie with the desk's own deadlines (R14, R18), this one comes first.
    first_on_a_tie: bool = False


@dataclass(frozen=True)
class _Pending:
    due: Due
    # What the desk does when it comes; None for the phase's own deadline (the phase acts).
    act: Callable[[], Awaitable[None]] | None


# The patch of issue 17: R19's dispute window recorded in the ledger (phases/after_close).
DISPUTE_WINDOW_IN_THE_VIEW = "dispute-window-in-the-view"


def no_deadline() -> Due | None:
    return None


class CaseDesk:
    def __init__(self, run: CaseRun, state: CaseState, book: CaseBook, inbox: CaseInbox) -> None:
        self.run = run
        self.state = state
        self.book = book
        self.inbox = inbox
        # Continue-as-new is weighed when a phase asks for its next turn, once it has had
        # one (the run's first turn starts where the carried state left off).
        self._had_a_turn = False
        # Asked once at the start of the run (docs/versioning.md): whether R19's window
        # opening and passing are ledger steps, so the read model and NextDeadline say
        # the case waits for a possible dispute. Runs started before replay without them.
        self.run_records_dispute_window = workflow.patched(DISPUTE_WINDOW_IN_THE_VIEW)

    @property
    def resumed(self) -> bool:
        """This run carries on a case an earlier run handed over (continue-as-new)."""
        return self.run.carried_state is not None

    # ---- the turn ---------------------------------------------------------------------

    @overload
    async def next(
        self,
        accepts: tuple[type[BaseModel], ...],
        due: Callable[[], Due | None] = ...,
        *,
        until_inbox_empty: Literal[False] = False,
        meanwhile: Meanwhile = ...,
    ) -> CaseMessage | Literal[Woke.DEADLINE, Woke.CASE_CLOSED]: ...

    @overload
    async def next(
        self,
        accepts: tuple[type[BaseModel], ...],
        due: Callable[[], Due | None] = ...,
        *,
        until_inbox_empty: bool,
        meanwhile: Meanwhile = ...,
    ) -> CaseMessage | Woke: ...

    async def next(
        self,
        accepts: tuple[type[BaseModel], ...],
        due: Callable[[], Due | None] = no_deadline,
        *,
        until_inbox_empty: bool = False,
        meanwhile: Meanwhile = Meanwhile.EVERYTHING,
    ) -> CaseMessage | Woke:
        """The phase's next message of a type in `accepts`, or `Woke.DEADLINE` once `due()`
        passes, or with `until_inbox_empty` `Woke.INBOX_EMPTY` when no message waits, or
        `Woke.CASE_CLOSED`. `due` is asked afresh each time: an operator may have extended
        it meanwhile. `meanwhile` says which of the messages every phase shares the desk
        applies while the phase waits; any other message the phase does not take is
        refused with why."""
        state = self.state
        if self._had_a_turn:
            await self._continue_as_new_if_long()
        while True:
            self._had_a_turn = True
            if self.inbox:
                message = self.inbox.take()
                reused = self.inbox.reuses_an_id(message)
                if not reused and isinstance(message, accepts):
                    return message
                was_closed = state.status.is_closed
                if reused or not await apply_shared(self, message, meanwhile):
                    await self.ignore(message, self.why_nothing_to_do(message))
                if state.status.is_closed and not was_closed:
                    return Woke.CASE_CLOSED
            elif until_inbox_empty:
                return Woke.INBOX_EMPTY
            elif await self._waited(due()):
                return Woke.DEADLINE
            await self._continue_as_new_if_long()

    async def _waited(self, phase_due: Due | None) -> bool:
        """Wait for a message or the next deadline; True if it was the phase's and came
        (the desk's own deadlines it acts on itself)."""
        state = self.state
        phase = [_Pending(phase_due, act=None)] if phase_due else []
        desk = self._desk_dues()
        # min() keeps the first of equal deadlines.
        pending = phase + desk if phase_due and phase_due.first_on_a_tie else desk + phase
        if not pending:
            await workflow.wait_condition(lambda: bool(state.inbox) or self._history_is_long())
            return False
        first = min(pending, key=lambda p: p.due.at)
        if await wait_until(lambda: bool(state.inbox), first.due.at, first.due.summary):
            return False
        if first.act is None:
            return True
        await first.act()
        return False

    def _desk_dues(self) -> list[_Pending]:
        state = self.state
        dues: list[_Pending] = []
        if state.status in MERCHANT_SIDE and state.next_follow_up_at:
            dues.append(
                _Pending(
                    Due(state.next_follow_up_at, "R14 daily progress update"),
                    lambda: follow_up(self),
                )
            )
        if state.escalation.respond_by is not None and not state.status.is_closed:
            dues.append(
                _Pending(
                    Due(state.escalation.respond_by, "R18 supervisor must act"),
                    lambda: supervisor_silent(self.book),
                )
            )
        return dues

    # ---- continue-as-new --------------------------------------------------------------

    def _history_is_long(self) -> bool:
        info = workflow.info()
        # A declined payment is waited on inside the step that made it (a refund of any
        # phase, a compensation): that run resolves it, and continues as new after.
        return self.state.declined_payment is None and (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self.run.history_events_before_continue
        )

    async def _continue_as_new_if_long(self) -> None:
        """Hand the case to a new run once the history is long. The new run resumes at the
        phase the carried status names (each phase runs only while the case is in it)."""
        state = self.state
        self.inbox.applied()
        if not self._history_is_long():
            return
        # An update handler finishes only once its message is applied: waiting for handlers
        # alone would wait forever on a decision just sent.
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() or bool(state.inbox))
        if not state.inbox:
            workflow.continue_as_new(self.run.model_copy(update={"carried_state": state}))

    # ---- R21: a payment the provider declined ------------------------------------------

    async def payment_declined(self, declined: DeclinedPayment) -> PaymentResolution:
        """No money moved: the case waits in `payment_declined` for a person, who retries
        the payment or records it settled another way (`resolve_declined_payment`).
        Complaints, calls, escalations and assignment go on meanwhile; what would move
        money or status waits (refused, as in arbitration). The status comes back once
        it is resolved."""
        state = self.state
        state.declined_payment = declined
        unknown = declined.answer is OutsideAnswer.UNKNOWN
        await self.book.record(
            LedgerAction.PAYMENT_DECLINED,
            rule=Rule.R21,
            reason=f"the {declined.kind.value} of {declined.amount} "
            + ("got an answer the provider's contract does not define" if unknown
               else "was declined")
            + f": {declined.reason}; a person retries it or records it settled another way",
            status=CaseStatus.PAYMENT_DECLINED,
            details={
                "kind": declined.kind, "amount_minor": declined.amount.amount_minor,
                "currency": declined.amount.currency, "key": declined.idempotency_key,
                "answer": declined.answer,
            },
        )  # fmt: skip
        while not isinstance(
            resolution := await self.next(
                (PaymentResolution,), meanwhile=Meanwhile.NOT_MONEY_OR_STATUS
            ),
            PaymentResolution,
        ):
            pass  # no deadline and no withdrawal here: only a resolution ends the wait
        acknowledge_escalation(self.state, resolution.role)
        state.declined_payment = None
        retry = resolution.resolution is PaymentResolutionKind.RETRY
        await self.book.record(
            LedgerAction.PAYMENT_RETRIED if retry else LedgerAction.PAYMENT_SETTLED_ELSEWHERE,
            rule=Rule.R21,
            reason=f"{resolution.role.value} {resolution.actor}: {resolution.reason}",
            status=declined.status_before,
            actor=resolution.actor,
            role=resolution.role,
            details={"key": declined.idempotency_key, "action_id": resolution.action_id}
            | ({} if retry else {"reference": resolution.reference}),
        )
        return resolution

    # ---- messages that change nothing -------------------------------------------------

    async def ignore(self, message: CaseMessage, refusal: Refusal) -> None:
        self.inbox.not_applied(message, refusal)
        await self.book.record(
            LedgerAction.MESSAGE_IGNORED,
            rule=refusal.rule,
            reason=f"{type(message).__name__} {message_id(message)}: {refusal.text}",
            details={
                "message": message.model_dump(mode="json", exclude=_KEPT_OUT_OF_THE_LEDGER),
                "kind": refusal.kind,
            },
        )

    def why_nothing_to_do(self, message: CaseMessage) -> Refusal:
        """Why a message changes nothing now (recorded with it, never dropped)."""
        if self.inbox.reuses_an_id(message):
            return id_reused(message)
        return unapplied_message_refusal(self.state, message)

    async def refuse_what_is_left(self) -> None:
        """The case has ended: whatever reaches it is recorded with why it changed nothing
        (never dropped), and the run completes only once every update handler has
        answered, so none ends unfinished and no message lands after the last look."""
        state = self.state
        self.inbox.applied()
        while True:
            await workflow.wait_condition(
                lambda: workflow.all_handlers_finished() or bool(state.inbox)
            )
            if not state.inbox:
                return
            message = self.inbox.take()
            await self.ignore(message, self.why_nothing_to_do(message))
            self.inbox.applied()
