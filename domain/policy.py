"""The rules of shared/domain.md as pure functions over typed values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.case import Grade, OpenCaseRequest
from domain.money import Money
from domain.policy_settings import PolicySettings
from domain.state import Disposition


@dataclass(frozen=True)
class WindowCheck:
    accepted: bool
    deadline: datetime
    reason: str | None


def check_return_window(request: OpenCaseRequest, policy: PolicySettings) -> WindowCheck:
    """R1: a return must be asked for within the window counted from delivery (inclusive)."""
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
