"""The carrier's claims desk (R15) and the claim's own ledger.

Carriers sit behind `CarrierGateway`; `SandboxCarrier` stands in for their APIs, like a
real one answering the same claim id with the same reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import asyncpg
from pydantic import BaseModel
from temporalio import activity

from activities.outside import NoType, OutsideRefusal, answered_no_as
from domain.claim import ClaimState
from domain.ledger import LedgerAction
from domain.money import Money
from domain.rules import Rule


class CarrierGateway(Protocol):
    async def file_claim(self, *, claim_id: str, carrier: str, amount: Money) -> str:
        """File (idempotently on `claim_id`); return the carrier's claim reference. A
        claim the desk rejects raises activities.outside.OutsideRefusal (R15)."""
        ...

    async def chase(self, *, carrier_reference: str, idempotency_key: str) -> None:
        """Chase once per key; a desk that rejects the claim now raises OutsideRefusal."""
        ...

    async def intercept(self, *, order_id: str, carrier: str) -> str:
        """R4: ask the carrier to return the parcel to sender; returns its reference.
        A parcel past stopping raises OutsideRefusal."""
        ...


@dataclass
class SandboxCarrier:
    filed: dict[str, Money] = field(default_factory=dict)
    chased: list[str] = field(default_factory=list)
    intercepted: list[str] = field(default_factory=list)
    # Carriers whose desk rejects every claim, and that stop no parcel (the sandbox file).
    rejecting_claims: set[str] = field(default_factory=set)
    refusing_intercepts: set[str] = field(default_factory=set)

    async def intercept(self, *, order_id: str, carrier: str) -> str:
        if carrier in self.refusing_intercepts:
            raise OutsideRefusal(f"{carrier} cannot stop the parcel any more (sandbox)")
        if order_id not in self.intercepted:
            self.intercepted.append(order_id)
        return f"{carrier}-intercept-{order_id}"

    async def file_claim(self, *, claim_id: str, carrier: str, amount: Money) -> str:
        if carrier in self.rejecting_claims:
            raise OutsideRefusal(f"{carrier} rejects the claim: not liable (sandbox)")
        self.filed.setdefault(claim_id, amount)
        return f"{carrier}-claim-{claim_id}"

    async def chase(self, *, carrier_reference: str, idempotency_key: str) -> None:
        self.chased.append(carrier_reference)


class FileClaim(BaseModel):
    claim_id: str
    carrier: str
    amount: Money


class ChaseClaim(BaseModel):
    carrier_reference: str


class Intercept(BaseModel):
    order_id: str
    carrier: str


class ClaimLedgerEntry(BaseModel):
    seq: int
    occurred_at: datetime
    action: LedgerAction
    rule_id: Rule | None
    reason: str | None
    # The carrier's machine client whose answer this step records (R23); None for the
    # workflow's own steps.
    answered_by: str | None = None
    claim: ClaimState


class CarrierActivities:
    def __init__(self, pool: asyncpg.Pool, carrier: CarrierGateway) -> None:
        self._pool = pool
        self._carrier = carrier

    @activity.defn(name="file_carrier_claim")
    async def file_claim(self, order: FileClaim) -> str:
        with answered_no_as(NoType.CLAIM_REJECTED):
            return await self._carrier.file_claim(
                claim_id=order.claim_id, carrier=order.carrier, amount=order.amount
            )

    @activity.defn(name="chase_carrier_claim")
    async def chase(self, order: ChaseClaim) -> None:
        # One chase per activity: its retries keep the key, the next chase has its own.
        info = activity.info()
        with answered_no_as(NoType.CLAIM_REJECTED):
            await self._carrier.chase(
                carrier_reference=order.carrier_reference,
                idempotency_key=f"{info.workflow_id}:{info.workflow_run_id}:{info.activity_id}",
            )

    @activity.defn(name="intercept_parcel")
    async def intercept(self, order: Intercept) -> str:
        with answered_no_as(NoType.INTERCEPT_REFUSED):
            return await self._carrier.intercept(order_id=order.order_id, carrier=order.carrier)

    @activity.defn(name="record_claim_step")
    async def record_step(self, entry: ClaimLedgerEntry) -> None:
        """Append the claim event and move the claim row forward (idempotent on seq)."""
        claim = entry.claim
        request = claim.request
        async with self._pool.acquire() as conn, conn.transaction():
            # The claim row first: the ledger's trigger dates the R15 filing clock from it.
            await conn.execute(
                """INSERT INTO carrier_claims (claim_id, case_id, carrier, status, currency,
                       claimed_minor, recovered_minor, file_deadline, filed_at,
                       carrier_reference, chases, escalated_at, closed_at, last_seq, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                   ON CONFLICT (claim_id) DO UPDATE SET
                       status = EXCLUDED.status, recovered_minor = EXCLUDED.recovered_minor,
                       filed_at = EXCLUDED.filed_at,
                       carrier_reference = EXCLUDED.carrier_reference,
                       chases = EXCLUDED.chases, escalated_at = EXCLUDED.escalated_at,
                       closed_at = EXCLUDED.closed_at, last_seq = EXCLUDED.last_seq,
                       updated_at = EXCLUDED.updated_at
                   WHERE carrier_claims.last_seq < EXCLUDED.last_seq""",
                request.claim_id,
                request.case_id,
                request.carrier,
                claim.status.value,
                request.amount.currency,
                request.amount.amount_minor,
                claim.recovered.amount_minor,
                claim.file_deadline,
                claim.filed_at,
                claim.carrier_reference,
                len(claim.chases),
                claim.escalated_at,
                claim.closed_at,
                entry.seq,
                entry.occurred_at,
            )
            await conn.execute(
                """INSERT INTO claim_events (claim_id, seq, occurred_at, action, rule_id,
                                             reason, status_after, answered_by)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                   ON CONFLICT (claim_id, seq) DO NOTHING""",
                request.claim_id,
                entry.seq,
                entry.occurred_at,
                entry.action,
                entry.rule_id,
                entry.reason,
                claim.status.value,
                entry.answered_by,
            )
