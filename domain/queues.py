"""Case lists and work queues as typed filters over the read model: what an operator's
queue holds, named once, and the filter an integrator sends, with no I/O here (the SQL
lives in infra/case_queues.py). Time is passed in, as everywhere in the domain."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
)

from domain.case import ActorId, BusinessKey, CaseKind, Channel, Reason, Role, Strict, UtcDatetime
from domain.state import CaseStatus, EscalationLevel

# Search text: an id someone reads off a screen or a label, never a sentence.
SearchText = Annotated[str, Field(min_length=1, max_length=128)]
CarrierName = Annotated[str, Field(min_length=1, max_length=64)]
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000  # as GET /cases allowed before queues


class Queue(StrEnum):
    """An operator's work queues. Each is a filter over the open cases (`queue_filter`);
    a case may sit in several (a late case under review is in both)."""

    NEEDS_DECISION = "needs_decision"
    LATE = "late"
    ESCALATED = "escalated"
    ASSIGNED_TO_ME = "assigned_to_me"
    UNASSIGNED = "unassigned"
    WAITING_ON_CUSTOMER = "waiting_on_customer"


# What a person decides next: an agent's review (R10), the remedy choice (R8), the
# arbiter's ruling (R19), a payment the provider declined (R21: retried or settled).
NEEDS_DECISION = frozenset(
    {
        CaseStatus.UNDER_REVIEW,
        CaseStatus.AWAITING_REMEDY_CHOICE,
        CaseStatus.IN_ARBITRATION,
        CaseStatus.PAYMENT_DECLINED,
    }
)
# The statuses in which the case waits on the customer to act (R6, R12, R8, R22).
CUSTOMER_SIDE = frozenset(
    {
        CaseStatus.AWAITING_EVIDENCE,
        CaseStatus.AWAITING_SHIP_BACK,
        CaseStatus.AWAITING_REMEDY_CHOICE,
        CaseStatus.AWAITING_REFUND_CONSENT,
    }
)
# The ladder level (R18) a staff role works at: the "escalated" queue of a supervisor
# holds the cases escalated to supervisors; anyone else's, every escalated case.
LEVEL_OF_ROLE = {Role.SUPERVISOR: EscalationLevel.SUPERVISOR, Role.MANAGER: EscalationLevel.MANAGER}
ESCALATED_LEVELS = frozenset(EscalationLevel) - {EscalationLevel.NONE}


class CaseSort(StrEnum):
    NEXT_DEADLINE = "next_deadline"  # soonest first; cases with no deadline last
    NEWEST = "newest"  # most recently opened first (GET /cases' order before queues)


class CaseFilter(Strict):
    """Every field narrows (AND); a set field matches any of its values; an empty set or
    None does not narrow. `late_at` is "late at that moment": open, and its next deadline
    passed or an SLA clock breached (R10, R13, R14, R18)."""

    statuses: frozenset[CaseStatus] = frozenset()
    open_only: StrictBool = False
    kinds: frozenset[CaseKind] = frozenset()
    reasons: frozenset[Reason] = frozenset()
    sku: BusinessKey | None = None
    carrier: CarrierName | None = None
    channels: frozenset[Channel] = frozenset()
    assignee: ActorId | None = None
    unassigned: StrictBool = False
    escalation_levels: frozenset[EscalationLevel] = frozenset()
    deadline_before: UtcDatetime | None = None
    deadline_after: UtcDatetime | None = None
    late_at: UtcDatetime | None = None
    disputed: StrictBool | None = None
    # A case id, order id, SKU or tracking number, matched whole (a tracking number by
    # its keyed hash: docs/privacy.md).
    search: SearchText | None = None

    @field_validator("search")
    @classmethod
    def _trimmed(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class Viewer(BaseModel):
    """Who reads the queues: "assigned to me" and "escalated" depend on them."""

    actor: str
    role: Role


def queue_filter(queue: Queue, viewer: Viewer, now: datetime) -> CaseFilter:
    match queue:
        case Queue.NEEDS_DECISION:
            return CaseFilter(open_only=True, statuses=NEEDS_DECISION)
        case Queue.LATE:
            return CaseFilter(open_only=True, late_at=now)
        case Queue.ESCALATED:
            level = LEVEL_OF_ROLE.get(viewer.role)
            levels = frozenset({level}) if level else ESCALATED_LEVELS
            return CaseFilter(open_only=True, escalation_levels=levels)
        case Queue.ASSIGNED_TO_ME:
            return CaseFilter(open_only=True, assignee=viewer.actor)
        case Queue.UNASSIGNED:
            return CaseFilter(open_only=True, unassigned=True)
        case Queue.WAITING_ON_CUSTOMER:
            return CaseFilter(open_only=True, statuses=CUSTOMER_SIDE)


def scope_of(viewer: Viewer) -> CaseFilter:
    """What a role may list at all: the arbiter only disputed cases (R19), as for reading
    one (docs/privacy.md); staff every case."""
    return CaseFilter(disputed=True) if viewer.role is Role.ARBITER else CaseFilter()


class InvalidCursorError(ValueError):
    pass


class Cursor(Strict):
    """Where a page ended: the last row's sort key and case id (keyset paging, so a row
    inserted meanwhile neither repeats nor hides another). Opaque to callers; Strict, so
    a forged one is refused here, not by the database."""

    sort: CaseSort
    at: AwareDatetime | None  # the last row's next deadline or opening time
    case_id: Annotated[str, Field(max_length=220)]

    def encode(self) -> str:
        return base64.urlsafe_b64encode(self.model_dump_json().encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, sort: CaseSort) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            cursor = cls.model_validate(json.loads(raw))
        except (binascii.Error, UnicodeDecodeError, ValueError, ValidationError) as error:
            raise InvalidCursorError("not a cursor this API gave out") from error
        if cursor.sort is not sort:
            raise InvalidCursorError(f"made for sort={cursor.sort.value}, not {sort.value}")
        return cursor


class CaseRow(BaseModel):
    """A line of a case list or queue: the read model's columns, no personal data."""

    case_id: str
    kind: str
    reason: str
    status: str
    channel: str
    order_id: str
    sku: str
    carrier: str | None
    waiting_for: str
    next_deadline: datetime | None
    assigned_agent: str | None
    escalation_level: str
    sla_breached_at: datetime | None
    disputed: bool
    opened_at: datetime
    closed_at: datetime | None


class CasePage(BaseModel):
    rows: list[CaseRow]
    # None on the last page.
    next_cursor: str | None
    # How many cases match in all, when asked for.
    total: int | None = None


class QueueCounts(BaseModel):
    """How many open cases each queue holds for one viewer, as of `at`."""

    at: datetime
    counts: dict[Queue, int]
