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
from pydantic import BaseModel
from temporalio import activity

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


class CustomerMessage(BaseModel):
    """`due_at` is the earliest moment delivery may happen (R16: never at night); the
    delivery service behind `Notifier` holds a message until then."""

    idempotency_key: str
    case_id: str
    customer_id: str
    template: Template
    params: dict[str, str]
    due_at: datetime


class Notifier(Protocol):
    async def deliver(self, message: CustomerMessage) -> None: ...


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
        await self._notifier.deliver(message)
        await self._pool.execute(
            "UPDATE notifications SET sent_at = now() WHERE idempotency_key = $1",
            message.idempotency_key,
        )
