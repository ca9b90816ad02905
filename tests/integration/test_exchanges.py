"""ExchangeCase on the time-skipping server (R22)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.payments import SandboxPaymentProvider
from activities.warehouse import SandboxWarehouse
from domain.case import CaseKind, ExchangeItem, Grade, RefundConsent, ScanEvent
from domain.state import CaseStatus
from tests.conftest import a_request, eur
from tests.helpers import Handle, open_case, scan, state_when
from workflows.exchange_case import ExchangeCase


async def inspected_exchange(
    env: WorkflowEnvironment, task_queue: str, *, new_price: int, new_sku: str = "SKU-43-L"
) -> Handle:
    request = a_request(
        kind=CaseKind.EXCHANGE, paid_minor=5_990,
        exchange_for=ExchangeItem(sku=new_sku, price=eur(new_price)),
    )  # fmt: skip
    handle = await open_case(env, task_queue, request)
    await handle.signal(ExchangeCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
    await handle.signal(
        ExchangeCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
    )
    return handle


async def test_a_dearer_replacement_is_charged_the_difference(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    payments: SandboxPaymentProvider,
    warehouse: SandboxWarehouse,
    pool: asyncpg.Pool,
) -> None:  # R22
    async with running_worker(time_skipping_env.client):
        handle = await inspected_exchange(time_skipping_env, task_queue, new_price=6_990)
        result = await handle.result()
    assert result.status is CaseStatus.EXCHANGED
    assert list(payments.charges.values()) == [eur(1_000)]
    assert payments.refunds == {}
    assert list(warehouse.shipped.values()) == [("SKU-43-L", 1)]
    rows = await pool.fetch(
        "SELECT kind, amount_minor FROM money_movements WHERE case_id = $1", result.case_id
    )
    assert [(r["kind"], r["amount_minor"]) for r in rows] == [("charge", 1_000)]


async def test_out_of_stock_becomes_a_refund_with_consent(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    warehouse: SandboxWarehouse,
) -> None:  # R22
    warehouse.out_of_stock.add("SKU-43-L")
    async with running_worker(time_skipping_env.client):
        handle = await inspected_exchange(time_skipping_env, task_queue, new_price=5_990)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_REFUND_CONSENT)
        await handle.execute_update(
            ExchangeCase.consent_to_refund, RefundConsent(consent_id="k-1", consent=True)
        )
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert result.refunded_total == eur(5_990)
    assert warehouse.shipped == {}


async def test_out_of_stock_without_consent_waits_for_stock_and_never_refunds(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    warehouse: SandboxWarehouse,
    payments: SandboxPaymentProvider,
) -> None:  # R22
    env = time_skipping_env
    warehouse.out_of_stock.add("SKU-43-L")
    async with running_worker(env.client):
        handle = await inspected_exchange(env, task_queue, new_price=5_990)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_REFUND_CONSENT)
        await env.sleep(timedelta(days=7, hours=1))
        waiting = await state_when(handle, lambda s: s.status is CaseStatus.WAITING_FOR_STOCK)
        await env.sleep(timedelta(days=3))
        assert (await handle.query(ExchangeCase.state)).status is CaseStatus.WAITING_FOR_STOCK
        warehouse.out_of_stock.clear()
        result = await handle.result()
    assert waiting.refunds == []
    assert payments.refunds == {}
    assert result.status is CaseStatus.EXCHANGED
    assert list(warehouse.shipped.values()) == [("SKU-43-L", 1)]


def test_an_exchange_names_its_replacement() -> None:  # R22
    with pytest.raises(ValueError, match="exchange_for is required"):
        a_request(kind=CaseKind.EXCHANGE)
