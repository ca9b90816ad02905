"""The escalation ladder (R18): a case climbs to a supervisor, then a manager; a
supervisor who does not act in time sends it on; a deadline breached escalates it too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow

from domain.case import SUPERVISORS, Role
from domain.ledger import LedgerAction
from domain.policy import escalation_target
from domain.rules import Rule
from domain.sla import SlaBreach, SlaClock
from domain.state import CaseState, EscalationLevel
from workflows.steps.casebook import SYSTEM_ACTOR, CaseBook

# How the ledger's escalation reason names each deadline a case can breach.
_BREACH_WORDS = {
    SlaClock.EXPECTED_DELIVERY: "R4 delivery",
    SlaClock.INSPECTION: "R13 inspection",
    SlaClock.REFUND: "R13 refund",
}


async def escalate(
    book: CaseBook, reason: str, *, major: bool = False, actor: str = SYSTEM_ACTOR,
    role: Role = Role.SYSTEM, details: dict[str, Any] | None = None,
) -> None:  # fmt: skip
    """One step up the ladder (a major complaint goes to the manager at once)."""
    state = book.state
    level = escalation_target(state.escalation.level, major=major)
    now = workflow.now()
    state.escalation.level = level
    state.escalation.reason = reason
    state.escalation.since = now
    state.escalation.respond_by = (
        now + state.policy.supervisor_response if level is EscalationLevel.SUPERVISOR else None
    )
    await book.record(
        LedgerAction.ESCALATED,
        rule=Rule.R18,
        reason=f"to {level.value}: {reason}",
        actor=actor,
        role=role,
        details={"level": level.value, **(details or {})},
    )


async def supervisor_silent(book: CaseBook) -> None:
    await escalate(
        book, f"the supervisor did not act within {book.state.policy.supervisor_response}"
    )


def acknowledge_escalation(state: CaseState, role: Role) -> None:
    """A supervisor or manager acting on the case answers its escalation."""
    if role in SUPERVISORS:
        state.escalation.respond_by = None


async def sla_breached(book: CaseBook, clock: SlaClock, due_at: datetime) -> None:
    """A deadline passed with its step not done: recorded as data, and escalated."""
    breach = SlaBreach(clock=clock, due_at=due_at, breached_at=workflow.now())
    book.state.sla_breaches.append(breach)
    await escalate(
        book,
        f"{_BREACH_WORDS[clock]} deadline breached",
        details={"breach": breach.model_dump(mode="json")},
    )
