"""Refunds through the payment provider, exactly once (R21).

The provider sits behind `PaymentProvider`; the sandbox implementation stands in for a
real one (which, like it, must accept an idempotency key)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.money import Money

REFUND_LIMIT_EXCEEDED = "RefundLimitExceeded"


class PaymentProvider(Protocol):
    async def refund(self, *, idempotency_key: str, case_id: str, amount: Money) -> str:
        """Refund `amount`; return the provider's reference. The same key refunds once."""
        ...

    async def charge(self, *, idempotency_key: str, case_id: str, amount: Money) -> str:
        """Charge the customer's payment method; the same key charges once."""
        ...


@dataclass
class SandboxPaymentProvider:
    """Behaves like a real provider's idempotency keys, and records every call for tests."""

    calls: list[tuple[str, Money]] = field(default_factory=list)
    refunds: dict[str, Money] = field(default_factory=dict)
    charges: dict[str, Money] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def refund(self, *, idempotency_key: str, case_id: str, amount: Money) -> str:
        async with self._lock:
            self.calls.append((idempotency_key, amount))
            self.refunds.setdefault(idempotency_key, amount)
            return f"sandbox-refund-{idempotency_key}"

    async def charge(self, *, idempotency_key: str, case_id: str, amount: Money) -> str:
        async with self._lock:
            self.calls.append((idempotency_key, amount))
            self.charges.setdefault(idempotency_key, amount)
            return f"sandbox-charge-{idempotency_key}"


class RefundOrder(BaseModel):
    case_id: str
    idempotency_key: str
    amount: Money
    limit: Money


class ChargeOrder(BaseModel):
    case_id: str
    idempotency_key: str
    amount: Money


class PaymentConfirmation(BaseModel):
    provider_reference: str
    amount: Money


class PaymentActivities:
    def __init__(self, pool: asyncpg.Pool, provider: PaymentProvider) -> None:
        self._pool = pool
        self._provider = provider

    @activity.defn(name="issue_refund")
    async def issue_refund(self, order: RefundOrder) -> PaymentConfirmation:
        """Reserve the money row, call the provider with the same key, then settle the row.

        A crash anywhere leaves either no row (nothing happened), a pending row (the retry
        calls the provider again with the same key, which refunds once), or a settled row
        (the retry returns it without calling the provider)."""
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
        settled = await self._pool.fetchval(
            """INSERT INTO money_movements
                   (idempotency_key, case_id, kind, amount_minor, currency, status)
               VALUES ($1, $2, 'charge', $3, $4, 'pending')
               ON CONFLICT (idempotency_key) DO UPDATE SET status = money_movements.status
               RETURNING CASE WHEN status = 'succeeded' THEN provider_reference END""",
            order.idempotency_key,
            order.case_id,
            order.amount.amount_minor,
            order.amount.currency,
        )
        return await self._pay_once(
            order.idempotency_key,
            order.amount,
            settled,
            lambda: self._provider.charge(
                idempotency_key=order.idempotency_key, case_id=order.case_id, amount=order.amount
            ),
        )

    async def _pay_once(
        self,
        idempotency_key: str,
        amount: Money,
        settled: str | None,
        pay: Callable[[], Awaitable[str]],
    ) -> PaymentConfirmation:
        """Return a settled movement as it is; else ask the provider (same key, so at most
        once on its side) and mark the row settled."""
        if settled is None:
            settled = await pay()
            await self._settle(idempotency_key, settled)
        return PaymentConfirmation(provider_reference=settled, amount=amount)

    async def _settle(self, idempotency_key: str, reference: str) -> None:
        await self._pool.execute(
            """UPDATE money_movements SET status = 'succeeded', provider_reference = $2,
                      settled_at = now()
               WHERE idempotency_key = $1""",
            idempotency_key,
            reference,
        )

    async def _reserve(self, order: RefundOrder) -> str | None:
        """Returns the provider reference if this refund was already settled."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Serialises refunds of one case, so two keys can never both pass the limit check.
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
                settled: str | None = existing["provider_reference"]
                return settled if existing["status"] == "succeeded" else None
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
                """INSERT INTO money_movements
                       (idempotency_key, case_id, kind, amount_minor, currency, status)
                   VALUES ($1, $2, 'refund', $3, $4, 'pending')""",
                order.idempotency_key,
                order.case_id,
                order.amount.amount_minor,
                order.amount.currency,
            )
            return None
