"""ExchangeCase over stand-in activities (R22): the price difference settled once, the
replacement shipped once, out of stock handled with and without the customer's consent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.testing import WorkflowEnvironment

from domain.case import CaseKind, ExchangeItem, Grade, RefundConsent, ScanEvent
from domain.ledger import LedgerAction as A
from domain.state import CaseStatus
from tests.conftest import a_request, eur
from tests.helpers import Handle, open_case, scan, state_when
from tests.workflows.standins import StandIns
from workflows.exchange_case import ExchangeCase


async def inspected_exchange(env: WorkflowEnvironment, task_queue: str, new_price: int) -> Handle:
    request = a_request(
        kind=CaseKind.EXCHANGE, paid_minor=5_990,
        exchange_for=ExchangeItem(sku="SKU-43-L", price=eur(new_price)),
    )  # fmt: skip
    handle = await open_case(env, task_queue, request)
    await handle.signal(ExchangeCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
    await handle.signal(
        ExchangeCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
    )
    return handle


async def test_r22_a_dearer_replacement_is_charged_the_difference_and_shipped_once(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        result = await (await inspected_exchange(time_skipping_env, task_queue, 6_990)).result()
    assert result.status is CaseStatus.EXCHANGED
    assert standins.charged(result.case_id) == 1_000
    assert standins.refunded(result.case_id) == 0
    assert [(s.sku, s.quantity) for s in standins.shipments.values()] == [("SKU-43-L", 1)]
    assert A.INSPECTION_PASSED in standins.actions(result.case_id)


async def test_r22_r21_a_cheaper_replacement_refunds_the_difference(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    async with running_worker(time_skipping_env.client):
        result = await (await inspected_exchange(time_skipping_env, task_queue, 4_990)).result()
    assert result.status is CaseStatus.EXCHANGED
    assert [(r.purpose, r.amount) for r in result.refunds] == [("price_difference", eur(1_000))]
    assert standins.refunded(result.case_id) == 1_000
    assert standins.charged(result.case_id) == 0


async def test_r22_out_of_stock_becomes_a_full_refund_with_consent(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    standins.out_of_stock.add("SKU-43-L")
    async with running_worker(time_skipping_env.client):
        handle = await inspected_exchange(time_skipping_env, task_queue, 5_990)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_REFUND_CONSENT)
        await handle.execute_update(
            ExchangeCase.consent_to_refund, RefundConsent(consent_id="k-1", consent=True)
        )
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert standins.refunded(result.case_id) == 5_990
    assert standins.shipments == {}


async def test_r22_out_of_stock_without_consent_waits_for_stock_and_never_refunds(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    env = time_skipping_env
    standins.out_of_stock.add("SKU-43-L")
    async with running_worker(env.client):
        handle = await inspected_exchange(env, task_queue, 5_990)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_REFUND_CONSENT)
        await env.sleep(timedelta(days=7, hours=1))
        await state_when(handle, lambda s: s.status is CaseStatus.WAITING_FOR_STOCK)
        await env.sleep(timedelta(days=3))
        assert (await handle.query(ExchangeCase.state)).status is CaseStatus.WAITING_FOR_STOCK
        standins.out_of_stock.clear()
        result = await handle.result()
    assert result.status is CaseStatus.EXCHANGED
    assert standins.money == {}
    assert [s.sku for s in standins.shipments.values()] == ["SKU-43-L"]
