"""The activities against real PostgreSQL: retries and repeats never write twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities.ledger import CaseSnapshot, LedgerActivities, LedgerEntry
from activities.payments import (
    CASE_NOT_IN_LEDGER,
    REFUND_LIMIT_EXCEEDED,
    ChargeOrder,
    PaymentActivities,
    RefundOrder,
    SandboxPaymentProvider,
)
from domain.case import OpenCaseRequest
from domain.ledger import LedgerAction
from domain.policy_settings import PolicySettings
from domain.state import CaseState, CaseStatus
from tests.conftest import a_request, eur

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def an_entry(case: CaseState, seq: int, status: CaseStatus) -> LedgerEntry:
    snapshot = CaseSnapshot.of(case.model_copy(update={"status": status}))
    return LedgerEntry(
        seq=seq,
        occurred_at=NOW,
        actor="test",
        role="system",
        action=LedgerAction.ASSIGNED,
        rule_id="R23",
        reason=None,
        details={},
        case=snapshot,
    )


def a_case(request: OpenCaseRequest | None = None) -> CaseState:
    request = request or a_request()
    return CaseState(
        case_id=request.case_id,
        request=request,
        policy=PolicySettings(),
        opened_at=NOW,
        return_deadline=NOW,
    )


async def an_opened_case(pool: asyncpg.Pool, request: OpenCaseRequest | None = None) -> str:
    """A case as its opening step leaves it in the ledger, before any money moves."""
    case = a_case(request)
    await LedgerActivities(pool).record_step(an_entry(case, 1, CaseStatus.OPENED))
    return case.case_id


async def test_recording_a_step_twice_writes_one_event(pool: asyncpg.Pool) -> None:  # R23
    ledger = LedgerActivities(pool)
    case = a_case()
    entry = an_entry(case, 1, CaseStatus.OPENED)
    assert await ledger.record_step(entry) is True
    assert await ledger.record_step(entry) is False
    count = await pool.fetchval("SELECT count(*) FROM case_events WHERE case_id = $1", case.case_id)
    assert count == 1


async def test_read_model_never_moves_back_to_an_older_step(pool: asyncpg.Pool) -> None:  # R23
    ledger = LedgerActivities(pool)
    case = a_case()
    await ledger.record_step(an_entry(case, 1, CaseStatus.OPENED))
    await ledger.record_step(an_entry(case, 2, CaseStatus.AWAITING_SHIP_BACK))
    await ledger.record_step(an_entry(case, 1, CaseStatus.OPENED))  # a late retry
    row = await pool.fetchrow("SELECT status, last_seq FROM cases WHERE case_id = $1", case.case_id)
    assert row is not None
    assert (row["status"], row["last_seq"]) == ("awaiting_ship_back", 2)


async def test_case_events_are_append_only(pool: asyncpg.Pool) -> None:  # R23
    ledger = LedgerActivities(pool)
    case = a_case()
    await ledger.record_step(an_entry(case, 1, CaseStatus.OPENED))
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE case_events SET reason = 'x' WHERE case_id = $1", case.case_id)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM case_events WHERE case_id = $1", case.case_id)


async def test_refund_repeated_with_its_key_pays_once(pool: asyncpg.Pool) -> None:  # R21
    provider = SandboxPaymentProvider()
    payments = PaymentActivities(pool, provider)
    case_id = await an_opened_case(pool)
    order = RefundOrder(
        case_id=case_id, idempotency_key=f"{case_id}:refund:1", amount=eur(500), limit=eur(500)
    )
    first = await payments.issue_refund(order)
    again = await payments.issue_refund(order)
    assert first == again
    assert len(provider.calls) == 1
    rows = await pool.fetch("SELECT status FROM money_movements WHERE case_id = $1", case_id)
    assert [r["status"] for r in rows] == ["succeeded"]


def a_refund(case_id: str, n: int, minor: int, *, limit_minor: int) -> RefundOrder:
    return RefundOrder(
        case_id=case_id,
        idempotency_key=f"{case_id}:refund:{n}",
        amount=eur(minor),
        limit=eur(limit_minor),
    )


async def a_refund_left_pending(pool: asyncpg.Pool) -> RefundOrder:
    """A refund of 5.00 on a new case whose pending money row is written (the reservation)
    and nothing after: what a worker killed at that point leaves behind."""
    order = a_refund(await an_opened_case(pool), 1, 500, limit_minor=500)
    await pool.execute(
        "INSERT INTO money_movements (idempotency_key, case_id, order_id, line_id, kind, "
        "amount_minor, currency, status) SELECT $1, $2, order_id, line_id, 'refund', 500, "
        "'EUR', 'pending' FROM cases WHERE case_id = $2",
        order.idempotency_key,
        order.case_id,
    )
    return order


async def test_refund_left_pending_by_a_crash_is_finished_with_the_same_key(
    pool: asyncpg.Pool,
) -> None:  # R21
    provider = SandboxPaymentProvider()
    # Killed between the reservation and the provider's answer.
    order = await a_refund_left_pending(pool)
    key = order.idempotency_key
    await PaymentActivities(pool, provider).issue_refund(order)
    assert list(provider.refunds) == [key]
    status = await pool.fetchval(
        "SELECT status FROM money_movements WHERE idempotency_key = $1", key
    )
    assert status == "succeeded"


async def test_refund_the_provider_took_before_a_crash_is_settled_without_paying_again(
    pool: asyncpg.Pool,
) -> None:  # R21
    provider = SandboxPaymentProvider()
    # The worker reserved the row and the provider booked the refund; then the worker died.
    order = await a_refund_left_pending(pool)
    key = order.idempotency_key
    reference = await provider.refund(idempotency_key=key, case_id=order.case_id, amount=eur(500))
    confirmation = await PaymentActivities(pool, provider).issue_refund(order)
    assert confirmation.provider_reference == reference
    assert len(provider.calls) == 1
    settled = await pool.fetchrow(
        "SELECT status, provider_reference FROM money_movements WHERE idempotency_key = $1", key
    )
    assert settled is not None
    assert (settled["status"], settled["provider_reference"]) == ("succeeded", reference)


async def test_a_charge_repeated_with_its_key_charges_once(pool: asyncpg.Pool) -> None:  # R22
    provider = SandboxPaymentProvider()
    payments = PaymentActivities(pool, provider)
    case_id = await an_opened_case(pool)
    order = ChargeOrder(case_id=case_id, idempotency_key=f"{case_id}:charge:1", amount=eur(300))
    first = await payments.charge(order)
    again = await payments.charge(order)
    assert first == again
    assert list(provider.charges.values()) == [eur(300)]
    assert len(provider.calls) == 1


async def test_refunds_above_what_was_paid_are_refused(pool: asyncpg.Pool) -> None:  # R21
    provider = SandboxPaymentProvider()
    payments = PaymentActivities(pool, provider)
    case_id = await an_opened_case(pool)
    await payments.issue_refund(
        RefundOrder(
            case_id=case_id, idempotency_key=f"{case_id}:k1", amount=eur(300), limit=eur(500)
        )
    )
    with pytest.raises(ApplicationError) as refused:
        await payments.issue_refund(
            RefundOrder(
                case_id=case_id, idempotency_key=f"{case_id}:k2", amount=eur(201), limit=eur(500)
            )
        )
    assert refused.value.type == REFUND_LIMIT_EXCEEDED
    assert refused.value.non_retryable
    assert "R21" in str(refused.value)
    assert len(provider.calls) == 1


def two_requests_for_one_line() -> tuple[OpenCaseRequest, OpenCaseRequest]:
    """Two cases on one order line: the same line asked about again under another id."""
    first = a_request(request_id="web-1")
    return first, first.model_copy(update={"request_id": "app-1"})


async def test_each_case_of_an_order_line_refunds_within_its_own_limit(
    pool: asyncpg.Pool,
) -> None:  # R21
    """A line may have several cases (one per unit sent back), each request carrying what
    was paid for its units: each case is held to its own limit, and every movement names
    its line for reporting."""
    provider = SandboxPaymentProvider()
    payments = PaymentActivities(pool, provider)
    first, second = [await an_opened_case(pool, r) for r in two_requests_for_one_line()]
    await payments.issue_refund(a_refund(first, 1, 500, limit_minor=500))
    await payments.issue_refund(a_refund(second, 1, 500, limit_minor=500))
    with pytest.raises(ApplicationError) as refused:
        await payments.issue_refund(a_refund(second, 2, 1, limit_minor=500))
    assert refused.value.type == REFUND_LIMIT_EXCEEDED
    assert refused.value.non_retryable
    assert len(provider.calls) == 2
    lines = await pool.fetch(
        "SELECT line_id, sum(amount_minor) AS total FROM money_movements "
        "WHERE case_id = ANY($1::text[]) GROUP BY order_id, line_id",
        [first, second],
    )
    assert [(r["line_id"], r["total"]) for r in lines] == [("1", 1_000)]


async def test_two_refunds_of_one_case_at_once_never_pass_its_limit_together(
    pool: asyncpg.Pool,
) -> None:  # R21
    provider = SandboxPaymentProvider()
    payments = PaymentActivities(pool, provider)
    case = await an_opened_case(pool)
    outcomes = await asyncio.gather(
        *(payments.issue_refund(a_refund(case, n, 5_990, limit_minor=5_990)) for n in (1, 2)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, ApplicationError)]
    assert len(refused) == 1
    assert refused[0].type == REFUND_LIMIT_EXCEEDED
    assert list(provider.refunds.values()) == [eur(5_990)]


async def test_no_money_moves_for_a_case_the_ledger_does_not_know(
    pool: asyncpg.Pool,
) -> None:  # R21
    provider = SandboxPaymentProvider()
    case_id = f"return-{uuid.uuid4().hex[:8]}-1-r1"
    with pytest.raises(ApplicationError) as unknown:
        await PaymentActivities(pool, provider).issue_refund(
            a_refund(case_id, 1, 500, limit_minor=500)
        )
    assert unknown.value.type == CASE_NOT_IN_LEDGER
    assert not unknown.value.non_retryable  # the refund waits, it is not dropped
    assert provider.calls == []
    rows = await pool.fetchval("SELECT count(*) FROM money_movements WHERE case_id = $1", case_id)
    assert rows == 0
