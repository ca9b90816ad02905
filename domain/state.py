"""The whole state of one case: one model, so continue-as-new carries it intact."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.case import Grade, OpenCaseRequest, ShippedBack, WarehouseScan
from domain.money import Money
from domain.policy_settings import PolicySettings


class CaseStatus(StrEnum):
    OPENED = "opened"
    REFUSED = "refused"
    AWAITING_SHIP_BACK = "awaiting_ship_back"
    IN_RETURN_TRANSIT = "in_return_transit"
    AWAITING_INSPECTION = "awaiting_inspection"
    REFUND_DUE = "refund_due"
    REFUNDED = "refunded"
    REJECTED = "rejected"
    ABANDONED = "abandoned"

    @property
    def is_closed(self) -> bool:
        return self in _CLOSED


_CLOSED = frozenset(
    {CaseStatus.REFUSED, CaseStatus.REFUNDED, CaseStatus.REJECTED, CaseStatus.ABANDONED}
)


class Disposition(StrEnum):
    """R27: where a returned item goes after inspection."""

    RESTOCK = "restock"
    REPAIR = "repair"
    RETURN_TO_VENDOR = "return_to_vendor"
    RETURN_TO_CUSTOMER = "return_to_customer"


class ReminderSent(BaseModel):
    after: timedelta
    due_at: datetime
    sent_at: datetime


class Inspection(BaseModel):
    scan_id: str
    grade: Grade
    passed: bool
    disposition: Disposition
    reason: str
    inspected_at: datetime


class RefundReceipt(BaseModel):
    idempotency_key: str
    amount: Money
    provider_reference: str
    refunded_at: datetime


class CaseState(BaseModel):
    case_id: str
    request: OpenCaseRequest
    policy: PolicySettings
    status: CaseStatus = CaseStatus.OPENED
    opened_at: datetime
    return_deadline: datetime
    approved_at: datetime | None = None
    ship_back_deadline: datetime | None = None
    reminders_sent: list[ReminderSent] = Field(default_factory=list)
    shipped_back: ShippedBack | None = None
    received_at: datetime | None = None
    received_scan_id: str | None = None
    inspection: Inspection | None = None
    refunds: list[RefundReceipt] = Field(default_factory=list)
    closed_at: datetime | None = None
    # R20: every refusal, rejection or abandonment says why, in words a customer can read.
    decision_reason: str | None = None
    # Accepted messages not yet acted on; carried across continue-as-new so none is lost.
    inbox: list[WarehouseScan | ShippedBack] = Field(default_factory=list)
    seen_message_ids: list[str] = Field(default_factory=list)
    ledger_seq: int = 0

    @property
    def refunded_total(self) -> Money:
        total = Money.zero(self.request.paid.currency)
        for refund in self.refunds:
            total = total + refund.amount
        return total

    @property
    def parcel_on_its_way(self) -> bool:
        return self.shipped_back is not None or self.received_at is not None

    @property
    def waiting_for(self) -> str:
        match self.status:
            case CaseStatus.OPENED:
                return "the case to be opened"
            case CaseStatus.AWAITING_SHIP_BACK:
                return "the customer to hand the parcel to a carrier"
            case CaseStatus.IN_RETURN_TRANSIT:
                return "the parcel to reach the warehouse dock"
            case CaseStatus.AWAITING_INSPECTION:
                return "the warehouse to inspect the item"
            case CaseStatus.REFUND_DUE:
                return "the payment provider to confirm the refund"
            case _:
                return "nothing: the case is closed"

    @property
    def next_deadline(self) -> datetime | None:
        if self.status is CaseStatus.AWAITING_SHIP_BACK:
            return self.ship_back_deadline
        return None
