"""The numbers marked *(policy)* in shared/domain.md, as one versioned value.

A case pins the settings it opened under (they travel in its state), so a later change
of policy never moves a running case's deadlines. `activities/policy_file.py` reads them from
the merchant's policy file, per product category and carrier."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

MinorUnits = Annotated[int, Field(ge=0, le=100_000_000_00)]


class PolicySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Annotated[str, Field(min_length=1, max_length=128)] = "2026-11-default"
    return_window: timedelta = timedelta(days=7)  # R1, per category
    # R1: a requested_at older than this before our receipt is judged at receipt instead.
    backdating_allowance: timedelta = timedelta(hours=24)
    # R1: how far a caller's clock may run ahead of ours; a requested_at later than our
    # receipt by more is refused.
    clock_skew_allowance: timedelta = timedelta(minutes=5)
    changed_mind_handling_fee_bp: Annotated[int, Field(ge=0, le=10_000)] = 0  # R5
    evidence_window: timedelta = timedelta(days=7)  # R6 (silent in the rules: our choice)
    wrong_item_coupon_minor: MinorUnits = 1_000  # R7
    remedy_choice_window: timedelta = timedelta(days=7)  # R8 (silent in the rules: our choice)
    review_deadline: timedelta = timedelta(hours=48)  # R10, R11
    first_contact_deadline: timedelta = timedelta(hours=24)  # R10
    ship_back_window: timedelta = timedelta(days=7)  # R12
    ship_back_reminders: tuple[timedelta, ...] = (timedelta(days=3), timedelta(days=6))  # R12
    inspection_deadline: timedelta = timedelta(hours=48)  # R13
    refund_deadline: timedelta = timedelta(hours=24)  # R13
    follow_up_interval: timedelta = timedelta(days=1)  # R14
    carrier_claim_deadline: timedelta = timedelta(days=60)  # R15, per carrier
    carrier_chase_interval: timedelta = timedelta(days=7)  # R15
    carrier_silence_escalation: timedelta = timedelta(days=30)  # R15
    # R15 (silent in the rules: our choice): a closed claim still hears late answers this long.
    carrier_late_answer_window: timedelta = timedelta(days=30)
    call_hours: tuple[time, time] = (time(10), time(18))  # R16
    # R16 says only that a message due "at night" waits for the morning; night is ours.
    message_hours: tuple[time, time] = (time(8), time(21))
    max_calls_per_case: Annotated[int, Field(ge=0, le=10)] = 3  # R16
    agent_compensation_limit_minor: MinorUnits = 5_000  # R17
    # R6 (silent in the rules: our choice): the most return postage paid back, in the
    # order's currency. None, no cap: cases pinned before the cap existed keep paying all.
    max_return_postage_minor: MinorUnits | None = None
    supervisor_response: timedelta = timedelta(hours=24)  # R18
    dispute_window: timedelta = timedelta(days=7)  # R19 (silent in the rules: our choice)
    survey_window: timedelta = timedelta(days=7)  # R25 (silent in the rules: our choice)

    @model_validator(mode="after")
    def _consistent(self) -> PolicySettings:
        if any(not timedelta(0) < r < self.ship_back_window for r in self.ship_back_reminders):
            raise ValueError("ship_back_reminders must fall strictly inside ship_back_window (R12)")
        if list(self.ship_back_reminders) != sorted(self.ship_back_reminders):
            raise ValueError("ship_back_reminders must be in ascending order (R12)")
        for name in ("call_hours", "message_hours"):
            start, end = getattr(self, name)
            if not start < end:
                raise ValueError(f"{name}: the start must come before the end (R16)")
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, timedelta) and value <= timedelta(0):
                raise ValueError(f"{name} must be a positive duration")
        return self


# Every distinct policy a process has seen, once (at most _SHARED_MAX of them).
_SHARED: dict[PolicySettings, PolicySettings] = {}
_SHARED_MAX = 1_000


def shared_policy(policy: PolicySettings) -> PolicySettings:
    """The one instance of an equal policy this process already holds, else `policy`.

    A worker caches thousands of cases, each pinning one of a few policies; decoded from
    its payload, each would hold its own copy (~4 KiB). Settings are frozen and compared
    by value, so which equal instance a case holds changes nothing it does or stores."""
    kept = _SHARED.get(policy)
    if kept is not None:
        return kept
    if len(_SHARED) < _SHARED_MAX:
        _SHARED[policy] = policy
    return policy
