"""What a caller may see of a case, as opposed to what the case keeps (domain/state.py).

`CaseState` is the durable contract: continue-as-new carries it whole, inbox and seen
message ids included. Queries and Update answers return a `CaseView` instead: the working
view of the case without its plumbing (inbox, seen message ids, held messages) and
without personal free text nobody needs to work the case (evidence notes and photo URLs,
complaint words, tracking numbers, the customer's id and time zone: the order id leads
to the customer in the shop's own systems). The API narrows it further by role
(`ServiceView` for the shop's backend; the arbiter only for disputed cases).
The case's audit trail (R23) is read as `CaseLedger`, with the same personal data left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from domain.case import (
    ArbitrationRuling,
    CaseKind,
    Channel,
    ExchangeItem,
    MissingPart,
    Reason,
    Remedy,
    Role,
    RootCause,
    ShippedBack,
)
from domain.money import Money
from domain.rules import Rule
from domain.sla import SlaBreach
from domain.state import (
    CaseState,
    CaseStatus,
    DeclinedPayment,
    Escalation,
    Inspection,
    RefundReceipt,
    ReminderSent,
)


class Payment(BaseModel):
    """A refund or charge as the customer sees it: no provider reference, no key."""

    purpose: str
    amount: Money
    at: datetime

    @classmethod
    def of(cls, receipt: RefundReceipt) -> Payment:
        return cls(purpose=receipt.purpose, amount=receipt.amount, at=receipt.refunded_at)


class ShipBackView(BaseModel):
    """The customer's shipping notice without its tracking number."""

    carrier: str
    shipped_at: datetime
    postage: Money | None

    @classmethod
    def of(cls, notice: ShippedBack) -> ShipBackView:
        return cls(carrier=notice.carrier, shipped_at=notice.shipped_at, postage=notice.postage)


class DisputeView(BaseModel):
    """R19: the customer's words are for the arbiter, who rules on them."""

    reason: str


class RulingView(BaseModel):
    favour_customer: bool
    refund: Money | None
    reason: str

    @classmethod
    def of(cls, ruling: ArbitrationRuling) -> RulingView:
        return cls(
            favour_customer=ruling.favour_customer, refund=ruling.refund, reason=ruling.reason
        )


class ServiceView(BaseModel):
    """What the shop's backend needs to tell its customer about the case: where it
    stands, what is awaited and by when, why it was decided (R20), the money moved."""

    # Projections are built from a CaseView's fields; the ones a role may not see drop.
    model_config = ConfigDict(extra="ignore")

    case_id: str
    kind: CaseKind
    reason: Reason
    order_id: str
    line_id: str
    request_id: str
    sku: str
    quantity: int
    paid: Money
    exchange_for: ExchangeItem | None
    channel: Channel
    delivered_at: datetime | None
    requested_at: datetime
    # When the API received the request: R1 judges it if requested_at is too far before.
    request_received_at: datetime | None
    status: CaseStatus
    waiting_for: str
    next_deadline: datetime | None
    opened_at: datetime
    closed_at: datetime | None
    decision_reason: str | None
    return_deadline: datetime | None
    evidence_deadline: datetime | None
    ship_back_deadline: datetime | None
    remedy_deadline: datetime | None
    consent_deadline: datetime | None
    dispute_deadline: datetime | None
    remedy: Remedy | None
    refunds: list[Payment]
    charges: list[Payment]
    refunded_total: Money
    disputed: bool
    ruling: RulingView | None


class CaseView(ServiceView):
    """The working view of a case for staff (and for the arbiter, on a disputed case)."""

    category: str
    carrier: str | None
    missing_part: MissingPart | None
    expected_delivery_at: datetime | None
    policy_version: str
    review_deadline: datetime | None
    first_contact_by: datetime | None
    inspection_deadline: datetime | None
    refund_deadline: datetime | None
    next_stock_check: datetime | None
    photos_received: int
    complaints_received: int
    messages_held: int
    calls_scheduled: int
    follow_ups_sent: int
    reminders_sent: list[ReminderSent]
    auto_approved: bool
    decided_by: str | None
    assigned_agent: str | None
    approved_at: datetime | None
    root_cause: RootCause | None
    carrier_claim_id: str | None
    shipments: list[str]
    survey_id: str | None
    receipts: list[RefundReceipt]
    shipped_back: ShipBackView | None
    merchant_pays_shipping: bool
    received_at: datetime | None
    received_scan_id: str | None
    inspection: Inspection | None
    escalation: Escalation
    sla_breaches: list[SlaBreach]
    dispute: DisputeView | None
    # R21: the payment the provider declined, with its reason, while a person decides.
    declined_payment: DeclinedPayment | None

    @classmethod
    def of(cls, state: CaseState) -> CaseView:
        request = state.request
        return cls(
            case_id=state.case_id,
            kind=request.kind,
            reason=request.reason,
            channel=request.channel,
            order_id=request.order_id,
            line_id=request.line_id,
            request_id=request.request_id,
            sku=request.sku,
            category=request.category,
            quantity=request.quantity,
            paid=request.paid,
            carrier=request.carrier,
            exchange_for=request.exchange_for,
            missing_part=request.missing_part,
            delivered_at=request.delivered_at,
            expected_delivery_at=request.expected_delivery_at,
            requested_at=request.requested_at,
            request_received_at=request.received_at,
            policy_version=state.policy.version,
            status=state.status,
            waiting_for=state.waiting_for,
            next_deadline=state.next_deadline,
            opened_at=state.opened_at,
            closed_at=state.closed_at,
            decision_reason=state.decision_reason,
            return_deadline=state.return_deadline,
            evidence_deadline=state.evidence_deadline,
            review_deadline=state.review_deadline,
            first_contact_by=state.first_contact_by,
            ship_back_deadline=state.ship_back_deadline,
            inspection_deadline=state.inspection_deadline,
            refund_deadline=state.refund_deadline,
            remedy_deadline=state.remedy_deadline,
            consent_deadline=state.consent_deadline,
            next_stock_check=state.next_stock_check,
            dispute_deadline=state.dispute_deadline,
            photos_received=sum(len(e.photos) for e in state.evidence),
            complaints_received=len(state.complaints),
            messages_held=len(state.held_messages),
            calls_scheduled=state.calls_scheduled,
            follow_ups_sent=state.follow_ups_sent,
            reminders_sent=state.reminders_sent,
            auto_approved=state.auto_approved,
            decided_by=state.decided_by,
            assigned_agent=state.assigned_agent,
            approved_at=state.approved_at,
            root_cause=state.root_cause,
            remedy=state.remedy,
            carrier_claim_id=state.carrier_claim_id,
            shipments=state.shipments,
            survey_id=state.survey_id,
            refunds=[Payment.of(receipt) for receipt in state.refunds],
            charges=[Payment.of(receipt) for receipt in state.charges],
            receipts=state.refunds + state.charges,
            refunded_total=state.refunded_total,
            shipped_back=ShipBackView.of(state.shipped_back) if state.shipped_back else None,
            merchant_pays_shipping=state.merchant_pays_shipping,
            received_at=state.received_at,
            received_scan_id=state.received_scan_id,
            inspection=state.inspection,
            escalation=state.escalation,
            sla_breaches=state.sla_breaches,
            declined_payment=state.declined_payment,
            disputed=state.dispute is not None,
            dispute=DisputeView(reason=state.dispute.reason) if state.dispute else None,
            ruling=RulingView.of(state.ruling) if state.ruling else None,
        )  # fmt: skip

    def for_service(self) -> ServiceView:
        return ServiceView.model_validate(self.model_dump())


# Ledger details that carry what the working view leaves out: complaint words, a message
# as it arrived (evidence notes, tracking numbers). Photo URLs become their count.
_PERSONAL_DETAILS = frozenset({"complaint", "message"})


class LedgerEvent(BaseModel):
    """One step of the audit trail (R23) as staff and the arbiter read it: who (by role;
    a customer is named by role only, as the working view does), what, under which rule,
    why, and the status after it."""

    seq: int
    occurred_at: datetime
    actor: str
    role: Role
    action: str
    rule_id: Rule | None
    reason: str | None
    status_after: str
    details: dict[str, Any]

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> LedgerEvent:
        details = {k: v for k, v in row["details"].items() if k not in _PERSONAL_DETAILS}
        if isinstance(details.get("photos"), list):
            details["photos"] = len(details["photos"])
        customer = row["role"] == Role.CUSTOMER
        return cls(
            seq=row["seq"],
            occurred_at=row["occurred_at"],
            actor=Role.CUSTOMER.value if customer else row["actor"],
            role=row["role"],
            action=row["action"],
            rule_id=row["rule_id"],
            reason=row["reason"],
            status_after=row["status_after"],
            details=details,
        )


class CaseNote(BaseModel):
    """An internal note a staff member wrote on the case (infra/case_notes.py): their
    words, until erasure or retention replaces them (`redacted_at`)."""

    note_id: str
    author: str
    role: Role
    written_at: datetime
    body: str
    redacted_at: datetime | None


class CaseLedger(BaseModel):
    """A case's audit trail, oldest step first, and its internal notes, oldest first
    (staff only: the arbiter's trail leaves them out)."""

    case_id: str
    disputed: bool
    events: list[LedgerEvent]
    notes: list[CaseNote] = []
