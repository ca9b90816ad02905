"""The rules of shared/domain.md as pure functions over typed values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from domain.case import (
    STAFF,
    ArbitrationRuling,
    Assignment,
    CallRequest,
    CaseKind,
    CompensationOffer,
    Complaint,
    DeadlineExtension,
    Dispute,
    EscalationRequest,
    EvidenceSubmitted,
    Grade,
    InterceptRequested,
    MissingItem,
    OpenCaseRequest,
    ParcelDelivered,
    PaymentResolution,
    Reason,
    RefundConsent,
    RemedyChoice,
    ReviewDecision,
    Role,
    ScanEvent,
    ShippedBack,
    WarehouseScan,
    Withdrawal,
)
from domain.claim import CarrierResponse, ClaimStatus
from domain.money import Money
from domain.policy_settings import PolicySettings
from domain.refusal import Refusal, RefusalKind
from domain.rules import Rule
from domain.state import (
    WITHDRAWABLE,
    CaseMessage,
    CaseState,
    CaseStatus,
    Disposition,
    EscalationLevel,
)


class R1JudgedBy(StrEnum):
    """Which moment R1 judged (its value is what the ledger's `r1_judged_by` stores)."""

    REQUESTED_AT = "requested_at"  # the caller's statement
    # Our receipt, because the statement was older than the policy allows.
    RECEIVED_AT = "received_at"


@dataclass(frozen=True)
class WindowCheck:
    accepted: bool
    deadline: datetime
    reason: str | None
    # The moment R1 judged, and which one it is.
    judged_at: datetime
    judged_by: R1JudgedBy


@dataclass(frozen=True)
class R1Moment:
    at: datetime
    # Requests with no receipt (as before receipts were kept) are judged as requested.
    by: R1JudgedBy
    why: str


def r1_moment(request: OpenCaseRequest, policy: PolicySettings) -> R1Moment:
    """R1 cannot be moved by the caller's clock: a requested_at more than the policy's
    allowance before our receipt is not believed, and the receipt is judged instead.
    Requests without a receipt (recorded before receipts were kept, or opened by an
    operator's tool) are judged by requested_at."""
    received = request.received_at
    if received is None or received - request.requested_at <= policy.backdating_allowance:
        return R1Moment(at=request.requested_at, by=R1JudgedBy.REQUESTED_AT, why="as requested")
    return R1Moment(
        at=received,
        by=R1JudgedBy.RECEIVED_AT,
        why=(
            f"judged at our receipt {received.isoformat()}: requested_at "
            f"{request.requested_at.isoformat()} is more than {policy.backdating_allowance} "
            "before it"
        ),
    )


def future_request_refusal(request: OpenCaseRequest, policy: PolicySettings) -> Refusal | None:
    """R1: why a request that says it was made after we received it is refused, or None."""
    received = request.received_at
    if received is None or request.requested_at <= received + policy.clock_skew_allowance:
        return None
    return Refusal(
        rule=Rule.R1,
        kind=RefusalKind.REQUESTED_IN_THE_FUTURE,
        text=f"requested_at: {request.requested_at.isoformat()} is later than our receipt "
        f"{received.isoformat()} by more than the {policy.clock_skew_allowance} of clock skew "
        "allowed; a request cannot be made in the future (R1)",
    )


def check_return_window(request: OpenCaseRequest, policy: PolicySettings) -> WindowCheck:
    """R1: a return must be asked for within the window counted from delivery (inclusive)."""
    if request.delivered_at is None:
        raise ValueError("R1 applies only to delivered orders")
    deadline = request.delivered_at + policy.return_window
    moment = r1_moment(request, policy)
    if moment.at <= deadline:
        return WindowCheck(
            accepted=True, deadline=deadline, reason=None, judged_at=moment.at, judged_by=moment.by
        )
    days = policy.return_window.total_seconds() / 86_400
    asked = (
        f"requested {moment.at.isoformat()}" if moment.by is R1JudgedBy.REQUESTED_AT else moment.why
    )
    return WindowCheck(
        accepted=False,
        deadline=deadline,
        reason=(
            f"R1: returns must be requested within {days:g} days of delivery; delivered "
            f"{request.delivered_at.isoformat()}, the window closed {deadline.isoformat()}, "
            f"{asked}"
        ),
        judged_at=moment.at,
        judged_by=moment.by,
    )


@dataclass(frozen=True)
class ShipBackSchedule:
    reminders: tuple[datetime, ...]
    deadline: datetime


def ship_back_schedule(approved_at: datetime, policy: PolicySettings) -> ShipBackSchedule:
    """R12: reminders at the policy's offsets, then the case is abandoned at the deadline."""
    return ShipBackSchedule(
        reminders=tuple(approved_at + offset for offset in policy.ship_back_reminders),
        deadline=approved_at + policy.ship_back_window,
    )


@dataclass(frozen=True)
class InspectionVerdict:
    passed: bool
    disposition: Disposition
    reason: str


_FAILED_DISPOSITION_REASON = {
    Grade.REFURBISH: "the item shows use and cannot be resold as new",
    Grade.DAMAGED: "the item came back damaged",
    Grade.WRONG_ITEM: "the parcel held a different item from the one sold",
}


def judge_changed_mind_inspection(grade: Grade) -> InspectionVerdict:
    """R5 + R20 + R27: a changed-mind return passes only if resellable; a failure goes back."""
    if grade is Grade.RESELLABLE:
        return InspectionVerdict(
            passed=True, disposition=Disposition.RESTOCK, reason="R5: item is resellable"
        )
    return InspectionVerdict(
        passed=False,
        disposition=Disposition.RETURN_TO_CUSTOMER,
        reason=(
            f"R5/R20: a changed-mind return must come back resellable (unused, tags on, "
            f"original packaging); {_FAILED_DISPOSITION_REASON[grade]}, so it is sent back "
            f"to you and nothing is refunded"
        ),
    )


def refund_limit(paid: Money, reimbursed_shipping: Money | None = None) -> Money:
    """R21: the most a case may ever refund."""
    return paid if reimbursed_shipping is None else paid + reimbursed_shipping


def changed_mind_refund(paid: Money, policy: PolicySettings, already_refunded: Money) -> Money:
    """R5 + R21: price less the handling fee (rounded in the customer's favour), never above
    what is left of the refund limit."""
    fee_minor = paid.amount_minor * policy.changed_mind_handling_fee_bp // 10_000
    due = Money(amount_minor=paid.amount_minor - fee_minor, currency=paid.currency)
    left = refund_limit(paid).minus_floored_at_zero(already_refunded)
    return due if due <= left else left


MERCHANT_FAULT_REASONS = frozenset(
    {
        Reason.QUALITY_DEFECT,
        Reason.NOT_AS_DESCRIBED,
        Reason.DAMAGED_IN_TRANSIT,
        Reason.MISSING_PARTS,
        Reason.WRONG_ITEM,
    }
)


def needs_evidence(reason: Reason) -> bool:
    """R6: merchant-fault and transit-damage cases start with the customer's photos."""
    return reason in MERCHANT_FAULT_REASONS


def needs_review(kind: CaseKind, reason: Reason) -> bool:
    """R10: a person reviews every case except those in NO_REVIEW_RULE."""
    del kind  # every kind follows the same rule today; kept for per-kind policy later
    return reason not in NO_REVIEW_RULE


# Requests that need no review, and the rule that says so.
NO_REVIEW_RULE: dict[Reason, Rule] = {
    Reason.CHANGED_MIND: Rule.R5,  # no reason needed; the inspection decides
    Reason.NOT_SHIPPED_YET: Rule.R3,  # cancel and refund at once
    Reason.NOT_RECEIVED: Rule.R4,  # tell the expected date and wait
}


def merchant_pays_return_shipping(reason: Reason) -> bool:
    """R5 vs R6: the customer pays for a change of mind; the merchant for its own fault."""
    return reason in MERCHANT_FAULT_REASONS


def next_contact_slot(due: datetime, time_zone: str, hours: tuple[time, time]) -> datetime:
    """R16: the first moment at or after `due` inside the customer's local contact hours."""
    zone = ZoneInfo(time_zone)
    local = due.astimezone(zone)
    start, end = hours
    if start <= local.time() < end:
        return due
    day = local.date() if local.time() < start else local.date() + timedelta(days=1)
    # Built from the wall-clock time, so a DST change moves the UTC instant, not the hour.
    return datetime.combine(day, start, tzinfo=zone).astimezone(UTC)


def agent_limit_refusal(role: Role, amount: Money, policy: PolicySettings) -> Refusal | None:
    """R17: why an agent may not grant this much alone, or None."""
    agent_limit = Money(
        amount_minor=policy.agent_compensation_limit_minor, currency=amount.currency
    )
    if role is Role.AGENT and not amount <= agent_limit:
        return Refusal(
            rule=Rule.R17,
            kind=RefusalKind.ABOVE_AGENT_LIMIT,
            text=f"R17: {amount} is above the agent limit of {agent_limit}; "
            "a supervisor must approve it (the case goes to a supervisor, R18)",
        )
    return None


def compensation_refusal(
    role: Role, amount: Money, already_refunded: Money, limit: Money, policy: PolicySettings
) -> Refusal | None:
    """R17 + R21: why an operator may not grant this compensation, or None if they may."""
    if role not in STAFF:
        return Refusal(
            rule=Rule.R17,
            kind=RefusalKind.NOT_STAFF,
            text=f"R17: only agents, supervisors and managers grant compensation, not {role}",
        )
    above = agent_limit_refusal(role, amount, policy)
    if above:
        return above
    if not already_refunded + amount <= limit:
        return Refusal(
            rule=Rule.R21,
            kind=RefusalKind.ABOVE_REFUND_LIMIT,
            text=f"R21: {amount} on top of {already_refunded} already refunded exceeds "
            f"the case's refund limit of {limit}",
        )
    return None


def call_limit_refusal(calls_scheduled: int, policy: PolicySettings) -> Refusal | None:
    """R16: at most the policy's number of calls per case."""
    if calls_scheduled < policy.max_calls_per_case:
        return None
    return Refusal(
        rule=Rule.R16,
        kind=RefusalKind.CALL_LIMIT_REACHED,
        text=f"R16: this case already had {calls_scheduled} calls, the most allowed",
    )


def escalation_refusal(current: EscalationLevel) -> Refusal | None:
    """R18: the ladder ends at the manager."""
    if current is not EscalationLevel.MANAGER:
        return None
    return Refusal(
        rule=Rule.R18,
        kind=RefusalKind.ALREADY_AT_MANAGER,
        text="escalation: the case is already at the manager level (R18)",
    )


def escalation_target(current: EscalationLevel, *, major: bool = False) -> EscalationLevel:
    """R18: a case goes up one level; a major complaint goes straight to the manager."""
    if major or current is not EscalationLevel.NONE:
        return EscalationLevel.MANAGER
    return EscalationLevel.SUPERVISOR


_MERCHANT_FAULT_DISPOSITION = {
    Grade.RESELLABLE: Disposition.RESTOCK,
    Grade.REFURBISH: Disposition.REPAIR,
    Grade.DAMAGED: Disposition.RETURN_TO_VENDOR,
}


def judge_merchant_fault_inspection(grade: Grade) -> InspectionVerdict:
    """R6 + R27: the fault was accepted at review; the inspection only checks that the item
    sent back is ours, and routes it (restock, repair, back to the vendor)."""
    if grade is Grade.WRONG_ITEM:
        return InspectionVerdict(
            passed=False,
            disposition=Disposition.RETURN_TO_CUSTOMER,
            reason="R20: the parcel held a different item from the one sold, so it is sent "
            "back to you and nothing is refunded",
        )
    return InspectionVerdict(
        passed=True,
        disposition=_MERCHANT_FAULT_DISPOSITION[grade],
        reason=f"R6: the item is ours; it goes to {_MERCHANT_FAULT_DISPOSITION[grade].value}",
    )


def claim_file_deadline(counts_from: datetime, policy: PolicySettings) -> datetime:
    """R15: a carrier accepts claims up to its deadline after delivery."""
    return counts_from + policy.carrier_claim_deadline


def next_chase_due(filed_at: datetime, chases_sent: int, policy: PolicySettings) -> datetime:
    """R15: chase the carrier every interval after filing."""
    return filed_at + policy.carrier_chase_interval * (chases_sent + 1)


def carrier_silence_deadline(filed_at: datetime, policy: PolicySettings) -> datetime:
    """R15: a carrier silent this long after filing is escalated."""
    return filed_at + policy.carrier_silence_escalation


@dataclass(frozen=True)
class PriceDifference:
    to_charge: Money
    to_refund: Money


def price_difference(paid: Money, replacement_price: Money) -> PriceDifference:
    """R22: a dearer replacement is charged, a cheaper one refunded."""
    return PriceDifference(
        to_charge=replacement_price.minus_floored_at_zero(paid),
        to_refund=paid.minus_floored_at_zero(replacement_price),
    )


def missing_items_deduction(items: list[MissingItem], currency: str) -> Money:
    """R21: what incomplete accessories and gifts take off the refund."""
    total = Money.zero(currency)
    for item in items:
        total = total + item.value
    return total


# ---- late, duplicate and out-of-order messages -------------------------------------


def inspection_clock_start(scanned_at: datetime, now: datetime, *, held: bool) -> datetime:
    """R13: inspection is due within its deadline of the dock scan. A scanner clock ahead of
    ours cannot extend it; a parcel that reached the dock before the case was approved
    could not be inspected until then, so its clock starts at the approval (now)."""
    return now if held else min(scanned_at, now)


def unapplied_scan_refusal(
    event: ScanEvent,
    status: str,
    *,
    received_scan_id: str | None,
    inspection_scan_id: str | None,
) -> Refusal:
    """R26: why a warehouse scan changes nothing, in words a warehouse clerk can act on."""
    if event is ScanEvent.PARCEL_RECEIVED and inspection_scan_id is not None:
        if received_scan_id == inspection_scan_id:
            return _scan_refusal(
                RefusalKind.DOCK_SCAN_AFTER_INSPECTION_RECEIPT,
                f"a dock scan after the inspection scan {inspection_scan_id}, which already "
                "counted as the parcel's receipt (R26); nothing changes",
            )
        return _scan_refusal(
            RefusalKind.ALREADY_RECEIVED_AND_INSPECTED,
            f"the parcel was received (dock scan {received_scan_id}) and inspected (scan "
            f"{inspection_scan_id}) already; another dock scan changes nothing (R26)",
        )
    if event is ScanEvent.PARCEL_RECEIVED and received_scan_id is not None:
        return _scan_refusal(
            RefusalKind.ALREADY_RECEIVED,
            f"the parcel was already received (dock scan {received_scan_id}); another dock "
            "scan changes nothing (R26)",
        )
    if event is ScanEvent.INSPECTED and inspection_scan_id is not None:
        return _scan_refusal(
            RefusalKind.ALREADY_INSPECTED,
            f"the item was already inspected (scan {inspection_scan_id}); a second inspection "
            "is kept for a person and changes nothing (R26)",
        )
    return _scan_refusal(
        RefusalKind.NO_PARCEL_EXPECTED,
        f"no parcel is expected while the case is {status}; kept for a person (R26)",
    )


def _scan_refusal(kind: RefusalKind, text: str) -> Refusal:
    return Refusal(rule=Rule.R26, kind=kind, text=text)


def late_shipped_back_reason(received_scan_id: str | None) -> str:
    """R12 + R6: the customer's shipping notice arrived after the parcel reached the dock."""
    return (
        f"told after the parcel had reached the dock (scan "
        f"{received_scan_id}): kept for the tracking and the postage (R6), the case goes on"
    )


def postage_note(postage: Money | None, paid: Money, policy: PolicySettings) -> str:
    """R6: why declared postage will not be paid back in full, or "" when it can be."""
    if postage is None:
        return ""
    if postage.currency != paid.currency:
        return (
            f"; postage {postage} is not in the order's currency ({paid.currency}) and is "
            "not reimbursed (R6)"
        )
    cap = policy.max_return_postage_minor
    if cap is not None and postage.amount_minor > cap:
        most = Money(amount_minor=cap, currency=postage.currency)
        return f"; postage {postage} is above the {most} paid back at most (R6)"
    return ""


def late_carrier_response_reason(
    closed_as: ClaimStatus, answered: CarrierResponse | None, late: CarrierResponse,
    claimed: Money,
) -> str:  # fmt: skip
    """R15: a carrier's answer that arrives after its claim closed never reopens it; it is
    recorded, and one that differs from the recorded outcome is left for a person."""
    head = f"answer {late.response_id} came after the claim closed as {closed_as.value}"
    if late.recovered.currency != claimed.currency:
        return (
            f"{head}, in {late.recovered.currency} for a claim in {claimed.currency}: "
            "kept for a person; nothing changes"
        )
    if (
        answered is not None
        and answered.accepted == late.accepted
        and answered.recovered == late.recovered
    ):
        return (
            f"{head}; it repeats answer {answered.response_id} (recovered "
            f"{answered.recovered}): nothing changes"
        )
    now_says = f"accepts, recovering {late.recovered}" if late.accepted else "declines"
    so_far = answered.recovered if answered is not None else Money.zero(claimed.currency)
    return (
        f"{head} (recovered so far {so_far} of {claimed}); the carrier now {now_says}"
        f": the claim stays {closed_as.value}, and a person reconciles it"
    )


# The rule each message answers to, named when the case refuses it; None where no rule of
# domain.md governs the message (the refusal's kind alone says why).
_RULE_OF: dict[type[CaseMessage], Rule | None] = {
    WarehouseScan: Rule.R26,
    ShippedBack: Rule.R12,
    EvidenceSubmitted: Rule.R6,
    Complaint: Rule.R18,
    ReviewDecision: Rule.R10,
    CompensationOffer: Rule.R17,
    EscalationRequest: Rule.R18,
    RemedyChoice: Rule.R8,
    RefundConsent: Rule.R22,
    ParcelDelivered: Rule.R4,
    InterceptRequested: Rule.R4,
    Dispute: Rule.R19,
    ArbitrationRuling: Rule.R19,
    CallRequest: Rule.R16,
    Assignment: None,
    DeadlineExtension: None,
    Withdrawal: None,
    PaymentResolution: Rule.R21,
}


def rule_of(message: CaseMessage) -> Rule | None:
    """The rule a refusal of `message` names when the case's status is why."""
    return _RULE_OF[type(message)]


def unapplied_message_refusal(state: CaseState, message: CaseMessage) -> Refusal:
    """Why a message changes nothing in the case's status now (the workflow records it
    with this, never drops it; an Update that sent it is refused with it)."""
    status = state.status.value + (" (closed)" if state.status.is_closed else "")
    if isinstance(message, WarehouseScan):
        return unapplied_scan_refusal(
            message.event,
            status,
            received_scan_id=state.received_scan_id,
            inspection_scan_id=state.inspection.scan_id if state.inspection else None,
        )
    if state.status is CaseStatus.IN_ARBITRATION:
        return Refusal(
            rule=Rule.R19,
            kind=RefusalKind.IN_ARBITRATION,
            text="the case is in arbitration: the arbiter's ruling decides its money "
            "and status (R19)",
        )
    if isinstance(message, Withdrawal) and state.status in WITHDRAWABLE and state.refunds:
        return Refusal(
            rule=rule_of(message),
            kind=RefusalKind.MONEY_MOVED,
            text="the request cannot be withdrawn: money has already been paid on it",
        )
    rule = rule_of(message)
    if state.status.is_closed:
        return Refusal(
            rule=rule,
            kind=RefusalKind.CASE_CLOSED,
            text=f"the case is already closed ({state.status.value})",
        )
    return Refusal(
        rule=rule, kind=RefusalKind.NOT_NOW, text=f"nothing to do while the case is {status}"
    )
