"""The ledger's vocabulary (R23): every action a case or a carrier claim records, what
each means, and the one shape of its `details`. Writers name actions by `LedgerAction`
and have their details checked here, so no step writes a word or a shape this module
does not document (docs/ledger.md is rendered from it). Values are the stored strings:
SQL, reports and other stacks read them as they are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, PlainSerializer

from domain.case import Channel, Grade, MissingItem
from domain.claim import ClaimStatus
from domain.policy import R1JudgedBy
from domain.refusal import OutsideAnswer, RefusalKind
from domain.rules import Rule
from domain.sla import SlaBreach
from domain.state import CaseStatus, Disposition, EscalationLevel, PaymentKind


class LedgerAction(StrEnum):
    # A case (case_events)
    CASE_OPENED = "case_opened"
    REQUEST_REFUSED = "request_refused"
    EVIDENCE_REQUESTED = "evidence_requested"
    EVIDENCE_RECEIVED = "evidence_received"
    MORE_EVIDENCE_RECEIVED = "more_evidence_received"
    REVIEW_STARTED = "review_started"
    APPROVED = "approved"
    REJECTED = "rejected"
    ABANDONED = "abandoned"
    WITHDRAWN = "withdrawn"
    ASSIGNED = "assigned"
    CALL_SCHEDULED = "call_scheduled"
    CALL_NOT_SCHEDULED = "call_not_scheduled"
    DEADLINE_EXTENDED = "deadline_extended"
    PROGRESS_UPDATE_SENT = "progress_update_sent"
    ESCALATED = "escalated"
    COMPENSATION_REFUSED = "compensation_refused"
    MESSAGE_HELD = "message_held"
    MESSAGE_IGNORED = "message_ignored"
    SHIP_BACK_REMINDER_SENT = "ship_back_reminder_sent"
    CUSTOMER_SHIPPED_BACK = "customer_shipped_back"
    PARCEL_RECEIVED = "parcel_received"
    INSPECTION_PASSED = "inspection_passed"
    INSPECTION_FAILED = "inspection_failed"
    REFUND_ISSUED = "refund_issued"
    REFUND_NOT_DUE = "refund_not_due"
    COMPENSATION_PAID = "compensation_paid"
    PRICE_DIFFERENCE_PAID = "price_difference_paid"
    RETURN_POSTAGE_PAID = "return_postage_paid"
    PRICE_DIFFERENCE_CHARGED = "price_difference_charged"
    SHIPMENT_CANCELLED = "shipment_cancelled"
    ALREADY_SHIPPED = "already_shipped"
    AWAITING_DELIVERY = "awaiting_delivery"
    PARCEL_DELIVERED = "parcel_delivered"
    INTERCEPT_REQUESTED = "intercept_requested"
    PARCEL_BACK = "parcel_back"
    MISSING_PART_SHIPPED = "missing_part_shipped"
    APOLOGY_COUPON_ISSUED = "apology_coupon_issued"
    CORRECT_ITEM_SHIPPED = "correct_item_shipped"
    REFUND_CONSENT_REQUESTED = "refund_consent_requested"
    WAITING_FOR_STOCK = "waiting_for_stock"
    REPLACEMENT_SHIPPED = "replacement_shipped"
    CARRIER_CLAIM_OPENED = "carrier_claim_opened"
    CARRIER_CLAIM_NOT_FILED = "carrier_claim_not_filed"
    DISPUTE_WINDOW_OPENED = "dispute_window_opened"
    DISPUTE_WINDOW_CLOSED = "dispute_window_closed"
    DISPUTED = "disputed"
    RULING_UPHOLDS_DECISION = "ruling_upholds_decision"
    CUSTOMER_ERASED = "customer_erased"
    # An outside system's no (docs/outside/): its path in the case.
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_RETRIED = "payment_retried"
    PAYMENT_SETTLED_ELSEWHERE = "payment_settled_elsewhere"
    SHIPMENT_REFUSED = "shipment_refused"
    INTERCEPT_REFUSED = "intercept_refused"
    MESSAGE_NOT_DELIVERED = "message_not_delivered"
    # A carrier claim (claim_events)
    CLAIM_FILED = "claim_filed"
    CLAIM_DEADLINE_MISSED = "claim_deadline_missed"
    CLAIM_CHASED = "claim_chased"
    CLAIM_ESCALATED = "claim_escalated"
    CARRIER_ANSWERED = "carrier_answered"
    CARRIER_RESPONSE_REFUSED = "carrier_response_refused"
    CARRIER_ANSWERED_AFTER_CLOSE = "carrier_answered_after_close"
    CLAIM_REJECTED = "claim_rejected"
    # The batch alarm (batch_events)
    BATCH_FLAGGED = "batch_flagged"


class RefundPurpose(StrEnum):
    """Why money goes to (or, for a price difference, comes from) the customer; the
    `purpose` of a case's refunds and charges."""

    REFUND = "refund"
    COMPENSATION = "compensation"
    PRICE_DIFFERENCE = "price_difference"
    RETURN_POSTAGE = "return_postage"


# What a refund that leaves the case open records: one action per purpose.
PAID_ACTION: dict[RefundPurpose, LedgerAction] = {
    RefundPurpose.COMPENSATION: LedgerAction.COMPENSATION_PAID,
    RefundPurpose.PRICE_DIFFERENCE: LedgerAction.PRICE_DIFFERENCE_PAID,
    RefundPurpose.RETURN_POSTAGE: LedgerAction.RETURN_POSTAGE_PAID,
}


class ShipmentPurpose(StrEnum):
    """Why a parcel goes out to the customer (the `purpose` of a `shipments` row). The
    values are stored and part of the shipments' idempotency keys, spaces and all: they
    stay as they are."""

    MISSING_PART = "missing part"
    REPLACEMENT = "replacement"
    CORRECT_ITEM = "correct item"
    EXCHANGE = "exchange"


# What each purpose means (docs/ledger.md).
PURPOSES: dict[RefundPurpose | ShipmentPurpose, str] = {
    RefundPurpose.REFUND: "the case's refund, which closes it (R13, R21)",
    RefundPurpose.COMPENSATION: "goodwill within the authority limits (R17, R18)",
    RefundPurpose.PRICE_DIFFERENCE: "an exchange's price difference, charged or paid (R22)",
    RefundPurpose.RETURN_POSTAGE: "the return postage paid back: the fault was ours (R6)",
    ShipmentPurpose.MISSING_PART: "the part missing from the delivery (R9)",
    ShipmentPurpose.REPLACEMENT: "a damaged or lost item replaced (R8)",
    ShipmentPurpose.CORRECT_ITEM: "the right item, before the wrong one is back (R7)",
    ShipmentPurpose.EXCHANGE: "the item asked for in exchange (R22)",
}


# The ledger stores times as Python writes them (`isoformat()`), as it always has.
IsoTime = Annotated[AwareDatetime, PlainSerializer(datetime.isoformat, return_type=str)]


class Details(BaseModel):
    """The `details` of one action: only the fields it documents."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseOpenedDetails(Details):
    channel: Channel
    request_id: str
    # R1: which moment the window was judged by, and that moment.
    r1_judged_by: R1JudgedBy | None = None
    r1_judged_at: IsoTime | None = None


class EvidenceDetails(Details):
    event_id: str
    photos: list[str]


class ProgressUpdateDetails(Details):
    due_at: IsoTime  # R14: the slot the update was due at (R16 may hold it to the morning)


class EscalatedDetails(Details):
    level: EscalationLevel
    request: str | None = None  # a person's words asking for it
    complaint: str | None = None  # the customer's complaint
    breach: SlaBreach | None = None  # the deadline that passed, when a breach escalated it


class MessageIgnoredDetails(Details):
    message: dict[str, Any]  # the message as received, its type's own fields
    kind: RefusalKind  # why it changes nothing (the rule is the event's rule_id)


class MessageHeldDetails(Details):
    """A scan (scan_id, scanned_at) or a shipping notice (event_id, shipped_at)."""

    scan_id: str | None = None
    scanned_at: IsoTime | None = None
    event_id: str | None = None
    shipped_at: IsoTime | None = None


class ShippedBackDetails(Details):
    event_id: str
    shipped_at: IsoTime
    late: bool | None = None  # true: the notice came after the parcel's dock scan


class ParcelReceivedDetails(Details):
    scan_id: str
    station: str
    scanned_at: IsoTime


class InspectionDetails(Details):
    scan_id: str
    station: str
    grade: Grade
    disposition: Disposition  # R27
    photos: int  # how many photos the inspector took
    missing_items: list[MissingItem]  # R21: deducted from the refund


class MoneyDetails(Details):
    amount_minor: int
    currency: str
    key: str  # the payment's idempotency key


class OutsideNoDetails(Details):
    answer: OutsideAnswer
    key: str | None = None  # the call's idempotency key, where it has one


class PaymentDeclinedDetails(Details):
    kind: PaymentKind
    amount_minor: int
    currency: str
    key: str  # the payment's idempotency key: a retry pays under it, once (R21)
    answer: OutsideAnswer


class PaymentResolvedDetails(Details):
    key: str
    action_id: str  # the operator's resolution
    reference: str | None = None  # what the person says settled it, for settled_elsewhere


class ParcelBackDetails(Details):
    scan_id: str


class ApologyCouponDetails(Details):
    coupon_minor: int
    root_cause: str  # a RootCause, or why none is tagged yet


class CarrierClaimOpenedDetails(Details):
    claim_id: str


class RefundNotDueDetails(Details):
    # The rule the refund was due under (R17 compensation, R19 ruling, R21 a return's
    # refund, ...); the step's rule_id is R21, whose limit left nothing to pay.
    refund_for_rule: str


class CustomerErasedDetails(Details):
    data_keys_destroyed: int


class BatchFlaggedDetails(Details):
    returns: int
    units: int
    baseline_rate: float  # the SKU's other batches pooled
    p_value: float


DETAILS: dict[LedgerAction, type[Details]] = {
    LedgerAction.CASE_OPENED: CaseOpenedDetails,
    LedgerAction.EVIDENCE_RECEIVED: EvidenceDetails,
    LedgerAction.MORE_EVIDENCE_RECEIVED: EvidenceDetails,
    LedgerAction.PROGRESS_UPDATE_SENT: ProgressUpdateDetails,
    LedgerAction.ESCALATED: EscalatedDetails,
    LedgerAction.MESSAGE_IGNORED: MessageIgnoredDetails,
    LedgerAction.MESSAGE_HELD: MessageHeldDetails,
    LedgerAction.CUSTOMER_SHIPPED_BACK: ShippedBackDetails,
    LedgerAction.PARCEL_RECEIVED: ParcelReceivedDetails,
    LedgerAction.INSPECTION_PASSED: InspectionDetails,
    LedgerAction.INSPECTION_FAILED: InspectionDetails,
    LedgerAction.REFUND_ISSUED: MoneyDetails,
    LedgerAction.COMPENSATION_PAID: MoneyDetails,
    LedgerAction.PRICE_DIFFERENCE_PAID: MoneyDetails,
    LedgerAction.RETURN_POSTAGE_PAID: MoneyDetails,
    LedgerAction.REFUND_NOT_DUE: RefundNotDueDetails,
    LedgerAction.PRICE_DIFFERENCE_CHARGED: MoneyDetails,
    LedgerAction.PARCEL_BACK: ParcelBackDetails,
    LedgerAction.APOLOGY_COUPON_ISSUED: ApologyCouponDetails,
    LedgerAction.CARRIER_CLAIM_OPENED: CarrierClaimOpenedDetails,
    LedgerAction.CUSTOMER_ERASED: CustomerErasedDetails,
    LedgerAction.BATCH_FLAGGED: BatchFlaggedDetails,
    LedgerAction.PAYMENT_DECLINED: PaymentDeclinedDetails,
    LedgerAction.PAYMENT_RETRIED: PaymentResolvedDetails,
    LedgerAction.PAYMENT_SETTLED_ELSEWHERE: PaymentResolvedDetails,
    LedgerAction.SHIPMENT_REFUSED: OutsideNoDetails,
    LedgerAction.INTERCEPT_REFUSED: OutsideNoDetails,
    LedgerAction.MESSAGE_NOT_DELIVERED: OutsideNoDetails,
}


class UndocumentedEntry(ValueError):
    """A step tried to record an action or details this module does not document."""


def checked_details(action: LedgerAction, details: Mapping[str, Any]) -> dict[str, Any]:
    """`details` as `action` documents them, ready for the ledger's jsonb; refused
    (UndocumentedEntry) when a field is unknown, missing or of another type."""
    model = DETAILS.get(action)
    if model is None:
        if details:
            raise UndocumentedEntry(f"{action} records no details, got {sorted(details)}")
        return {}
    try:
        checked = model.model_validate(dict(details))
    except ValueError as error:
        raise UndocumentedEntry(f"{action} details: {error}") from error
    # Only what the writer gave: an optional field left out stays out of the row.
    return checked.model_dump(mode="json", exclude_unset=True)


class Ledger(StrEnum):
    """Which table an action is recorded in."""

    CASE = "case_events"
    CLAIM = "claim_events"
    BATCH = "batch_events"


@dataclass(frozen=True)
class ActionDoc:
    meaning: str
    rules: tuple[Rule, ...]
    # The status the case (or claim) is in right after, where the action fixes it.
    leads_to: tuple[CaseStatus | ClaimStatus, ...] = ()
    ledger: Ledger = Ledger.CASE
    # When the status stays as it was after all (leads_to is not always reached).
    unchanged_if: str = ""


_A = LedgerAction
_S = CaseStatus
_C = ClaimStatus
_R = Rule
ACTIONS: dict[LedgerAction, ActionDoc] = {
    _A.CASE_OPENED: ActionDoc(
        "the customer's request opened the case", (_R.R2, _R.R1), (_S.OPENED,)
    ),
    _A.REQUEST_REFUSED: ActionDoc("refused: outside the return window", (_R.R1,), (_S.REFUSED,)),
    _A.EVIDENCE_REQUESTED: ActionDoc(
        "photos of the problem asked for before review", (_R.R6,), (_S.AWAITING_EVIDENCE,)
    ),
    _A.EVIDENCE_RECEIVED: ActionDoc(
        "the customer's photos arrived; review starts", (_R.R6, _R.R10), (_S.UNDER_REVIEW,)
    ),
    _A.MORE_EVIDENCE_RECEIVED: ActionDoc("more photos arrived during review", (_R.R6,)),
    _A.REVIEW_STARTED: ActionDoc("a person must review within 48 h", (_R.R10,), (_S.UNDER_REVIEW,)),
    _A.APPROVED: ActionDoc(
        "approved by a person, by silence (R11) or with no review needed",
        (_R.R10, _R.R11, _R.R5, _R.R9),
        (_S.AWAITING_SHIP_BACK, _S.AWAITING_REMEDY_CHOICE, _S.REFUND_DUE),
    ),
    _A.REJECTED: ActionDoc("rejected by a person, with the reason", (_R.R20,), (_S.REJECTED,)),
    _A.ABANDONED: ActionDoc(
        "closed: no photos (R6) or no parcel sent back (R12) in time",
        (_R.R6, _R.R12),
        (_S.ABANDONED,),
    ),
    _A.WITHDRAWN: ActionDoc("the customer withdrew the request", (), (_S.WITHDRAWN,)),
    _A.ASSIGNED: ActionDoc("assigned to an agent", ()),
    _A.CALL_SCHEDULED: ActionDoc("a call to the customer booked in call hours", (_R.R16,)),
    _A.CALL_NOT_SCHEDULED: ActionDoc("a call not booked: the case had its most calls", (_R.R16,)),
    _A.DEADLINE_EXTENDED: ActionDoc("an operator gave more time, with a reason", ()),
    _A.PROGRESS_UPDATE_SENT: ActionDoc(
        "the daily update while the case waits on the merchant", (_R.R14,)
    ),
    _A.ESCALATED: ActionDoc(
        "sent up the ladder: a complaint, a request, an authority limit, a dispute or a "
        "deadline breached",
        (_R.R18,),
    ),
    _A.COMPENSATION_REFUSED: ActionDoc("an offer above the agent's authority refused", (_R.R17,)),
    _A.MESSAGE_HELD: ActionDoc(
        "a parcel sent or scanned before the decision: held until the approval", (_R.R12, _R.R26)
    ),
    _A.MESSAGE_IGNORED: ActionDoc(
        "a message that changes nothing now: the refusing rule (R26 for scans, R19 in "
        "arbitration, else the message's own; none for an id another message took, nor for "
        "an assignment, deadline extension or withdrawal, which no rule governs), its kind "
        "and why",
        (_R.R19, _R.R20, _R.R26),
    ),
    _A.SHIP_BACK_REMINDER_SENT: ActionDoc("the customer reminded to send the parcel", (_R.R12,)),
    _A.CUSTOMER_SHIPPED_BACK: ActionDoc(
        "the customer handed the parcel to a carrier",
        (_R.R12, _R.R6),
        (_S.IN_RETURN_TRANSIT,),
        unchanged_if="the notice comes after the parcel's dock scan (`late: true`)",
    ),
    _A.PARCEL_RECEIVED: ActionDoc(
        "the parcel scanned at the dock; inspection due in 48 h",
        (_R.R26, _R.R13),
        (_S.AWAITING_INSPECTION,),
    ),
    _A.INSPECTION_PASSED: ActionDoc(
        "the inspection passed; the refund (or replacement) is due in 24 h",
        (_R.R13, _R.R27),
        (_S.REFUND_DUE, _S.EXCHANGE_DUE),
    ),
    _A.INSPECTION_FAILED: ActionDoc(
        "the inspection failed, with the reason", (_R.R20, _R.R27), (_S.REJECTED,)
    ),
    _A.REFUND_ISSUED: ActionDoc("the case's refund paid, exactly once", (_R.R21,), (_S.REFUNDED,)),
    _A.REFUND_NOT_DUE: ActionDoc(
        "nothing left to refund within the case's limit", (_R.R21,), (_S.REFUNDED,)
    ),
    _A.COMPENSATION_PAID: ActionDoc("a goodwill payment within the authority limit", (_R.R17,)),
    _A.PRICE_DIFFERENCE_PAID: ActionDoc("a cheaper exchange's difference paid back", (_R.R22,)),
    _A.RETURN_POSTAGE_PAID: ActionDoc("the return postage paid back on an exchange", (_R.R6,)),
    _A.PRICE_DIFFERENCE_CHARGED: ActionDoc("a dearer exchange's difference charged", (_R.R22,)),
    _A.SHIPMENT_CANCELLED: ActionDoc(
        "not shipped yet: the warehouse stopped the order", (_R.R3,), (_S.REFUND_DUE,)
    ),
    _A.ALREADY_SHIPPED: ActionDoc("too late to stop: handled as in transit", (_R.R3, _R.R4)),
    _A.AWAITING_DELIVERY: ActionDoc(
        "in transit: the expected date told and awaited", (_R.R4,), (_S.AWAITING_DELIVERY,)
    ),
    _A.PARCEL_DELIVERED: ActionDoc("the awaited parcel arrived", (_R.R4,), (_S.DELIVERED,)),
    _A.INTERCEPT_REQUESTED: ActionDoc(
        "the customer insists: returned to sender", (_R.R4,), (_S.INTERCEPTING,)
    ),
    _A.PARCEL_BACK: ActionDoc(
        "the intercepted parcel is back; refund due", (_R.R4,), (_S.REFUND_DUE,)
    ),
    _A.MISSING_PART_SHIPPED: ActionDoc("the missing part sent", (_R.R9,), (_S.REPLACED,)),
    _A.APOLOGY_COUPON_ISSUED: ActionDoc("a wrong item: coupon and root cause", (_R.R7,)),
    _A.CORRECT_ITEM_SHIPPED: ActionDoc(
        "the right item sent before the wrong one is back", (_R.R7,)
    ),
    _A.REFUND_CONSENT_REQUESTED: ActionDoc(
        "out of stock: a refund needs the customer's consent",
        (_R.R22,),
        (_S.AWAITING_REFUND_CONSENT,),
    ),
    _A.WAITING_FOR_STOCK: ActionDoc(
        "the exchange waits for stock", (_R.R22,), (_S.WAITING_FOR_STOCK,)
    ),
    _A.REPLACEMENT_SHIPPED: ActionDoc(
        "the replacement (or exchanged item) sent", (_R.R8, _R.R22), (_S.REPLACED, _S.EXCHANGED)
    ),
    _A.CARRIER_CLAIM_OPENED: ActionDoc("a claim against the carrier started", (_R.R8, _R.R15)),
    _A.CARRIER_CLAIM_NOT_FILED: ActionDoc("no carrier named: nothing to claim", (_R.R15,)),
    _A.DISPUTE_WINDOW_OPENED: ActionDoc(
        "the rejection stands unless the customer disputes it by the deadline", (_R.R19,)
    ),
    _A.DISPUTE_WINDOW_CLOSED: ActionDoc("the dispute window passed with no dispute", (_R.R19,)),
    _A.DISPUTED: ActionDoc(
        "the customer took the rejection to arbitration", (_R.R19,), (_S.IN_ARBITRATION,)
    ),
    _A.RULING_UPHOLDS_DECISION: ActionDoc(
        "the arbiter kept the rejection", (_R.R19,), (_S.REJECTED,)
    ),
    _A.CUSTOMER_ERASED: ActionDoc(
        "the customer's personal data erased (GDPR art. 17); written by the erasure", (_R.R23,)
    ),
    _A.PAYMENT_DECLINED: ActionDoc(
        "the payment provider declined a refund or charge, or answered what its contract "
        "does not define: no money moved; a person retries it or records it settled",
        (_R.R21,),
        (_S.PAYMENT_DECLINED,),
    ),
    _A.PAYMENT_RETRIED: ActionDoc(
        "an operator retried a declined payment under its key", (_R.R21, _R.R23)
    ),
    _A.PAYMENT_SETTLED_ELSEWHERE: ActionDoc(
        "an operator recorded a declined payment settled another way (or the provider "
        "had paid it after all): the money moved once",
        (_R.R21, _R.R23),
    ),
    _A.SHIPMENT_REFUSED: ActionDoc(
        "the warehouse did not send a parcel (no stock, or an unknown answer): a missing "
        "part is refunded (R9), a replacement becomes a refund (R8) or waits for the "
        "customer's consent (R22), a wrong item's right one goes with the exchange (R7)",
        (_R.R7, _R.R8, _R.R9, _R.R22),
    ),
    _A.INTERCEPT_REFUSED: ActionDoc(
        "the carrier cannot stop the parcel: the case keeps waiting for delivery", (_R.R4,)
    ),
    _A.MESSAGE_NOT_DELIVERED: ActionDoc(
        "the messaging service would not deliver a message to the customer", ()
    ),
    _A.CLAIM_FILED: ActionDoc(
        "filed with the carrier before its deadline",
        (_R.R15,),
        (_C.AWAITING_CARRIER,),
        Ledger.CLAIM,
    ),
    _A.CLAIM_DEADLINE_MISSED: ActionDoc(
        "the carrier's deadline had passed: the loss stays with the merchant",
        (_R.R15,),
        (_C.DEADLINE_MISSED,),
        Ledger.CLAIM,
    ),
    _A.CLAIM_CHASED: ActionDoc("the carrier chased (every 7 days)", (_R.R15,), (), Ledger.CLAIM),
    _A.CLAIM_ESCALATED: ActionDoc(
        "the carrier silent for 30 days: to a supervisor", (_R.R15, _R.R18), (), Ledger.CLAIM
    ),
    _A.CARRIER_ANSWERED: ActionDoc(
        "the carrier's answer: claimed and recovered",
        (_R.R15,),
        (_C.SETTLED, _C.DECLINED),
        Ledger.CLAIM,
    ),
    _A.CARRIER_RESPONSE_REFUSED: ActionDoc(
        "an answer in another currency than the claim's", (_R.R15,), (), Ledger.CLAIM
    ),
    _A.CARRIER_ANSWERED_AFTER_CLOSE: ActionDoc(
        "an answer after the close: recorded, reopens nothing", (_R.R15,), (), Ledger.CLAIM
    ),
    _A.CLAIM_REJECTED: ActionDoc(
        "the carrier's desk rejected the claim (or answered what its contract does not "
        "define): the loss stays with the merchant, a person may take it further",
        (_R.R15,),
        (_C.DECLINED,),
        Ledger.CLAIM,
    ),
    _A.BATCH_FLAGGED: ActionDoc(
        "a batch returns far above its SKU's others: flagged once, the quality team told",
        (_R.R24,),
        (),
        Ledger.BATCH,
    ),
}


def check_ledger(action: LedgerAction, ledger: Ledger) -> None:
    """A claim's action is recorded on the claim, a case's on the case, the alarm's in
    its own ledger."""
    if ACTIONS[action].ledger is not ledger:
        raise UndocumentedEntry(f"{action} is recorded in {ACTIONS[action].ledger}, not {ledger}")
