"""What arrives at the boundary: case requests and the messages that move a case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    model_validator,
)

from domain.errors import InvalidValue
from domain.money import Money
from domain.rules import Rule

BusinessKey = Annotated[
    str,
    Field(
        # max_length too: checked before the pattern, so a huge string costs no regex run.
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="letters, digits, '_', '.', '-'; 1-64 characters",
    ),
]
MessageId = Annotated[str, Field(min_length=1, max_length=128)]
# Who acted (R23): a staff member's id as their identity provider names them (also
# `auth0|…` or an e-mail address), a machine client's name, or the workflow itself.
ACTOR_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@|:-]{0,127}$"
ActorId = Annotated[str, Field(max_length=128, pattern=ACTOR_ID_PATTERN)]


def _utc(value: datetime) -> datetime:
    # Far-off dates are typos, and deadline arithmetic near year 9999 would overflow.
    if not 2000 <= value.year <= 2100:
        raise ValueError("must be between the years 2000 and 2100")
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_utc)]


def _known_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    # OSError: zoneinfo looks the name up as a file path, and the system refuses some
    # (ENAMETOOLONG); left to rise it read as "PostgreSQL cannot be reached" (an OSError).
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        # The name is not quoted back: an answer never echoes what it refuses.
        raise ValueError("not a known IANA time zone name (e.g. Europe/Berlin)") from error
    return name


# The longest IANA zone name is 32 characters ("America/Argentina/ComodRivadavia").
TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_known_time_zone)]


def _has_nul(value: object) -> bool:
    # A walk with its own stack, not recursion: a body nesting arrays thousands deep
    # (the JSON parser takes that much) must not end in a RecursionError (a 500).
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


class Strict(BaseModel):
    """Every boundary model refuses unknown fields, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: object) -> object:
        # PostgreSQL text cannot hold NUL; refuse it here, with a reason, not deep in SQL.
        if _has_nul(data):
            raise ValueError("text fields may not contain NUL (\\x00) characters")
        return data


class CaseKind(StrEnum):
    RETURN = "return"
    EXCHANGE = "exchange"
    DAMAGE_CLAIM = "damage_claim"


class Reason(StrEnum):
    CHANGED_MIND = "changed_mind"
    QUALITY_DEFECT = "quality_defect"
    NOT_AS_DESCRIBED = "not_as_described"
    WRONG_ITEM = "wrong_item"
    MISSING_PARTS = "missing_parts"
    DAMAGED_IN_TRANSIT = "damaged_in_transit"
    LOST_IN_TRANSIT = "lost_in_transit"
    NOT_RECEIVED = "not_received"
    NOT_SHIPPED_YET = "not_shipped_yet"


class Channel(StrEnum):
    """R2: where a case came from; recorded on the case."""

    WEB = "web"
    APP = "app"
    PHONE_AGENT = "phone_agent"
    EMAIL = "email"
    STORE = "store"


class Customer(Strict):
    # An opaque id only: names, e-mails and phones stay in the CRM, never in case history.
    customer_id: BusinessKey
    time_zone: TimeZoneName = "UTC"


class ExchangeItem(Strict):
    """R22: what the customer gets instead, at today's price."""

    sku: BusinessKey
    price: Money


class PartRemedy(StrEnum):
    REFUND = "refund"
    SHIP = "ship"


class MissingPart(Strict):
    """R9: the part that was short-shipped, its value, and what the customer asks for."""

    sku: BusinessKey
    value: Money
    remedy: PartRemedy


_IN_TRANSIT = frozenset({Reason.DAMAGED_IN_TRANSIT, Reason.LOST_IN_TRANSIT})
# The case kinds table of domain.md: what each kind is for.
REASONS_OF_KIND = {
    CaseKind.RETURN: frozenset(Reason) - _IN_TRANSIT,
    CaseKind.EXCHANGE: frozenset(
        {Reason.CHANGED_MIND, Reason.QUALITY_DEFECT, Reason.NOT_AS_DESCRIBED, Reason.WRONG_ITEM}
    ),
    CaseKind.DAMAGE_CLAIM: _IN_TRANSIT,
}

# Reasons for which nothing was delivered: R1's window does not apply to them.
UNDELIVERED = frozenset({Reason.NOT_SHIPPED_YET, Reason.NOT_RECEIVED, Reason.LOST_IN_TRANSIT})


class OpenCaseRequest(Strict):
    order_id: BusinessKey
    line_id: BusinessKey
    request_id: BusinessKey
    kind: CaseKind
    reason: Reason
    channel: Channel
    sku: BusinessKey
    category: BusinessKey = "general"
    # R24: the production batch (lot) the unit came from, when the shop knows it; the
    # batch alarm compares a batch's return rate with its SKU's.
    batch: BusinessKey | None = None
    quantity: Annotated[int, Field(ge=1, le=1000, strict=True)] = 1
    paid: Money
    # The carrier that delivered the order: its claim deadline applies (R15).
    carrier: BusinessKey | None = None
    exchange_for: ExchangeItem | None = None
    missing_part: MissingPart | None = None
    delivered_at: UtcDatetime | None = None
    # R4: when the carrier expects to deliver a parcel still on its way.
    expected_delivery_at: UtcDatetime | None = None
    # When the customer asked, by the caller's clock. R1 counts from it unless it is more
    # than the policy's allowance before our receipt (domain.policy.r1_moment); later
    # than our receipt beyond the clock skew allowed, it is refused (future_request_refusal).
    requested_at: UtcDatetime
    customer: Customer
    # When our edge received the request (our clock); set by us, never by the caller.
    received_at: Annotated[UtcDatetime | None, Field(json_schema_extra={"readOnly": True})] = None

    @model_validator(mode="after")
    def _reason_fits_kind(self) -> OpenCaseRequest:
        allowed = REASONS_OF_KIND[self.kind]
        if self.reason not in allowed:
            raise InvalidValue(
                f"{self.reason.value} does not fit a {self.kind.value} case, which takes "
                f"{', '.join(sorted(r.value for r in allowed))} (R8)",
                field="reason",
                rule=Rule.R8,
            )
        return self

    @model_validator(mode="after")
    def _exchange_names_its_item(self) -> OpenCaseRequest:
        if (self.kind is CaseKind.EXCHANGE) != (self.exchange_for is not None):
            raise InvalidValue(
                "exchange_for is required for an exchange, and only for it (R22)", rule=Rule.R22
            )
        if self.exchange_for and self.exchange_for.price.currency != self.paid.currency:
            raise InvalidValue(
                "must be in the order currency (R22)", field="exchange_for.price", rule=Rule.R22
            )
        return self

    @model_validator(mode="after")
    def _missing_part_named(self) -> OpenCaseRequest:
        if (self.reason is Reason.MISSING_PARTS) != (self.missing_part is not None):
            raise InvalidValue(
                "missing_part is required for missing_parts, and only for it (R9)", rule=Rule.R9
            )
        if self.missing_part and not (
            self.missing_part.value.currency == self.paid.currency
            and self.missing_part.value <= self.paid
        ):
            raise InvalidValue(
                "at most the price paid, same currency (R21)",
                field="missing_part.value",
                rule=Rule.R21,
            )
        return self

    @model_validator(mode="after")
    def _delivery_fits_reason(self) -> OpenCaseRequest:
        if self.reason in UNDELIVERED and self.delivered_at is not None:
            raise InvalidValue(
                f"a {self.reason.value} parcel was not delivered", field="delivered_at"
            )
        if self.reason not in UNDELIVERED and self.delivered_at is None:
            raise InvalidValue(
                f"delivered_at is required for {self.reason.value}: R1 counts from delivery",
                rule=Rule.R1,
            )
        return self

    @property
    def claim_clock_start(self) -> datetime:
        """R15: claims count from delivery; for a parcel never delivered, from when it was
        expected (or, unknown, from the request)."""
        return self.delivered_at or self.expected_delivery_at or self.requested_at

    @model_validator(mode="after")
    def _requested_after_delivery(self) -> OpenCaseRequest:
        if self.delivered_at is not None and self.requested_at < self.delivered_at:
            raise InvalidValue(
                "requested_at is before delivered_at: R1 counts the return window from "
                "delivery; an undelivered order is a not_received or not_shipped_yet case",
                rule=Rule.R1,
            )
        return self

    @property
    def case_id(self) -> str:
        """R2: the business key; the same order line and request id always name one case."""
        return f"{self.kind.value}-{self.order_id}-{self.line_id}-{self.request_id}"


class ScanEvent(StrEnum):
    PARCEL_RECEIVED = "parcel_received"
    INSPECTED = "inspected"


class Grade(StrEnum):
    """R26: the inspection grades the warehouse gives."""

    RESELLABLE = "resellable"
    REFURBISH = "refurbish"
    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"


class MissingItem(Strict):
    """R21: an accessory or gift that should have come back with the item."""

    sku: BusinessKey
    value: Money


class ScanReport(Strict):
    """What a scanner reports about a parcel."""

    scan_id: MessageId
    event: ScanEvent
    station: Annotated[str, Field(min_length=1, max_length=64)]
    grade: Grade | None = None
    photos: Annotated[list[Annotated[str, Field(max_length=512)]], Field(max_length=20)] = []
    missing_items: Annotated[list[MissingItem], Field(max_length=50)] = []
    scanned_at: UtcDatetime

    @model_validator(mode="after")
    def _grade_only_with_inspection(self) -> ScanReport:
        if self.missing_items and self.event is not ScanEvent.INSPECTED:
            raise InvalidValue("missing_items belong to the inspected scan (R21)", rule=Rule.R21)
        if self.event is ScanEvent.INSPECTED and self.grade is None:
            raise InvalidValue("grade is required for an inspected scan (R26)", rule=Rule.R26)
        if self.event is ScanEvent.PARCEL_RECEIVED and self.grade is not None:
            raise InvalidValue(
                "grade belongs to the inspected scan, not parcel_received (R26)", rule=Rule.R26
            )
        return self


class WarehouseScan(ScanReport):
    """A scan as the case receives it: the report, and the scanner that sent it, set by
    the edge from the scanner's proven credential (R23), never from the report. None for
    a scan no scanner's credential sent (the demo's seeded scans, a signal sent by hand)."""

    scanned_by: BusinessKey | None = None


class ShippedBack(Strict):
    """The customer handed the parcel to a carrier (stops the R12 ship-back clock)."""

    event_id: MessageId
    carrier: Annotated[str, Field(min_length=1, max_length=64)]
    tracking_number: Annotated[str, Field(min_length=1, max_length=64)]
    shipped_at: UtcDatetime
    # R6: what the customer pre-paid for the return leg, reimbursed if the fault is ours.
    postage: Money | None = None


ExplainedReason = Annotated[str, Field(min_length=3, max_length=500)]


class EvidenceSubmitted(Strict):
    """R6: the customer's photos for a merchant-fault or transit-damage case."""

    event_id: MessageId
    photos: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=512)]],
        Field(min_length=1, max_length=20),
    ]
    note: Annotated[str, Field(max_length=2000)] = ""


class Complaint(Strict):
    """R18: a customer complaint; a major one goes straight to the manager level."""

    event_id: MessageId
    major: StrictBool = False
    summary: Annotated[str, Field(min_length=1, max_length=2000)]


class Role(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    MANAGER = "manager"
    WAREHOUSE = "warehouse"
    SYSTEM = "system"
    ARBITER = "arbiter"  # R19: the platform's arbitration
    SERVICE = "service"  # a backend service acting for the customer
    CARRIER = "carrier"  # the carriers' claims desk (R15), a machine client
    # The data protection desk: carries out erasure requests (GDPR art. 17), and nothing
    # else; it decides no case and reads none (docs/privacy.md).
    PRIVACY = "privacy"


# The people who decide cases, most authority first: where a token carries several roles
# a route allows, it acts in the first of these (docs/security.md, "Several roles").
STAFF_BY_AUTHORITY = (Role.MANAGER, Role.SUPERVISOR, Role.AGENT)
STAFF = frozenset(STAFF_BY_AUTHORITY)
# The staff above the agents, most authority first: an escalated case waits on them (R18).
SUPERVISORS = (Role.MANAGER, Role.SUPERVISOR)
# Refused input holds raw bodies (anything a caller sent): for those who repair
# integrations, the supervisors.
INTEGRATORS = SUPERVISORS


class OperatorAction(Strict):
    """Who decides: every operator decision names its actor and role (R23)."""

    action_id: MessageId
    actor: ActorId
    role: Role


class RootCause(StrEnum):
    """R7 (wrong item) and R8 (transit damage): why it happened, for R24's analytics."""

    ORDER_ERROR = "order_error"
    PICKING_ERROR = "picking_error"
    LABEL_ERROR = "label_error"
    LOADING_ERROR = "loading_error"
    PACKAGING = "packaging"
    HANDLING = "handling"
    ROUTE = "route"


class ReviewDecision(OperatorAction):
    """R10: the merchant's reviewed decision; a refusal must say why (R20)."""

    approve: StrictBool
    reason: ExplainedReason | None = None
    root_cause: RootCause | None = None

    @model_validator(mode="after")
    def _refusal_has_reason(self) -> ReviewDecision:
        if not self.approve and not self.reason:
            raise InvalidValue(
                "reason is required to reject (R20: every refusal is explained)", rule=Rule.R20
            )
        return self


class PaymentResolutionKind(StrEnum):
    RETRY = "retry"  # pay again under the same key (the provider pays a key once)
    SETTLED_ELSEWHERE = "settled_elsewhere"  # the money moved another way; say how


class PaymentResolutionChoice(Strict):
    """What a person does with a payment the provider declined (R21); the API's body."""

    resolution: PaymentResolutionKind
    reason: ExplainedReason
    # How it was settled (a bank transfer's reference, a voucher number): required for
    # settled_elsewhere, and kept in the ledger.
    reference: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _reference_when_settled(self) -> PaymentResolutionChoice:
        settled = self.resolution is PaymentResolutionKind.SETTLED_ELSEWHERE
        if settled != (self.reference is not None):
            raise InvalidValue(
                "required for settled_elsewhere, and only for it (R21)",
                field="reference",
                rule=Rule.R21,
            )
        return self


class PaymentResolution(OperatorAction, PaymentResolutionChoice):
    """R21: a person's answer to a payment the provider declined, in their name."""


class CompensationOffer(OperatorAction):
    """R17: goodwill compensation, paid back to the customer's payment method."""

    amount: Money
    reason: ExplainedReason


class CallRequest(OperatorAction):
    """R16: an agent wants to phone the customer (inside call hours, at most 3 per case)."""

    purpose: ExplainedReason


class Assignment(OperatorAction):
    """An operator hands the case to an agent (by staff id)."""

    agent: BusinessKey


class Deadline(StrEnum):
    """Deadlines an operator may extend, each while it is the one running."""

    EVIDENCE = "evidence"  # R6
    REVIEW = "review"  # R10
    SHIP_BACK = "ship_back"  # R12
    REMEDY_CHOICE = "remedy_choice"  # R8
    REFUND_CONSENT = "refund_consent"  # R22


class DeadlineExtension(OperatorAction):
    deadline: Deadline
    extend_by: Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=30))]
    reason: ExplainedReason


class EscalationRequest(OperatorAction):
    """R18: an operator hands the case up the ladder."""

    reason: ExplainedReason


class Remedy(StrEnum):
    """R8: what a customer with a parcel damaged or lost in transit may choose."""

    REPLACEMENT = "replacement"
    PARTIAL_REFUND = "partial_refund"  # and the customer keeps the item
    FULL_REFUND = "full_refund"


class RemedyChoice(Strict):
    choice_id: MessageId
    remedy: Remedy
    partial_amount: Money | None = None

    @model_validator(mode="after")
    def _amount_only_for_partial(self) -> RemedyChoice:
        if (self.remedy is Remedy.PARTIAL_REFUND) != (self.partial_amount is not None):
            raise InvalidValue(
                "partial_amount is required for partial_refund, and only for it (R8)", rule=Rule.R8
            )
        return self


class RefundConsent(Strict):
    """R22: the customer's answer when the replacement is out of stock."""

    consent_id: MessageId
    consent: StrictBool


class ParcelDelivered(Strict):
    """R4: the carrier (or the customer) confirms the parcel arrived after all."""

    event_id: MessageId
    delivered_at: UtcDatetime


class InterceptRequested(Strict):
    """R4: the customer insists on not waiting: return the parcel to sender."""

    event_id: MessageId


class Dispute(Strict):
    """R19: the customer rejects the merchant's final decision and asks the platform."""

    event_id: MessageId
    reason: ExplainedReason


class ArbitrationRuling(OperatorAction):
    """R19: the platform arbiter's ruling, applied as it stands."""

    favour_customer: StrictBool
    # For the customer: how much to refund; none means everything still refundable.
    refund: Money | None = None
    reason: ExplainedReason


class Withdrawal(Strict):
    """The customer no longer wants the case (before the item reached us or money moved)."""

    event_id: MessageId
    reason: Annotated[str, Field(max_length=500)] = ""
