"""Refunds through the payment provider, exactly once (R21).

The provider sits behind `PaymentProvider`; the sandbox implementations stand in for a
real one (which, like them, must accept an idempotency key and find a payment by it)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import asyncpg
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.outside import NoType, OutsideRefusal, answered_no_as
from domain.money import Money
from domain.workflow_ids import parse_workflow_id

REFUND_LIMIT_EXCEEDED = "RefundLimitExceeded"
CASE_NOT_IN_LEDGER = "CaseNotInLedger"
NO_SUCH_PAYMENT = "NoSuchPayment"
# The reference a payment settled outside the provider carries: the person's, marked.
SETTLED_ELSEWHERE_PREFIX = "elsewhere:"
# Payments heartbeat while the provider answers, so a killed worker's payment is retried
# (and found, not repeated) within this time instead of the whole call timeout.
PAYMENT_HEARTBEAT_TIMEOUT = timedelta(seconds=10)


class PaymentProvider(Protocol):
    async def refund(self, *, idempotency_key: str, case_id: str, amount: Money) -> str:
        """Refund `amount`; return the provider's reference. The same key refunds once."""
        ...

    async def charge(self, *, idempotency_key: str, case_id: str, amount: Money) -> str:
        """Charge the customer's payment method; the same key charges once."""
        ...

    async def find(self, *, idempotency_key: str) -> str | None:
        """The reference of a payment already made under this key, if any."""
        ...


# A provider declines by raising activities.outside.OutsideRefusal; a declined key moved
# no money, so the same key may be tried again (docs/outside/payments.openapi.yaml).


@dataclass
class SandboxPaymentProvider:
    """Behaves like a real provider's idempotency keys, and records every call for tests.
    `answer_delay` models a slow provider: the payment is booked at once, the answer
    arrives later (the window in which a crashed caller does not know it was paid)."""

    answer_delay: timedelta = timedelta(0)
    # Orders whose refunds and charges the sandbox declines (the sandbox file, or a test).
    declined_orders: set[str] = field(default_factory=set)
    calls: list[tuple[str, Money]] = field(default_factory=list)
    refunds: dict[str, Money] = field(default_factory=dict)
    charges: dict[str, Money] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def refund(self, *, idempotency_key: str, case_id: str, amount: Money) -> str:
        self._decline_if_listed(case_id)
        return await self._pay("refund", idempotency_key, amount)

    async def charge(self, *, idempotency_key: str, case_id: str, amount: Money) -> str:
        self._decline_if_listed(case_id)
        return await self._pay("charge", idempotency_key, amount)

    def _decline_if_listed(self, case_id: str) -> None:
        # What follows the kind is `order-line-request` (R2); order ids may hold dashes.
        parsed = parse_workflow_id(case_id)
        after_kind = parsed.rest if parsed is not None else ""
        if any(after_kind.startswith(f"{order}-") for order in self.declined_orders):
            raise OutsideRefusal("the card was declined (sandbox: a declined order)")

    async def find(self, *, idempotency_key: str) -> str | None:
        for kind, book in (("refund", self.refunds), ("charge", self.charges)):
            if idempotency_key in book:
                return _reference(kind, idempotency_key)
        return None

    async def _pay(self, kind: str, idempotency_key: str, amount: Money) -> str:
        async with self._lock:
            self.calls.append((idempotency_key, amount))
            self._book(kind, idempotency_key, amount)
        await asyncio.sleep(self.answer_delay.total_seconds())
        return _reference(kind, idempotency_key)

    def _book(self, kind: str, idempotency_key: str, amount: Money) -> None:
        (self.refunds if kind == "refund" else self.charges).setdefault(idempotency_key, amount)


@dataclass
class JournaledSandboxPaymentProvider(SandboxPaymentProvider):
    """The sandbox with its book in a file, one JSON line per call, shared by every worker
    process on the machine: like a real provider, it remembers a payment after the worker
    that asked for it died (`make run` and the fault tests use it)."""

    journal: Path = Path("sandbox-payments.jsonl")

    def journal_calls(self, idempotency_key: str) -> int:
        return sum(1 for line in self._lines() if line["key"] == idempotency_key)

    async def find(self, *, idempotency_key: str) -> str | None:
        for line in self._lines():
            if line["key"] == idempotency_key:
                return _reference(line["kind"], idempotency_key)
        return None

    def _book(self, kind: str, idempotency_key: str, amount: Money) -> None:
        super()._book(kind, idempotency_key, amount)
        entry = {"kind": kind, "key": idempotency_key, "pid": os.getpid()}
        with self.journal.open("a") as out:
            fcntl.flock(out, fcntl.LOCK_EX)  # whole lines, even with several writers
            out.write(json.dumps(entry | amount.model_dump(mode="json")) + "\n")

    def _lines(self) -> list[dict[str, str]]:
        if not self.journal.exists():
            return []
        with self.journal.open() as journal:
            fcntl.flock(journal, fcntl.LOCK_SH)
            return [json.loads(line) for line in journal if line.strip()]


def _reference(kind: str, idempotency_key: str) -> str:
    return f"sandbox-{kind}-{idempotency_key}"


class RefundOrder(BaseModel):
    case_id: str
    idempotency_key: str
    amount: Money
    limit: Money


class ChargeOrder(BaseModel):
    case_id: str
    idempotency_key: str
    amount: Money


class SettledElsewhere(BaseModel):
    """A person's word that a declined payment was settled another way (R21)."""

    idempotency_key: str
    reference: str


class PaymentConfirmation(BaseModel):
    provider_reference: str
    amount: Money


@dataclass(frozen=True)
class Reservation:
    """The money row before this attempt pays: settled already (its reference), left
    pending by an attempt that may have reached the provider, or new."""

    settled_reference: str | None = None
    interrupted: bool = False


class PaymentActivities:
    def __init__(self, pool: asyncpg.Pool, provider: PaymentProvider) -> None:
        self._pool = pool
        self._provider = provider

    @activity.defn(name="issue_refund")
    async def issue_refund(self, order: RefundOrder) -> PaymentConfirmation:
        """Reserve the money row, call the provider with the same key, then settle the row.

        A crash anywhere leaves either no row (nothing happened), a pending row (the retry
        asks the provider whether the key was paid, and pays only if not), or a settled
        row (the retry returns it without calling the provider)."""
        return await self._pay_once(
            order.idempotency_key,
            order.amount,
            await self._reserve(order),
            lambda: self._provider.refund(
                idempotency_key=order.idempotency_key, case_id=order.case_id, amount=order.amount
            ),
        )

    @activity.defn(name="charge_customer")
    async def charge(self, order: ChargeOrder) -> PaymentConfirmation:
        """R22: charge a price difference, exactly once (same pattern as refunds)."""
        async with self._pool.acquire() as conn:
            order_id, line_id = await _order_line(conn, order.case_id)
            row = await conn.fetchrow(
                """WITH reserved AS (
                       INSERT INTO money_movements (idempotency_key, case_id, order_id,
                                                    line_id, kind, amount_minor, currency,
                                                    status)
                       VALUES ($1, $2, $3, $4, 'charge', $5, $6, 'pending')
                       ON CONFLICT (idempotency_key) DO NOTHING
                       RETURNING idempotency_key)
                   SELECT status, provider_reference FROM money_movements
                   WHERE idempotency_key = $1 AND NOT EXISTS (SELECT 1 FROM reserved)""",
                order.idempotency_key,
                order.case_id,
                order_id,
                line_id,
                order.amount.amount_minor,
                order.amount.currency,
            )
        return await self._pay_once(
            order.idempotency_key,
            order.amount,
            _reservation_of(row),
            lambda: self._provider.charge(
                idempotency_key=order.idempotency_key, case_id=order.case_id, amount=order.amount
            ),
        )

    @activity.defn(name="settle_payment_elsewhere")
    async def settle_elsewhere(self, settled: SettledElsewhere) -> PaymentConfirmation:
        """Settle a declined payment's money row with the person's reference, unless the
        provider paid the key after all (an unknown answer may hide a payment): then the
        provider's reference stands, and the money moved once (R21)."""
        row = await self._pool.fetchrow(
            "SELECT status, provider_reference, amount_minor, currency "
            "FROM money_movements WHERE idempotency_key = $1",
            settled.idempotency_key,
        )
        if row is None:
            raise ApplicationError(
                f"R21: no payment under key {settled.idempotency_key} to settle",
                type=NO_SUCH_PAYMENT,
                non_retryable=True,
            )
        amount = Money(amount_minor=row["amount_minor"], currency=row["currency"])
        reference = row["provider_reference"]
        if row["status"] != "succeeded":
            with answered_no_as(NoType.PAYMENT_DECLINED):
                found = await self._provider.find(idempotency_key=settled.idempotency_key)
            reference = found or f"{SETTLED_ELSEWHERE_PREFIX}{settled.reference}"
            await self._settle(settled.idempotency_key, reference)
        return PaymentConfirmation(provider_reference=reference, amount=amount)

    async def _pay_once(
        self,
        idempotency_key: str,
        amount: Money,
        reservation: Reservation,
        pay: Callable[[], Awaitable[str]],
    ) -> PaymentConfirmation:
        """Return a settled movement as it is; else pay unless the provider already has
        this key (an earlier attempt died before it learnt the answer), and settle the row."""
        reference = reservation.settled_reference
        if reference is None:
            async with _heartbeating():
                reference = await self._pay_unless_paid(idempotency_key, reservation, pay)
            await self._settle(idempotency_key, reference)
        return PaymentConfirmation(provider_reference=reference, amount=amount)

    async def _pay_unless_paid(
        self, idempotency_key: str, reservation: Reservation, pay: Callable[[], Awaitable[str]]
    ) -> str:
        """A declined payment leaves its row pending: no money moved, the key may be
        tried again (a person decides, R21)."""
        with answered_no_as(NoType.PAYMENT_DECLINED):
            reference = None
            if reservation.interrupted:
                reference = await self._provider.find(idempotency_key=idempotency_key)
            return reference or await pay()

    async def _settle(self, idempotency_key: str, reference: str) -> None:
        await self._pool.execute(
            """UPDATE money_movements SET status = 'succeeded', provider_reference = $2,
                      settled_at = now()
               WHERE idempotency_key = $1""",
            idempotency_key,
            reference,
        )

    async def _reserve(self, order: RefundOrder) -> Reservation:
        async with self._pool.acquire() as conn, conn.transaction():
            order_id, line_id = await _order_line(conn, order.case_id)
            # Serialises refunds of one case, so two keys can never both pass the limit check.
            # The limit is the case's (R21): a line may have several cases, one per unit sent
            # back, each request carrying what was paid for its units.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", order.case_id)
            existing = await conn.fetchrow(
                "SELECT status, provider_reference, amount_minor, currency "
                "FROM money_movements WHERE idempotency_key = $1",
                order.idempotency_key,
            )
            if existing is not None:
                if (existing["amount_minor"], existing["currency"]) != (
                    order.amount.amount_minor,
                    order.amount.currency,
                ):
                    raise ApplicationError(
                        f"R21: refund key {order.idempotency_key} was already used for "
                        f"another amount",
                        type=REFUND_LIMIT_EXCEEDED,
                        non_retryable=True,
                    )
                return _reservation_of(existing)
            already = await conn.fetchval(
                "SELECT coalesce(sum(amount_minor), 0) FROM money_movements "
                "WHERE case_id = $1 AND kind = 'refund'",
                order.case_id,
            )
            if already + order.amount.amount_minor > order.limit.amount_minor:
                raise ApplicationError(
                    f"R21: refunding {order.amount} would bring case {order.case_id} to "
                    f"{already + order.amount.amount_minor} minor units, above its limit "
                    f"{order.limit}",
                    type=REFUND_LIMIT_EXCEEDED,
                    non_retryable=True,
                )
            await conn.execute(
                """INSERT INTO money_movements (idempotency_key, case_id, order_id, line_id,
                                                kind, amount_minor, currency, status)
                   VALUES ($1, $2, $3, $4, 'refund', $5, $6, 'pending')""",
                order.idempotency_key,
                order.case_id,
                order_id,
                line_id,
                order.amount.amount_minor,
                order.amount.currency,
            )
            return Reservation()


async def _order_line(
    conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], case_id: str
) -> tuple[str, str]:
    """The order line a case's money moves for (kept on every movement for reporting), from
    the case's ledger row: its first step, case_opened, is written before any money moves;
    the case id alone cannot say it, as order and line ids may contain its separator."""
    row = await conn.fetchrow("SELECT order_id, line_id FROM cases WHERE case_id = $1", case_id)
    if row is None:
        # Retried, not failed: money never moves without knowing its order line.
        raise ApplicationError(
            f"R21: case {case_id} is not in the ledger, so its order line is unknown",
            type=CASE_NOT_IN_LEDGER,
        )
    return row["order_id"], row["line_id"]


def _reservation_of(row: asyncpg.Record | None) -> Reservation:
    """A row that existed before this attempt: settled, or interrupted mid-payment."""
    if row is None:
        return Reservation()
    if row["status"] == "succeeded":
        return Reservation(settled_reference=row["provider_reference"])
    return Reservation(interrupted=True)


@asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    """Heartbeat while a slow outside call runs, so a dead worker is noticed quickly."""

    async def beat() -> None:
        while activity.in_activity():  # also called directly, outside a worker, in tests
            activity.heartbeat()
            await asyncio.sleep(PAYMENT_HEARTBEAT_TIMEOUT.total_seconds() / 3)

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
