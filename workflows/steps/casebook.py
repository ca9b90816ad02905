"""The one way a case changes: every step writes a ledger event (R23), and the case's
search attributes and current details follow, so operators always see the truth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from activities.ledger import CaseSnapshot, LedgerActivities, LedgerEntry
from activities.notifications import CustomerMessage, NotificationActivities, Template
from activities.outside import NoType, outside_no
from domain.case import Role
from domain.ledger import Ledger, LedgerAction, check_ledger, checked_details
from domain.policy import call_limit_refusal, next_contact_slot
from domain.refusal import Refusal
from domain.rules import Rule
from domain.state import MERCHANT_SIDE, CaseState, CaseStatus, EscalationLevel
from domain.transitions import check_case_transition
from workflows import search_attributes as sa
from workflows.steps.outside import call_local

SYSTEM_ACTOR = "aftersales-workflow"
SYSTEM_ROLE = Role.SYSTEM


@dataclass(frozen=True)
class Approval:
    """Who approved a case and under which rule: the approval step records it (R23)."""

    rule: Rule
    reason: str
    actor: str = SYSTEM_ACTOR
    role: Role = SYSTEM_ROLE


class CaseBook:
    def __init__(self, state: CaseState) -> None:
        self.state = state

    async def record(
        self,
        action: LedgerAction,
        *,
        rule: Rule | None = None,
        reason: str | None = None,
        status: CaseStatus | None = None,
        actor: str = SYSTEM_ACTOR,
        role: Role = SYSTEM_ROLE,
        details: dict[str, Any] | None = None,
    ) -> None:
        state = self.state
        # A step may write only what docs/ledger.md documents (checked before any effect).
        check_ledger(action, Ledger.CASE)
        checked = checked_details(action, details or {})
        now = workflow.now()
        if status is not None:
            self._enter(status, rule, now)
        state.ledger_seq += 1
        entry = LedgerEntry(
            seq=state.ledger_seq,
            occurred_at=now,
            actor=actor,
            role=role,
            action=action,
            rule_id=rule,
            reason=reason,
            details=checked,
            case=CaseSnapshot.of(state),
        )
        # Short, idempotent PostgreSQL writes: as local activities they cost the server
        # half as much per case (docs/benchmarks).
        await call_local(
            LedgerActivities.record_step,
            entry,
            summary=f"ledger #{entry.seq}: {action}" + (f" ({rule})" if rule else ""),
        )
        self.publish()

    async def record_approved(
        self,
        action: LedgerAction,
        approval: Approval,
        *,
        status: CaseStatus,
        reason: str | None = None,
    ) -> None:
        """The step an approval leads to, in the approver's name."""
        await self.record(
            action,
            rule=approval.rule,
            reason=reason or approval.reason,
            status=status,
            actor=approval.actor,
            role=approval.role,
        )

    def _enter(self, status: CaseStatus, rule: Rule | None, now: datetime) -> None:
        state = self.state
        # The one place a case's status changes: only as its kind's table allows.
        check_case_transition(state.request.kind, state.status, status, rule)
        was_waiting_on_us = state.status in MERCHANT_SIDE
        state.status = status
        if status.is_closed:
            state.closed_at = now
        # R14: while the case waits on us, the customer hears from us every day.
        if status in MERCHANT_SIDE and not was_waiting_on_us:
            state.next_follow_up_at = self.message_slot(now + state.policy.follow_up_interval)
        elif status not in MERCHANT_SIDE:
            state.next_follow_up_at = None

    def message_slot(self, due: datetime) -> datetime:
        """R16: a message due at night waits for the morning, in the customer's zone."""
        state = self.state
        return next_contact_slot(due, state.request.customer.time_zone, state.policy.message_hours)

    async def schedule_call(self, purpose: str) -> Refusal | None:
        """R16: calls only inside call hours, and at most the policy's number per case.
        Once the case had its most: `call_not_scheduled` recorded, and the refusal."""
        state = self.state
        if too_many := call_limit_refusal(state.calls_scheduled, state.policy):
            await self.record(
                LedgerAction.CALL_NOT_SCHEDULED,
                rule=Rule.R16,
                reason=f"{purpose}: already {state.calls_scheduled} calls, the most per case",
            )
            return too_many
        at = next_contact_slot(
            workflow.now(), state.request.customer.time_zone, state.policy.call_hours
        )
        state.calls_scheduled += 1
        await self.notify(Template.AGENT_CALL, due_at=at, purpose=purpose)
        return None

    async def notify(
        self, template: Template, *, due_at: datetime | None = None, **params: str
    ) -> None:
        state = self.state
        # One message per template and ledger position: a replay or retry never repeats it.
        key = f"{state.case_id}:{template.value}:{state.ledger_seq}"
        try:
            await call_local(
                NotificationActivities.notify_customer,
                CustomerMessage(
                    idempotency_key=key,
                    case_id=state.case_id,
                    customer_id=state.request.customer.customer_id,
                    template=template,
                    params=params,
                    due_at=due_at or self.message_slot(workflow.now()),
                ),
                summary=f"tell customer: {template.value}",
            )
        except ApplicationError as error:  # a local activity's failure, as it is
            # The messaging service's no: the case goes on, its ledger says who was not told.
            if (no := outside_no(error, NoType.MESSAGE_REFUSED)) is None:
                raise
            await self.record(
                LedgerAction.MESSAGE_NOT_DELIVERED,
                reason=f"{template.value} not delivered: {no.reason}",
                details={"key": key, "answer": no.answer},
            )

    def publish_identity(self) -> None:
        request = self.state.request
        workflow.upsert_search_attributes(
            [
                sa.CASE_KIND.value_set(request.kind.value),
                sa.CASE_REASON.value_set(request.reason.value),
                sa.CASE_CHANNEL.value_set(request.channel.value),
                sa.ORDER_ID.value_set(request.order_id),
                sa.SKU.value_set(request.sku),
                sa.CARRIER.value_set(request.carrier)
                if request.carrier
                else sa.CARRIER.value_unset(),
            ]
        )
        self.publish()

    def publish(self) -> None:
        state = self.state
        deadline = state.next_deadline
        workflow.upsert_search_attributes(
            [
                sa.CASE_STATUS.value_set(state.status.value),
                sa.NEXT_DEADLINE.value_set(deadline)
                if deadline is not None
                else sa.NEXT_DEADLINE.value_unset(),
                sa.ESCALATION_LEVEL.value_set(state.escalation.level.value),
                sa.AUTO_APPROVED.value_set(state.auto_approved),
                sa.ASSIGNED_AGENT.value_set(state.assigned_agent)
                if state.assigned_agent
                else sa.ASSIGNED_AGENT.value_unset(),
            ]
        )
        workflow.set_current_details(current_details(state))


def current_details(state: CaseState) -> str:
    """Markdown for the Temporal UI: what the case waits for, who acts, by when."""
    request = state.request
    lines = [
        f"**{request.kind.value} · {request.reason.value}** — status `{state.status.value}`",
        "",
        f"- Waiting for: {state.waiting_for}",
    ]
    if state.next_deadline is not None:
        lines.append(f"- Next deadline: {state.next_deadline:%Y-%m-%d %H:%M} UTC")
    # Only what the workflow itself wrote goes here: the UI is no place for personal data,
    # and free text from customers and agents may hold some (it stays in the ledger).
    if state.escalation.level is not EscalationLevel.NONE:
        lines.append(f"- Escalated to: {state.escalation.level.value} ({state.escalation.reason})")
    if state.auto_approved:
        lines.append("- Approved automatically: no decision by the review deadline (R11)")
    if state.assigned_agent:
        lines.append(f"- Assigned to: {state.assigned_agent}")
    lines.append(f"- Refunded: {state.refunded_total} of {request.paid} paid")
    if state.decided_by:
        lines.append(f"- Decided by: {state.decided_by} (the reason is in the ledger)")
    elif state.decision_reason:
        lines.append(f"- Decision: {state.decision_reason}")
    lines.append(f"- Policy: {state.policy.version}")
    return "\n".join(lines)
