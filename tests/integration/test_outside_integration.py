"""By configuration alone: the environment points payments, messaging, warehouse and
carrier at a merchant's services on loopback, and the real worker (real activities,
PostgreSQL) runs a case through them; the provider declines the refund, the case waits
for a person, whose retry pays it once (R21)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from domain.case import Grade, PaymentResolution, PaymentResolutionKind, Role, ScanEvent
from domain.state import CaseStatus
from infra.outside.adapters import HttpCarrier, HttpNotifier, HttpPaymentProvider, HttpWarehouse
from infra.outside.systems import OutsideSystems, outside_systems
from infra.settings import OutsideSystem, load_settings
from tests.conftest import a_request
from tests.helpers import open_case, scan, state_when
from tests.identities import IDENTITIES
from tests.merchant_service import SECRET, MerchantService, merchant_service
from worker import build_worker
from workflows.return_case import ReturnCase


@pytest.fixture
async def merchant() -> AsyncIterator[MerchantService]:
    async with merchant_service() as service:
        yield service


@pytest.fixture
async def configured(
    merchant: MerchantService, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[OutsideSystems]:
    """What docs/operations.md tells a user to set, and nothing else."""
    for system in OutsideSystem:
        monkeypatch.setenv(f"AFTERSALES_{system.upper()}_URL", merchant.url)
        monkeypatch.setenv(f"AFTERSALES_{system.upper()}_SECRET", SECRET)
    monkeypatch.setenv("AFTERSALES_SANDBOX_PAYMENTS_JOURNAL", str(tmp_path / "unused.jsonl"))
    systems = outside_systems(load_settings())
    yield systems
    await systems.aclose()


async def test_r21_a_case_runs_on_the_merchants_services_and_a_declined_refund_pays_once(
    time_skipping_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    task_queue: str,
    merchant: MerchantService,
    configured: OutsideSystems,
) -> None:
    env = time_skipping_env
    request = a_request(paid_minor=4_000, request_id="outside-http")
    merchant.declined_cases.add(request.case_id)
    worker = build_worker(
        env.client, pool=pool, task_queue=task_queue, payments=configured.payments,
        notifier=configured.notifier, carrier=configured.carrier,
        warehouse=configured.warehouse, grants=IDENTITIES.verifier,
    )  # fmt: skip
    async with worker:
        handle = await open_case(env, task_queue, request)
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        waiting = await state_when(handle, lambda s: s.status is CaseStatus.PAYMENT_DECLINED)
        merchant.declined_cases.clear()
        await handle.execute_update(
            ReturnCase.resolve_declined_payment,
            PaymentResolution(
                action_id="p-1", actor="sue", role=Role.SUPERVISOR,
                resolution=PaymentResolutionKind.RETRY, reason="the customer's bank is back",
            ),
        )  # fmt: skip
        result = await handle.result()

    assert isinstance(configured.payments, HttpPaymentProvider)
    assert isinstance(configured.notifier, HttpNotifier)
    assert isinstance(configured.warehouse, HttpWarehouse)
    assert isinstance(configured.carrier, HttpCarrier)
    assert waiting.declined_payment is not None
    assert waiting.declined_payment.reason == "card declined: insufficient funds"
    key = f"{request.case_id}:refund:1"
    assert result.status is CaseStatus.REFUNDED
    assert [r.provider_reference for r in result.refunds] == [f"merchant-refunds-{key}"]
    assert merchant.booked["refunds"] == 1
    assert merchant.booked["messages"] >= 2  # acknowledged, refund issued
    assert merchant.bad_signatures == 0
    row = await pool.fetchrow(
        "SELECT status, provider_reference FROM money_movements WHERE idempotency_key = $1", key
    )
    assert row is not None
    assert (row["status"], row["provider_reference"]) == ("succeeded", f"merchant-refunds-{key}")
    actions = [
        r["action"]
        for r in await pool.fetch(
            "SELECT action FROM case_events WHERE case_id = $1 ORDER BY seq", request.case_id
        )
    ]
    assert actions.index("payment_declined") < actions.index("payment_retried")
    assert actions.index("payment_retried") < actions.index("refund_issued")


async def test_r21_two_people_resolving_one_declined_refund_at_once_pay_it_once(
    time_skipping_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    task_queue: str,
    merchant: MerchantService,
    configured: OutsideSystems,
) -> None:
    """A supervisor retries the declined refund twice (a double submit) while a manager
    retries it too, all at once: the case takes one resolution, the others are refused or
    answered by it, and the money moves once."""
    env = time_skipping_env
    request = a_request(paid_minor=4_000, request_id="outside-race")
    merchant.declined_cases.add(request.case_id)
    worker = build_worker(
        env.client, pool=pool, task_queue=task_queue, payments=configured.payments,
        notifier=configured.notifier, carrier=configured.carrier,
        warehouse=configured.warehouse, grants=IDENTITIES.verifier,
    )  # fmt: skip
    async with worker:
        handle = await open_case(env, task_queue, request)
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        await state_when(handle, lambda s: s.status is CaseStatus.PAYMENT_DECLINED)
        merchant.declined_cases.clear()
        resolutions = [
            PaymentResolution(
                action_id=f"p-{n}",
                actor=actor,
                role=role,
                resolution=kind,
                reason="the customer's bank is back",
            )
            for n, (actor, role, kind) in enumerate(
                [
                    ("sue", Role.SUPERVISOR, PaymentResolutionKind.RETRY),
                    ("sue", Role.SUPERVISOR, PaymentResolutionKind.RETRY),
                    ("meg", Role.MANAGER, PaymentResolutionKind.RETRY),
                ]
            )
        ]
        await asyncio.gather(
            *(handle.execute_update(ReturnCase.resolve_declined_payment, r) for r in resolutions),
            return_exceptions=True,
        )
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert len(result.refunds) == 1
    assert merchant.booked["refunds"] == 1
    moved = await pool.fetchval(
        "SELECT count(*) FROM money_movements WHERE case_id = $1 AND status = 'succeeded'",
        request.case_id,
    )
    assert moved == 1
