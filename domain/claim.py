"""R15: a claim against the carrier that damaged or lost a parcel; may run for months."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, StrictBool

from domain.case import ActorId, BusinessKey, MessageId, Strict
from domain.money import Money
from domain.policy_settings import PolicySettings


class ClaimStatus(StrEnum):
    FILING = "filing"
    AWAITING_CARRIER = "awaiting_carrier"
    SETTLED = "settled"
    DECLINED = "declined"
    DEADLINE_MISSED = "deadline_missed"

    @property
    def is_closed(self) -> bool:
        return self in (ClaimStatus.SETTLED, ClaimStatus.DECLINED, ClaimStatus.DEADLINE_MISSED)


class CarrierResponse(Strict):
    """The carrier's answer to a claim (a callback from its claims desk)."""

    response_id: MessageId
    accepted: StrictBool
    recovered: Money
    note: str = Field(default="", max_length=2000)


class CarrierAnswer(CarrierResponse):
    """A carrier's answer as its claim receives it: with the machine client that sent it,
    proven at the edge (R23), for the claim's ledger. None in answers sent before the
    edge named the client, and where a workflow test signals the claim itself."""

    answered_by: ActorId | None = None


class CarrierClaimRequest(BaseModel):
    claim_id: str
    case_id: str
    carrier: BusinessKey
    amount: Money
    # R15: the carrier's deadline counts from delivery (or the expected delivery).
    deadline_counts_from: datetime
    policy: PolicySettings


class ClaimState(BaseModel):
    request: CarrierClaimRequest
    status: ClaimStatus = ClaimStatus.FILING
    file_deadline: datetime
    filed_at: datetime | None = None
    carrier_reference: str | None = None
    chases: list[datetime] = Field(default_factory=list)
    escalated_at: datetime | None = None
    response: CarrierAnswer | None = None
    pending_responses: list[CarrierAnswer] = Field(default_factory=list)
    seen_response_ids: list[str] = Field(default_factory=list)
    # Answers that came after the claim closed: recorded, never reopening it (R15).
    late_responses: list[CarrierAnswer] = Field(default_factory=list)
    closed_at: datetime | None = None
    ledger_seq: int = 0

    @property
    def recovered(self) -> Money:
        if self.response is None:
            return Money.zero(self.request.amount.currency)
        return self.response.recovered
