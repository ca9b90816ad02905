"""The rules of shared/domain.md as pure functions over typed values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.case import STAFF, CaseKind, Grade, MissingItem, OpenCaseRequest, Reason, Role
from domain.money import Money
from domain.policy_settings import PolicySettings
from domain.state import Disposition, EscalationLevel


@dataclass(frozen=True)
class WindowCheck:
    accepted: bool
    deadline: datetime
    reason: str | None


def check_return_window(request: OpenCaseRequest, policy: PolicySettings) -> WindowCheck:
    """R1: a return must be asked for within the window counted from delivery (inclusive)."""
    if request.delivered_at is None:
        raise ValueError("R1 applies only to delivered orders")
    deadline = request.delivered_at + policy.return_window
    if request.requested_at <= deadline:
        return WindowCheck(accepted=True, deadline=deadline, reason=None)
    days = policy.return_window.total_seconds() / 86_400
    return WindowCheck(
        accepted=False,
        deadline=deadline,
        reason=(
            f"R1: returns must be requested within {days:g} days of delivery; delivered "
            f"{request.delivered_at.isoformat()}, the window closed {deadline.isoformat()}, "
            f"requested {request.requested_at.isoformat()}"
        ),
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
NO_REVIEW_RULE = {
    Reason.CHANGED_MIND: "R5",  # no reason needed; the inspection decides
    Reason.NOT_SHIPPED_YET: "R3",  # cancel and refund at once
    Reason.NOT_RECEIVED: "R4",  # tell the expected date and wait
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


def compensation_refusal(
    role: Role, amount: Money, already_refunded: Money, limit: Money, policy: PolicySettings
) -> str | None:
    """R17 + R21: why an operator may not grant this compensation, or None if they may."""
    if role not in STAFF:
        return f"R17: only agents, supervisors and managers grant compensation, not {role}"
    agent_limit = Money(
        amount_minor=policy.agent_compensation_limit_minor, currency=amount.currency
    )
    if role is Role.AGENT and not amount <= agent_limit:
        return (
            f"R17: {amount} is above the agent limit of {agent_limit}; "
            "a supervisor must approve it (escalate the case)"
        )
    if not already_refunded + amount <= limit:
        return (
            f"R21: {amount} on top of {already_refunded} already refunded exceeds "
            f"the case's refund limit of {limit}"
        )
    return None


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
