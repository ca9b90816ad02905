"""A rule's typed no: which rule, what kind of no, and the words a person reads. Policy
functions return it, the workflows refuse messages with it, and the API hands its rule to
the caller."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.rules import Rule


class RefusalKind(StrEnum):
    """Why a rule says no, as something code can branch on (the text is for people)."""

    REQUESTED_IN_THE_FUTURE = "requested_in_the_future"  # R1
    NOT_STAFF = "not_staff"  # R17: only staff decide cases
    NOT_ARBITER = "not_arbiter"  # R19: only the platform arbiter rules
    ROOT_CAUSE_REQUIRED = "root_cause_required"  # R7
    WRONG_CURRENCY = "wrong_currency"  # money is in the order's currency
    EMPTY_REFUND = "empty_refund"  # a refund of nothing (R19, R21)
    DEADLINE_NOT_RUNNING = "deadline_not_running"  # an extension of no running deadline
    ABOVE_AGENT_LIMIT = "above_agent_limit"  # R17
    ABOVE_REFUND_LIMIT = "above_refund_limit"  # R21
    # R26: a scan that changes nothing, and why.
    DOCK_SCAN_AFTER_INSPECTION_RECEIPT = "dock_scan_after_inspection_receipt"
    ALREADY_RECEIVED_AND_INSPECTED = "already_received_and_inspected"
    ALREADY_RECEIVED = "already_received"
    ALREADY_INSPECTED = "already_inspected"
    NO_PARCEL_EXPECTED = "no_parcel_expected"
    CALL_LIMIT_REACHED = "call_limit_reached"  # R16
    ALREADY_AT_MANAGER = "already_at_manager"  # R18: the ladder's top
    NOTHING_LEFT_TO_REFUND = "nothing_left_to_refund"  # R21
    # R19: while the arbiter decides, only the ruling changes money or status.
    IN_ARBITRATION = "in_arbitration"
    CASE_CLOSED = "case_closed"  # the message came after the case closed
    NOT_NOW = "not_now"  # the case is in a phase that does not take the message
    # Another message came under an id the case already took (message ids are chosen by
    # the sender): the first message keeps the id, this one changes nothing.
    ID_REUSED = "id_reused"
    MONEY_MOVED = "money_moved"  # a withdrawal once money was paid on the case


@dataclass(frozen=True)
class Refusal:
    """A rule's no: which rule, what kind of no, and the words a person reads (R20).
    `rule` is None where no rule of domain.md refuses, only the kind (a reused id)."""

    rule: Rule | None
    kind: RefusalKind
    text: str


class OutsideAnswer(StrEnum):
    """How an outside system said no (docs/outside/): a refusal its contract defines, or
    an answer it does not define, kept for a person."""

    REFUSED = "refused"
    UNKNOWN = "unknown"
