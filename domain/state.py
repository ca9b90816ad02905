"""The whole state of one case: one model, so continue-as-new carries it intact."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field, computed_field, field_validator

from domain.case import (
    ArbitrationRuling,
    Assignment,
    CallRequest,
    CompensationOffer,
    Complaint,
    Deadline,
    DeadlineExtension,
    Dispute,
    EscalationRequest,
    EvidenceSubmitted,
    Grade,
    InterceptRequested,
    OpenCaseRequest,
    ParcelDelivered,
    PaymentResolution,
    RefundConsent,
    Remedy,
    RemedyChoice,
    ReviewDecision,
    RootCause,
    ShippedBack,
    WarehouseScan,
    Withdrawal,
)
from domain.money import Money
from domain.policy_settings import PolicySettings, shared_policy
from domain.refusal import OutsideAnswer, Refusal
from domain.sla import SlaBreach, SlaClock


class CaseStatus(StrEnum):
    OPENED = "opened"
    REFUSED = "refused"
    AWAITING_EVIDENCE = "awaiting_evidence"
    UNDER_REVIEW = "under_review"
    AWAITING_REMEDY_CHOICE = "awaiting_remedy_choice"
    REPLACED = "replaced"
    EXCHANGE_DUE = "exchange_due"
    AWAITING_REFUND_CONSENT = "awaiting_refund_consent"
    WAITING_FOR_STOCK = "waiting_for_stock"
    EXCHANGED = "exchanged"
    IN_ARBITRATION = "in_arbitration"
    AWAITING_DELIVERY = "awaiting_delivery"
    INTERCEPTING = "intercepting"
    DELIVERED = "delivered"
    WITHDRAWN = "withdrawn"
    AWAITING_SHIP_BACK = "awaiting_ship_back"
    IN_RETURN_TRANSIT = "in_return_transit"
    AWAITING_INSPECTION = "awaiting_inspection"
    REFUND_DUE = "refund_due"
    REFUNDED = "refunded"
    REJECTED = "rejected"
    ABANDONED = "abandoned"
    # The payment provider said no (or what its contract does not define): a person
    # retries the payment or records it settled another way (R21).
    PAYMENT_DECLINED = "payment_declined"

    @property
    def is_closed(self) -> bool:
        return self in _CLOSED


_CLOSED = frozenset(
    {
        CaseStatus.REFUSED,
        CaseStatus.REFUNDED,
        CaseStatus.REJECTED,
        CaseStatus.ABANDONED,
        CaseStatus.REPLACED,
        CaseStatus.EXCHANGED,
        CaseStatus.DELIVERED,
        CaseStatus.WITHDRAWN,
    }
)
# R14: the statuses in which the case waits on the merchant, not on the customer: the
# workflow sends a daily update in them and the follow-up SLA clock runs in them.
MERCHANT_SIDE = frozenset(
    {
        CaseStatus.UNDER_REVIEW,
        CaseStatus.AWAITING_INSPECTION,
        CaseStatus.REFUND_DUE,
        CaseStatus.EXCHANGE_DUE,
        CaseStatus.WAITING_FOR_STOCK,
        CaseStatus.INTERCEPTING,
    }
)


class Disposition(StrEnum):
    """R27: where a returned item goes after inspection."""

    RESTOCK = "restock"
    REPAIR = "repair"
    RETURN_TO_VENDOR = "return_to_vendor"
    RETURN_TO_CUSTOMER = "return_to_customer"


class EscalationLevel(StrEnum):
    NONE = "none"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"


class Escalation(BaseModel):
    """R18: where the case sits on the ladder, and by when that level must act."""

    level: EscalationLevel = EscalationLevel.NONE
    reason: str | None = None
    since: datetime | None = None
    respond_by: datetime | None = None


class ReminderSent(BaseModel):
    after: timedelta
    due_at: datetime
    sent_at: datetime


class Inspection(BaseModel):
    scan_id: str
    grade: Grade
    # R21: accessories and gifts that did not come back, deducted from the refund.
    deductions: Money | None = None
    passed: bool
    disposition: Disposition
    reason: str
    inspected_at: datetime


class PaymentKind(StrEnum):
    REFUND = "refund"
    CHARGE = "charge"


class DeclinedPayment(BaseModel):
    """A payment the provider declined, waiting for a person (R21): retried under the
    same key, or recorded settled another way. The status the case was in comes back
    once it is resolved."""

    kind: PaymentKind
    idempotency_key: str
    amount: Money
    reason: str
    answer: OutsideAnswer
    status_before: CaseStatus


class RefundReceipt(BaseModel):
    idempotency_key: str
    purpose: str = "refund"
    amount: Money
    provider_reference: str
    refunded_at: datetime


CaseMessage = (
    WarehouseScan
    | ShippedBack
    | EvidenceSubmitted
    | Complaint
    | ReviewDecision
    | CompensationOffer
    | EscalationRequest
    | RemedyChoice
    | RefundConsent
    | ParcelDelivered
    | InterceptRequested
    | Dispute
    | ArbitrationRuling
    | CallRequest
    | Assignment
    | DeadlineExtension
    | Withdrawal
    | PaymentResolution
)


def message_id(message: CaseMessage) -> str:
    match message:
        case WarehouseScan():
            return message.scan_id
        case (
            ShippedBack()
            | EvidenceSubmitted()
            | Complaint()
            | ParcelDelivered()
            | InterceptRequested()
            | Dispute()
            | Withdrawal()
        ):
            return message.event_id
        case RemedyChoice():
            return message.choice_id
        case RefundConsent():
            return message.consent_id
        case _:
            return message.action_id


def message_fingerprint(message: CaseMessage) -> str:
    """What a message says, in 16 hex digits: its type and a hash of its fields. Tells a
    true repeat of a message id (same fingerprint) from another message that reuses it."""
    said = f"{type(message).__name__}:{message.model_dump_json()}"
    return hashlib.sha256(said.encode()).hexdigest()[:16]


def message_key(message: CaseMessage) -> str:
    """One message, as the inbox tells it apart: its id and what it says."""
    return f"{message_id(message)}#{message_fingerprint(message)}"


# How many refused Updates a case remembers for their retries (CaseState.refused_updates):
# retries come within minutes, and the state carried across continue-as-new stays small.
REFUSALS_KEPT = 50


def reimbursable_postage(
    postage: Money | None, paid: Money, *, merchant_pays: bool, policy: PolicySettings
) -> Money | None:
    """R6: return postage the merchant owes back: only for its own fault, only in the
    order's currency (it goes back with the refund, on the order's payment), and at most
    the policy's cap."""
    if postage is None or not merchant_pays or postage.currency != paid.currency:
        return None
    cap = policy.max_return_postage_minor
    if cap is None or postage.amount_minor <= cap:
        return postage
    return Money(amount_minor=cap, currency=postage.currency)


class CaseState(BaseModel):
    case_id: str
    request: OpenCaseRequest
    policy: PolicySettings
    status: CaseStatus = CaseStatus.OPENED
    opened_at: datetime
    return_deadline: datetime | None = None
    evidence_deadline: datetime | None = None
    evidence: list[EvidenceSubmitted] = Field(default_factory=list)
    review_deadline: datetime | None = None
    first_contact_by: datetime | None = None
    calls_scheduled: int = 0
    auto_approved: bool = False
    decided_by: str | None = None
    assigned_agent: str | None = None
    approved_at: datetime | None = None
    root_cause: RootCause | None = None
    remedy_deadline: datetime | None = None
    remedy: Remedy | None = None
    carrier_claim_id: str | None = None
    shipments: list[str] = Field(default_factory=list)
    consent_deadline: datetime | None = None
    next_stock_check: datetime | None = None
    charges: list[RefundReceipt] = Field(default_factory=list)
    dispute_deadline: datetime | None = None
    # R19: the window passed with no dispute (an upheld ruling spends it too: `ruling`).
    dispute_window_passed: bool = False
    dispute: Dispute | None = None
    ruling: ArbitrationRuling | None = None
    survey_id: str | None = None
    ship_back_deadline: datetime | None = None
    reminders_sent: list[ReminderSent] = Field(default_factory=list)
    shipped_back: ShippedBack | None = None
    merchant_pays_shipping: bool = False  # R6, set when the merchant accepts the fault
    # A shipping notice or scans that came before the case was approved (R12, R26):
    # applied at approval, or recorded for a person if the case closes instead.
    held_messages: list[WarehouseScan | ShippedBack] = Field(default_factory=list)
    received_at: datetime | None = None
    received_scan_id: str | None = None
    inspection_deadline: datetime | None = None
    refund_deadline: datetime | None = None
    sla_breaches: list[SlaBreach] = Field(default_factory=list)
    next_follow_up_at: datetime | None = None
    follow_ups_sent: int = 0
    escalation: Escalation = Field(default_factory=Escalation)
    complaints: list[Complaint] = Field(default_factory=list)
    inspection: Inspection | None = None
    refunds: list[RefundReceipt] = Field(default_factory=list)
    # A declined payment a person has not resolved yet (status payment_declined).
    declined_payment: DeclinedPayment | None = None
    closed_at: datetime | None = None
    # R20: every refusal, rejection or abandonment says why, in words a customer can read.
    decision_reason: str | None = None
    # Accepted messages not yet acted on; carried across continue-as-new so none is lost.
    inbox: list[CaseMessage] = Field(default_factory=list)
    # Every message id accepted, with the fingerprint of the message it first came with:
    # a repeat changes nothing, another message under the same id is refused.
    seen_messages: dict[str, str] = Field(default_factory=dict)
    # The latest Updates refused after their validator admitted them, by `message_key`: a
    # retry of one is refused again alike (at most REFUSALS_KEPT, the oldest go first).
    refused_updates: dict[str, Refusal] = Field(default_factory=dict)
    ledger_seq: int = 0

    @field_validator("policy")
    @classmethod
    def _one_instance_per_policy(cls, policy: PolicySettings) -> PolicySettings:
        return shared_policy(policy)

    def breached(self, clock: SlaClock) -> bool:
        return any(breach.clock is clock for breach in self.sla_breaches)

    @property
    def reimbursed_shipping(self) -> Money | None:
        """R6: the return postage the merchant owes back on this case."""
        postage = self.shipped_back.postage if self.shipped_back else None
        return reimbursable_postage(
            postage, self.request.paid, merchant_pays=self.merchant_pays_shipping,
            policy=self.policy,
        )  # fmt: skip

    @computed_field  # type: ignore[prop-decorator]
    @property
    def refunded_total(self) -> Money:
        total = Money.zero(self.request.paid.currency)
        for refund in self.refunds:
            total = total + refund.amount
        return total

    @property
    def dispute_window_open(self) -> bool:
        """R19: the case is rejected, and the customer may still take it to arbitration."""
        return (
            self.status is CaseStatus.REJECTED
            and self.dispute_deadline is not None
            and self.ruling is None
            and not self.dispute_window_passed
        )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def waiting_for(self) -> str:
        if self.dispute_window_open and self.dispute_deadline is not None:
            return (
                "a possible dispute: the customer may take the rejection to platform "
                f"arbitration until {self.dispute_deadline:%Y-%m-%d %H:%M} UTC (R19)"
            )
        match self.status:
            case CaseStatus.OPENED:
                return "the case to be opened"
            case CaseStatus.AWAITING_EVIDENCE:
                return "the customer's photos of the problem (R6)"
            case CaseStatus.UNDER_REVIEW:
                return "an agent's review decision (R10); silence approves it (R11)"
            case CaseStatus.AWAITING_SHIP_BACK:
                return "the customer to hand the parcel to a carrier"
            case CaseStatus.IN_RETURN_TRANSIT:
                return "the parcel to reach the warehouse dock"
            case CaseStatus.AWAITING_INSPECTION:
                return "the warehouse to inspect the item"
            case CaseStatus.REFUND_DUE:
                return "the payment provider to confirm the refund"
            case CaseStatus.IN_ARBITRATION:
                return "the platform arbiter's ruling on the customer's dispute (R19)"
            case CaseStatus.AWAITING_DELIVERY:
                return "the carrier to deliver; the customer may ask to intercept (R4)"
            case CaseStatus.INTERCEPTING:
                return "the intercepted parcel to come back to the warehouse (R4)"
            case CaseStatus.EXCHANGE_DUE:
                return "the warehouse to send the replacement (R22)"
            case CaseStatus.AWAITING_REFUND_CONSENT:
                return "the customer to accept a refund instead: out of stock (R22)"
            case CaseStatus.WAITING_FOR_STOCK:
                return "the replacement to be back in stock (R22)"
            case CaseStatus.AWAITING_REMEDY_CHOICE:
                return "the customer to choose replacement, partial or full refund (R8)"
            case CaseStatus.PAYMENT_DECLINED:
                return "a person: the payment provider declined the payment (R21)"
            case _:
                return "nothing: the case is closed"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def next_deadline(self) -> datetime | None:
        """The earliest deadline the case is waiting on, for operators."""
        by_status = {
            CaseStatus.AWAITING_EVIDENCE: self.evidence_deadline,
            CaseStatus.UNDER_REVIEW: self.review_deadline,
            CaseStatus.AWAITING_SHIP_BACK: self.ship_back_deadline,
            CaseStatus.AWAITING_INSPECTION: self.inspection_deadline,
            CaseStatus.REFUND_DUE: self.refund_deadline,
            CaseStatus.AWAITING_REMEDY_CHOICE: self.remedy_deadline,
            CaseStatus.AWAITING_REFUND_CONSENT: self.consent_deadline,
            CaseStatus.WAITING_FOR_STOCK: self.next_stock_check,
            CaseStatus.AWAITING_DELIVERY: self.request.expected_delivery_at,
            CaseStatus.REJECTED: self.dispute_deadline if self.dispute_window_open else None,
        }
        candidates = [by_status.get(self.status), self.escalation.respond_by]
        due = [d for d in candidates if d is not None]
        return min(due) if due else None


# Which state field holds each extendable deadline, and in which status it runs.
EXTENDABLE = {
    Deadline.EVIDENCE: (CaseStatus.AWAITING_EVIDENCE, "evidence_deadline"),
    Deadline.REVIEW: (CaseStatus.UNDER_REVIEW, "review_deadline"),
    Deadline.SHIP_BACK: (CaseStatus.AWAITING_SHIP_BACK, "ship_back_deadline"),
    Deadline.REMEDY_CHOICE: (CaseStatus.AWAITING_REMEDY_CHOICE, "remedy_deadline"),
    Deadline.REFUND_CONSENT: (CaseStatus.AWAITING_REFUND_CONSENT, "consent_deadline"),
}

# A customer may withdraw while nothing has reached us and no money has moved.
WITHDRAWABLE = frozenset(
    {
        CaseStatus.AWAITING_EVIDENCE,
        CaseStatus.UNDER_REVIEW,
        CaseStatus.AWAITING_SHIP_BACK,
        CaseStatus.AWAITING_DELIVERY,
        CaseStatus.AWAITING_REMEDY_CHOICE,
        CaseStatus.AWAITING_REFUND_CONSENT,
        CaseStatus.WAITING_FOR_STOCK,
    }
)
