"""The service levels the rules set, by one name each, and a breach as structured data:
the workflow records a breach with it, the ledger keeps it, reports read it (R24)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from domain.rules import Rule


class SlaClock(StrEnum):
    """One deadline a rule sets. Values name the policy setting (or request field) that
    gives its length, so the ledger, `policy.toml` and the reports share one word."""

    EXPECTED_DELIVERY = "expected_delivery"  # R4: the carrier's promised delivery
    REVIEW = "review_deadline"  # R10: a reviewed decision within 48 h
    FIRST_CONTACT = "first_contact_deadline"  # R10: a person contacts the customer in 24 h
    INSPECTION = "inspection_deadline"  # R13: inspected within 48 h of the dock scan
    REFUND = "refund_deadline"  # R13: refunded within 24 h of a passed inspection
    FOLLOW_UP = "follow_up_interval"  # R14: a progress update every day
    CLAIM_FILING = "claim_filing_deadline"  # R15: filed within the carrier's deadline
    CARRIER_SILENCE = "carrier_silence_escalation"  # R15: the carrier answers in 30 days
    SUPERVISOR = "supervisor_response"  # R18: a supervisor acts within 24 h


RULE_OF_CLOCK: dict[SlaClock, Rule] = {
    SlaClock.EXPECTED_DELIVERY: Rule.R4,
    SlaClock.REVIEW: Rule.R10,
    SlaClock.FIRST_CONTACT: Rule.R10,
    SlaClock.INSPECTION: Rule.R13,
    SlaClock.REFUND: Rule.R13,
    SlaClock.FOLLOW_UP: Rule.R14,
    SlaClock.CLAIM_FILING: Rule.R15,
    SlaClock.CARRIER_SILENCE: Rule.R15,
    SlaClock.SUPERVISOR: Rule.R18,
}


class SlaBreach(BaseModel):
    """A deadline that passed with its step not done: which rule, due when, seen when.
    Times carry their offset, as every time in the ledger's details does."""

    model_config = ConfigDict(frozen=True)

    clock: SlaClock
    due_at: AwareDatetime
    breached_at: AwareDatetime

    @property
    def rule(self) -> Rule:
        return RULE_OF_CLOCK[self.clock]
