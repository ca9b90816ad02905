"""The case ledger in PostgreSQL (R23): one append-only event per step plus the read model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from opentelemetry import trace
from pydantic import BaseModel
from temporalio import activity

from domain.case import Role
from domain.ledger import LedgerAction
from domain.policy import refund_limit
from domain.rules import Rule
from domain.state import CaseState, EscalationLevel
from domain.view import CaseView


class CaseSnapshot(BaseModel):
    """The `cases` read-model row, as the workflow sees the case after a step: the
    columns the list filters on, and the whole working view `GET /cases/{id}` answers."""

    case_id: str
    kind: str
    reason: str
    channel: str
    order_id: str
    line_id: str
    request_id: str
    sku: str
    category: str
    batch: str | None = None
    quantity: int = 1
    customer_id: str
    status: str
    currency: str
    paid_minor: int
    refund_limit_minor: int
    refunded_minor: int
    policy_version: str
    waiting_for: str
    next_deadline: datetime | None
    decision_reason: str | None
    root_cause: str | None
    opened_at: datetime
    closed_at: datetime | None
    # What the work queues filter on (the schema's `cases` columns, domain/queues.py).
    # Defaults: a snapshot built by older code, still in a retried activity's input, reads.
    carrier: str | None = None
    assigned_agent: str | None = None
    escalation_level: str = EscalationLevel.NONE.value
    sla_breached_at: datetime | None = None
    disputed: bool = False
    case_view: CaseView

    @classmethod
    def of(cls, state: CaseState) -> CaseSnapshot:
        request = state.request
        return cls(
            case_id=state.case_id,
            kind=request.kind.value,
            reason=request.reason.value,
            channel=request.channel.value,
            order_id=request.order_id,
            line_id=request.line_id,
            request_id=request.request_id,
            sku=request.sku,
            category=request.category,
            batch=request.batch,
            quantity=request.quantity,
            customer_id=request.customer.customer_id,
            status=state.status.value,
            currency=request.paid.currency,
            paid_minor=request.paid.amount_minor,
            refund_limit_minor=refund_limit(request.paid, state.reimbursed_shipping).amount_minor,
            refunded_minor=state.refunded_total.amount_minor,
            policy_version=state.policy.version,
            waiting_for=state.waiting_for,
            next_deadline=state.next_deadline,
            decision_reason=state.decision_reason,
            root_cause=state.root_cause.value if state.root_cause else None,
            opened_at=state.opened_at,
            closed_at=state.closed_at,
            carrier=request.carrier,
            assigned_agent=state.assigned_agent,
            escalation_level=state.escalation.level.value,
            sla_breached_at=min((b.breached_at for b in state.sla_breaches), default=None),
            disputed=state.dispute is not None,
            case_view=CaseView.of(state),
        )


class LedgerEntry(BaseModel):
    seq: int
    occurred_at: datetime
    actor: str
    role: Role
    action: LedgerAction
    rule_id: Rule | None
    reason: str | None
    details: dict[str, Any]
    case: CaseSnapshot


# A no-op unless the worker traces (infra/tracing.py): bench/breakdown.py reads it.
_STAGES = trace.get_tracer("aftersales.ledger")


class LedgerActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="record_case_step")
    async def record_step(self, entry: LedgerEntry) -> bool:
        """Append the event and move the read model forward, atomically.

        Idempotent: the (case, seq) key makes a retried call a no-op, and the read model
        only ever moves to a newer seq. Returns whether this call wrote the event."""
        # One call, one transaction: the event, then the case's row (migrations'
        # record_case_step), the snapshot's columns by name.
        with _STAGES.start_as_current_span("ledger transaction"):
            appended = await self._pool.fetchval(
                "SELECT record_case_step($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                entry.seq,
                entry.occurred_at,
                entry.actor,
                entry.role,
                entry.action,
                entry.rule_id,
                entry.reason,
                entry.details,
                entry.case.model_dump(mode="json"),
            )
        return bool(appended)
