"""What a case offers the person looking at it now: the decision forms their role may
send in the case's state (no others are shown, and no others are taken), and the money
they see (paid, refunded, what remains, their own authority, R17 and R21)."""

from __future__ import annotations

from dataclasses import dataclass

from domain.case import STAFF_BY_AUTHORITY, Role
from domain.money import Money
from domain.policy import refund_limit
from domain.policy_settings import PolicySettings
from domain.state import EXTENDABLE, CaseStatus, EscalationLevel, reimbursable_postage
from domain.view import CaseView
from infra.security.identity import Caller


@dataclass(frozen=True)
class MoneyPanel:
    paid: Money
    refunded: Money
    limit: Money  # R21: the most this case may ever refund
    remaining: Money
    # R17: what this person may grant alone; None where only the refund limit binds.
    authority: Money | None


def money_panel(view: CaseView, caller: Caller, policy: PolicySettings) -> MoneyPanel:
    postage = view.shipped_back.postage if view.shipped_back else None
    limit = refund_limit(
        view.paid,
        reimbursable_postage(
            postage, view.paid, merchant_pays=view.merchant_pays_shipping, policy=policy
        ),
    )
    authority = (
        Money(amount_minor=policy.agent_compensation_limit_minor, currency=view.paid.currency)
        if caller.role is Role.AGENT
        else None
    )
    return MoneyPanel(
        paid=view.paid,
        refunded=view.refunded_total,
        limit=limit,
        remaining=limit.minus_floored_at_zero(view.refunded_total),
        authority=authority,
    )


STAFF_ACTIONS = ("approve", "reject", "compensate", "escalate", "call", "assign", "extend")
ARBITER_ACTIONS = ("rule",)


def actions_of_role(role: Role) -> tuple[str, ...]:
    """The forms a role may send at all. Whether the case takes one now is the case's to
    judge (its validators); a form sent twice (the same action id) gets the first answer
    even once the case has moved on, so the desk does not second-guess that."""
    if role is Role.ARBITER:
        return ARBITER_ACTIONS
    return STAFF_ACTIONS if role in STAFF_BY_AUTHORITY else ()


def available_actions(view: CaseView, caller: Caller, policy: PolicySettings) -> list[str]:
    """The forms shown, in the order a person weighs them; the case's validators still
    judge each one sent (R10, R16, R17, R18, R19, R21)."""
    if caller.role is Role.ARBITER:
        return [*ARBITER_ACTIONS] if view.status is CaseStatus.IN_ARBITRATION else []
    if caller.role not in STAFF_BY_AUTHORITY or view.status.is_closed:
        return []
    actions = []
    if view.status is CaseStatus.UNDER_REVIEW:
        actions += ["approve", "reject"]
    if money_panel(view, caller, policy).remaining.amount_minor > 0:
        actions.append("compensate")
    if view.escalation.level is not EscalationLevel.MANAGER:
        actions.append("escalate")
    if view.calls_scheduled < policy.max_calls_per_case:
        actions.append("call")
    actions.append("assign")
    if any(runs_in is view.status for runs_in, _ in EXTENDABLE.values()):
        actions.append("extend")
    return actions
