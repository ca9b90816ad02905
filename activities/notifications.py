"""Messages to customers. Delivery (e-mail, SMS, app push) sits behind `Notifier`;
the outbox row is written first, so a retried activity never sends a message twice
once its delivery was recorded."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

import asyncpg
from pydantic import BaseModel, model_validator
from temporalio import activity

from activities.outside import NoType, answered_no_as
from domain.rules import Rule

log = logging.getLogger(__name__)


class Template(StrEnum):
    CASE_ACKNOWLEDGED = "case_acknowledged"
    CASE_REFUSED = "case_refused"
    SHIP_BACK_INSTRUCTIONS = "ship_back_instructions"
    SHIP_BACK_REMINDER = "ship_back_reminder"
    CASE_ABANDONED = "case_abandoned"
    INSPECTION_FAILED = "inspection_failed"
    REFUND_ISSUED = "refund_issued"
    EVIDENCE_REQUESTED = "evidence_requested"
    CASE_APPROVED = "case_approved"
    CASE_REJECTED = "case_rejected"
    PROGRESS_UPDATE = "progress_update"
    AGENT_CALL = "agent_call"
    COMPENSATION_GRANTED = "compensation_granted"
    REMEDY_OFFERED = "remedy_offered"
    REFUND_CONSENT_REQUESTED = "refund_consent_requested"
    EXPECTED_DELIVERY = "expected_delivery"
    APOLOGY_COUPON = "apology_coupon"
    SATISFACTION_SURVEY = "satisfaction_survey"
    DISPUTE_RULED = "dispute_ruled"
    # R24: to the quality team, not a customer.
    BATCH_FLAGGED = "batch_flagged"


@dataclass(frozen=True)
class TemplateDoc:
    """What a message tells, under which rule, and the parameters it is rendered with."""

    meaning: str
    rules: tuple[Rule, ...]
    params: tuple[str, ...] = ()


TEMPLATES: dict[Template, TemplateDoc] = {
    Template.CASE_ACKNOWLEDGED: TemplateDoc("the request is received", (Rule.R10,)),
    Template.CASE_REFUSED: TemplateDoc(
        "the request is refused, with why", (Rule.R1, Rule.R20), ("reason",)
    ),
    Template.SHIP_BACK_INSTRUCTIONS: TemplateDoc(
        "how and by when to send the item back", (Rule.R12,), ("deadline",)
    ),
    Template.SHIP_BACK_REMINDER: TemplateDoc(
        "the item is not sent back yet", (Rule.R12,), ("deadline", "reminder")
    ),
    Template.CASE_ABANDONED: TemplateDoc(
        "the case closed: no photos or no parcel in time", (Rule.R6, Rule.R12), ("reason",)
    ),
    Template.INSPECTION_FAILED: TemplateDoc(
        "the inspection failed, with why", (Rule.R20,), ("reason",)
    ),
    Template.REFUND_ISSUED: TemplateDoc("the case's refund is paid", (Rule.R21,), ("amount",)),
    Template.EVIDENCE_REQUESTED: TemplateDoc(
        "photos of the problem are needed by the deadline", (Rule.R6,), ("deadline",)
    ),
    Template.CASE_APPROVED: TemplateDoc("the request is approved", (Rule.R10, Rule.R11)),
    Template.CASE_REJECTED: TemplateDoc(
        "the request is rejected, with why", (Rule.R20,), ("reason",)
    ),
    Template.PROGRESS_UPDATE: TemplateDoc(
        "the daily update: what the case waits for", (Rule.R14,), ("waiting_for",)
    ),
    Template.AGENT_CALL: TemplateDoc(
        "an agent will call, in call hours", (Rule.R16,), ("purpose",)
    ),
    Template.COMPENSATION_GRANTED: TemplateDoc(
        "money paid without closing the case (compensation, a price difference, postage)",
        (Rule.R17, Rule.R22, Rule.R6),
        ("amount",),
    ),
    Template.REMEDY_OFFERED: TemplateDoc(
        "choose a replacement, a partial or a full refund by the deadline",
        (Rule.R8,),
        ("deadline",),
    ),
    Template.REFUND_CONSENT_REQUESTED: TemplateDoc(
        "out of stock: agree to a refund by the deadline, or wait", (Rule.R22,), ("deadline",)
    ),
    Template.EXPECTED_DELIVERY: TemplateDoc(
        "the parcel is on its way, expected then", (Rule.R4,), ("expected",)
    ),
    Template.APOLOGY_COUPON: TemplateDoc("a coupon for the wrong item", (Rule.R7,), ("amount",)),
    Template.SATISFACTION_SURVEY: TemplateDoc(
        "how was it: the four-question survey", (Rule.R25,), ("outcome",)
    ),
    Template.DISPUTE_RULED: TemplateDoc("the arbiter's ruling", (Rule.R19,), ("reason",)),
    Template.BATCH_FLAGGED: TemplateDoc(
        "to the quality team: a batch's return rate jumped",
        (Rule.R24,),
        ("sku", "batch", "returns", "units", "rate", "baseline_rate", "p_value"),
    ),
}


class CustomerMessage(BaseModel):
    """`due_at` is the earliest moment delivery may happen (R16: never at night); the
    delivery service behind `Notifier` holds a message until then."""

    idempotency_key: str
    case_id: str
    customer_id: str
    template: Template
    params: dict[str, str]
    due_at: datetime

    @model_validator(mode="after")
    def _documented_params(self) -> CustomerMessage:
        """A message carries the parameters its template documents (docs/ledger.md)."""
        documented = TEMPLATES[self.template].params
        if sorted(self.params) != sorted(documented):
            raise ValueError(f"{self.template} takes {list(documented)}, not {sorted(self.params)}")
        return self


class Notifier(Protocol):
    async def deliver(self, message: CustomerMessage) -> None:
        """Deliver once per key; a message the service will not deliver (no reachable
        address, the customer opted out) raises activities.outside.OutsideRefusal."""
        ...


class LoggingNotifier:
    """Local stand-in for the messaging service: logs that a message went out. Only the
    template and its key: logs are kept outside the retention and erasure rules
    (docs/privacy.md), so the customer's id and the message's words stay out of them."""

    async def deliver(self, message: CustomerMessage) -> None:
        log.info("message %s sent (%s)", message.template, message.idempotency_key)


@dataclass
class RecordingNotifier:
    """For tests: remembers what was delivered."""

    delivered: list[CustomerMessage] = field(default_factory=list)

    async def deliver(self, message: CustomerMessage) -> None:
        self.delivered.append(message)


class NotificationActivities:
    def __init__(self, pool: asyncpg.Pool, notifier: Notifier) -> None:
        self._pool = pool
        self._notifier = notifier

    @activity.defn(name="notify_customer")
    async def notify_customer(self, message: CustomerMessage) -> None:
        await self._pool.execute(
            """INSERT INTO notifications
                   (idempotency_key, case_id, customer_id, template, params, due_at)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (idempotency_key) DO NOTHING""",
            message.idempotency_key,
            message.case_id,
            message.customer_id,
            message.template.value,
            message.params,
            message.due_at,
        )
        already_sent = await self._pool.fetchval(
            "SELECT sent_at IS NOT NULL FROM notifications WHERE idempotency_key = $1",
            message.idempotency_key,
        )
        if already_sent:
            return
        # Refused: the row stays unsent, and the case records why (CaseBook.notify).
        with answered_no_as(NoType.MESSAGE_REFUSED):
            await self._notifier.deliver(message)
        await self._pool.execute(
            "UPDATE notifications SET sent_at = now() WHERE idempotency_key = $1",
            message.idempotency_key,
        )
