"""The other return reasons on the time-skipping server: R3, R4, R7, R9."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.carrier import SandboxCarrier
from activities.notifications import RecordingNotifier, Template
from activities.payments import SandboxPaymentProvider
from activities.warehouse import SandboxWarehouse
from domain.case import (
    CaseKind,
    ExchangeItem,
    Grade,
    InterceptRequested,
    MissingPart,
    ParcelDelivered,
    PartRemedy,
    Reason,
    ReviewDecision,
    Role,
    RootCause,
    ScanEvent,
)
from domain.ledger import LedgerAction
from domain.sla import SlaClock
from domain.state import CaseStatus, EscalationLevel
from tests.conftest import a_request, eur
from tests.helpers import events, open_case, scan, state_when, under_review
from workflows.exchange_case import ExchangeCase
from workflows.return_case import ReturnCase


def approve(root_cause: RootCause | None = None) -> ReviewDecision:
    return ReviewDecision(
        action_id="d-1", actor="agent-ann", role=Role.AGENT, approve=True, root_cause=root_cause
    )


def in_transit(**request: Any) -> Any:
    return a_request(
        delivered_at=datetime.now(UTC) + timedelta(days=2),  # the expected delivery
        requested_after=timedelta(days=-2), carrier="SF", **request,
    )  # fmt: skip


async def test_an_order_not_shipped_yet_is_cancelled_and_refunded_at_once(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    warehouse: SandboxWarehouse,
    pool: asyncpg.Pool,
) -> None:  # R3
    request = in_transit(reason=Reason.NOT_SHIPPED_YET, paid_minor=3_000)
    async with running_worker(time_skipping_env.client):
        result = await (await open_case(time_skipping_env, task_queue, request)).result()
    assert result.status is CaseStatus.REFUNDED
    assert result.refunded_total == eur(3_000)
    assert warehouse.cancelled == [f"{request.order_id}/1"]
    actions = [e["action"] for e in await events(pool, request.case_id)]
    assert actions == ["case_opened", "shipment_cancelled", "refund_issued"]


async def test_an_order_that_already_left_becomes_an_in_transit_case(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    warehouse: SandboxWarehouse,
    payments: SandboxPaymentProvider,
) -> None:  # R3, R4
    request = in_transit(reason=Reason.NOT_SHIPPED_YET)
    warehouse.already_shipped.add(request.order_id)
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_DELIVERY)
        await handle.signal(
            ReturnCase.parcel_delivered,
            ParcelDelivered(event_id="dlv-1", delivered_at=datetime.now(UTC)),
        )
        result = await handle.result()
    assert result.status is CaseStatus.DELIVERED
    assert payments.calls == []


async def test_the_customer_may_insist_and_is_refunded_when_the_parcel_is_back(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    carrier: SandboxCarrier,
    notifier: RecordingNotifier,
) -> None:  # R4
    request = in_transit(reason=Reason.NOT_RECEIVED, paid_minor=4_500)
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_DELIVERY)
        await handle.signal(ReturnCase.intercept_requested, InterceptRequested(event_id="i-1"))
        await state_when(handle, lambda s: s.status is CaseStatus.INTERCEPTING)
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert result.refunded_total == eur(4_500)
    assert carrier.intercepted == [request.order_id]
    told = [m for m in notifier.delivered if m.template is Template.EXPECTED_DELIVERY]
    assert request.expected_delivery_at is not None
    assert told[0].params["expected"] == request.expected_delivery_at.isoformat()


async def test_a_parcel_late_past_its_expected_date_is_escalated(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R4, R18
    env = time_skipping_env
    request = in_transit(reason=Reason.NOT_RECEIVED)
    assert request.expected_delivery_at is not None
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_DELIVERY)
        now = await env.get_current_time()
        await env.sleep(request.expected_delivery_at - now - timedelta(minutes=1))
        assert (await handle.query(ReturnCase.state)).sla_breaches == []
        await env.sleep(timedelta(minutes=2))
        late = await state_when(handle, lambda s: bool(s.sla_breaches))
    assert [(b.clock, b.rule, b.due_at) for b in late.sla_breaches] == [
        (SlaClock.EXPECTED_DELIVERY, "R4", request.expected_delivery_at)
    ]
    assert late.escalation.level is EscalationLevel.SUPERVISOR


async def test_wrong_item_approval_needs_a_root_cause(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R7
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, reason=Reason.WRONG_ITEM)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ReturnCase.decide, approve())
    assert "root_cause" in str(refused.value.cause)


async def test_wrong_item_return_apologises_with_a_coupon(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    notifier: RecordingNotifier,
    pool: asyncpg.Pool,
) -> None:  # R7
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, reason=Reason.WRONG_ITEM)
        state = await handle.execute_update(ReturnCase.decide, approve(RootCause.PICKING_ERROR))
    coupons = [m for m in notifier.delivered if m.template is Template.APOLOGY_COUPON]
    assert [c.params["amount"] for c in coupons] == ["10.00 EUR"]
    assert state.status is CaseStatus.AWAITING_SHIP_BACK
    assert state.merchant_pays_shipping
    ledger = await events(pool, state.case_id)
    apology = next(e for e in ledger if e["action"] == LedgerAction.APOLOGY_COUPON_ISSUED)
    assert apology["details"]["root_cause"] == "picking_error"


async def test_wrong_item_exchange_ships_the_right_item_before_the_wrong_one_is_back(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    warehouse: SandboxWarehouse,
) -> None:  # R7, R22
    async with running_worker(time_skipping_env.client):
        handle = await under_review(
            time_skipping_env, task_queue, kind=CaseKind.EXCHANGE, reason=Reason.WRONG_ITEM,
            exchange_for=ExchangeItem(sku="SKU-42-BLUE", price=eur(5_990)),
        )  # fmt: skip
        approved = await handle.execute_update(ExchangeCase.decide, approve(RootCause.LABEL_ERROR))
        shipped_before_return = dict(warehouse.shipped)
        await handle.signal(ExchangeCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ExchangeCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        result = await handle.result()
    assert approved.status is CaseStatus.AWAITING_SHIP_BACK
    assert list(shipped_before_return.values()) == [("SKU-42-BLUE", 1)]
    assert result.status is CaseStatus.EXCHANGED
    assert len(warehouse.shipped) == 1  # not sent twice


@pytest.mark.parametrize("remedy", [PartRemedy.REFUND, PartRemedy.SHIP])
async def test_a_missing_part_is_refunded_or_sent(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    warehouse: SandboxWarehouse,
    remedy: PartRemedy,
) -> None:  # R9, R21
    part = MissingPart(sku="SKU-42-STRAP", value=eur(1_500), remedy=remedy)
    async with running_worker(time_skipping_env.client):
        handle = await under_review(
            time_skipping_env, task_queue, reason=Reason.MISSING_PARTS, missing_part=part
        )
        await handle.execute_update(ReturnCase.decide, approve())
        result = await handle.result()
    if remedy is PartRemedy.REFUND:
        assert result.status is CaseStatus.REFUNDED
        assert result.refunded_total == eur(1_500)
        assert warehouse.shipped == {}
    else:
        assert result.status is CaseStatus.REPLACED
        assert result.refunds == []
        assert list(warehouse.shipped.values()) == [("SKU-42-STRAP", 1)]
    assert result.ship_back_deadline is None  # nothing comes back (R9)
