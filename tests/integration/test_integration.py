"""Whole cases on the Temporal dev server with PostgreSQL, through the same gateway the
CLI uses: what a backend service and a warehouse scanner actually do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.payments import SandboxPaymentProvider
from activities.policy_file import load_policy_file
from domain.case import (
    CaseKind,
    ExchangeItem,
    Grade,
    Reason,
    Remedy,
    RemedyChoice,
    ReviewDecision,
    Role,
    ScanEvent,
    ShippedBack,
    WarehouseScan,
)
from domain.state import CaseStatus
from infra.case_errors import RefusedInputError, UnknownCaseError
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eur, eventually
from workflows.damage_claim_case import DamageClaimCase
from workflows.exchange_case import ExchangeCase
from workflows.return_case import ReturnCase


def now() -> datetime:
    return datetime.now(UTC)


def dock_scan(scan_id: str) -> WarehouseScan:
    return WarehouseScan(
        scan_id=scan_id, event=ScanEvent.PARCEL_RECEIVED, station="DOCK-3", scanned_at=now()
    )


def inspection(scan_id: str, grade: Grade = Grade.RESELLABLE) -> WarehouseScan:
    return WarehouseScan(
        scan_id=scan_id,
        event=ScanEvent.INSPECTED,
        station="QC-1",
        grade=grade,
        photos=["https://photos.example/1.jpg"],
        scanned_at=now(),
    )


def recent_request(**overrides: Any) -> Any:
    return a_request(
        delivered_at=now() - timedelta(days=2), requested_after=timedelta(days=2), **overrides
    )


@pytest.fixture
def gateway(dev_env: WorkflowEnvironment, pool: asyncpg.Pool, task_queue: str) -> CaseGateway:
    return CaseGateway(dev_env.client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))


async def test_case_from_open_to_refunded_leaves_the_expected_rows(
    dev_env: WorkflowEnvironment,
    running_worker: Any,
    gateway: CaseGateway,
    pool: asyncpg.Pool,
    payments: SandboxPaymentProvider,
) -> None:  # R2, R12, R13, R21, R23, R26
    request = recent_request(paid_minor=7_990)
    case_id = request.case_id
    async with running_worker(dev_env.client):
        opened = await gateway.open_case(request)
        again = await gateway.open_case(request.model_copy(update={"requested_at": now()}))
        assert opened.created
        assert not again.created
        assert again.view.case_id == case_id
        await gateway.shipped_back(
            case_id,
            ShippedBack(event_id="e1", carrier="SF", tracking_number="SF123", shipped_at=now()),
        )
        dock = dock_scan(f"{case_id}-dock")
        await gateway.scan(case_id, dock)
        await gateway.scan(case_id, dock)  # the scanner retried: the same report again
        await gateway.scan(case_id, inspection(f"{case_id}-qc"))
        result = await dev_env.client.get_workflow_handle_for(ReturnCase.run, case_id).result()

    assert result.status is CaseStatus.REFUNDED
    case_row = await pool.fetchrow("SELECT * FROM cases WHERE case_id = $1", case_id)
    assert case_row is not None
    assert (case_row["status"], case_row["refunded_minor"], case_row["channel"]) == (
        "refunded",
        7_990,
        "app",
    )
    assert case_row["closed_at"] is not None
    ledger = await pool.fetch(
        "SELECT action, rule_id, actor, role FROM case_events WHERE case_id = $1 ORDER BY seq",
        case_id,
    )
    assert [(e["action"], e["rule_id"]) for e in ledger] == [
        ("case_opened", "R2"),
        ("approved", "R5"),
        ("customer_shipped_back", "R12"),
        ("parcel_received", "R26"),
        ("inspection_passed", "R13"),
        ("refund_issued", "R21"),
    ]
    assert (ledger[3]["actor"], ledger[3]["role"]) == ("DOCK-3", "warehouse")
    money = await pool.fetch(
        "SELECT amount_minor, status FROM money_movements WHERE case_id = $1", case_id
    )
    assert [(m["amount_minor"], m["status"]) for m in money] == [(7_990, "succeeded")]
    assert len(payments.calls) == 1
    scans = await pool.fetchval("SELECT count(*) FROM scans WHERE case_id = $1", case_id)
    assert scans == 2


async def test_worker_stopped_mid_case_finishes_it_after_restart(
    dev_env: WorkflowEnvironment,
    running_worker: Any,
    gateway: CaseGateway,
    pool: asyncpg.Pool,
    payments: SandboxPaymentProvider,
) -> None:  # durability; R21 exactly once
    request = recent_request()
    case_id = request.case_id
    async with running_worker(dev_env.client):
        await gateway.open_case(request)
    # No worker now: the server keeps the case and every message for it.
    await gateway.scan(case_id, dock_scan(f"{case_id}-dock"))
    await gateway.scan(case_id, inspection(f"{case_id}-qc"))
    async with running_worker(dev_env.client):
        result = await dev_env.client.get_workflow_handle_for(ReturnCase.run, case_id).result()
    assert result.status is CaseStatus.REFUNDED
    assert len(payments.calls) == 1
    rows = await pool.fetchval("SELECT count(*) FROM money_movements WHERE case_id = $1", case_id)
    assert rows == 1


async def test_scan_for_an_unknown_case_is_refused_and_kept(
    gateway: CaseGateway, pool: asyncpg.Pool
) -> None:  # R26
    scan_id = f"lost-{uuid.uuid4().hex[:8]}"
    with pytest.raises(UnknownCaseError, match="matches no open case"):
        await gateway.scan("return-NOPE-1-r1", dock_scan(scan_id))
    kept = await pool.fetchrow(
        "SELECT barcode, payload FROM unmatched_scans WHERE scan_id = $1", scan_id
    )
    assert kept is not None
    assert kept["barcode"] == "return-NOPE-1-r1"
    assert kept["payload"]["scan_id"] == scan_id


async def test_same_request_id_with_other_details_is_refused(
    dev_env: WorkflowEnvironment, running_worker: Any, gateway: CaseGateway
) -> None:  # R2
    request = recent_request()
    async with running_worker(dev_env.client):
        await gateway.open_case(request)
        with pytest.raises(RefusedInputError, match="R2"):
            await gateway.open_case(request.model_copy(update={"sku": "SKU-OTHER"}))


async def test_late_request_is_refused_and_the_case_is_still_recorded(
    dev_env: WorkflowEnvironment, running_worker: Any, gateway: CaseGateway, pool: asyncpg.Pool
) -> None:  # R1, R20, R23
    request = a_request(delivered_at=now() - timedelta(days=10), requested_after=timedelta(days=10))
    async with running_worker(dev_env.client):
        opened = await gateway.open_case(request)
        await dev_env.client.get_workflow_handle_for(ReturnCase.run, request.case_id).result()
    assert opened.view.status is CaseStatus.REFUSED
    row = await pool.fetchrow(
        "SELECT status, decision_reason FROM cases WHERE case_id = $1", request.case_id
    )
    assert row is not None
    assert row["status"] == "refused"
    assert "R1" in row["decision_reason"]


async def test_operators_find_cases_by_search_attribute(
    dev_env: WorkflowEnvironment, running_worker: Any, gateway: CaseGateway
) -> None:  # R23 (visible state), no PII in search attributes
    request = recent_request()
    async with running_worker(dev_env.client):
        await gateway.open_case(request)
        listed = await eventually(
            lambda: gateway.list_cases(status=CaseStatus.AWAITING_SHIP_BACK.value, limit=1000),
            lambda cases: any(c.case_id == request.case_id for c in cases),
        )
        description = await dev_env.client.get_workflow_handle(request.case_id).describe()
    mine = next(c for c in listed if c.case_id == request.case_id)
    assert (mine.kind, mine.reason, mine.order_id, mine.sku) == (
        "return",
        "changed_mind",
        request.order_id,
        "SKU-42",
    )
    assert mine.next_deadline is not None
    attribute_values = [str(pair.value) for pair in description.typed_search_attributes]
    assert request.order_id in attribute_values
    assert not any(request.customer.customer_id in v for v in attribute_values)
    summary = await description.static_summary()
    assert summary is not None
    assert request.order_id in summary
    assert request.customer.customer_id not in summary
    assert request.customer.customer_id not in (await description.static_details() or "")


async def test_damage_claim_from_open_to_replacement_with_a_carrier_claim(
    dev_env: WorkflowEnvironment, running_worker: Any, gateway: CaseGateway, pool: asyncpg.Pool
) -> None:  # R8, R10, R15, R23
    request = a_request(
        kind=CaseKind.DAMAGE_CLAIM, reason=Reason.LOST_IN_TRANSIT, carrier="DHL",
        delivered_at=now() - timedelta(days=1), requested_after=timedelta(days=1),
    )  # fmt: skip
    async with running_worker(dev_env.client):
        opened = await gateway.open_case(request)
        assert opened.view.status is CaseStatus.UNDER_REVIEW
        handle = dev_env.client.get_workflow_handle_for(DamageClaimCase.run, request.case_id)
        await handle.execute_update(
            DamageClaimCase.decide,
            ReviewDecision(action_id="d-1", actor="agent-ann", role=Role.AGENT, approve=True),
        )
        await handle.execute_update(
            DamageClaimCase.choose_remedy, RemedyChoice(choice_id="r-1", remedy=Remedy.REPLACEMENT)
        )
        result = await handle.result()
        claim = await eventually(
            lambda: pool.fetchrow(
                "SELECT status, claimed_minor FROM carrier_claims WHERE case_id = $1",
                request.case_id,
            ),
            lambda row: row is not None and row["status"] == "awaiting_carrier",
        )
    assert result.status is CaseStatus.REPLACED
    assert claim is not None
    assert claim["claimed_minor"] == request.paid.amount_minor
    actions = await pool.fetch(
        "SELECT action FROM case_events WHERE case_id = $1 ORDER BY seq", request.case_id
    )
    assert [a["action"] for a in actions] == [
        "case_opened",
        "review_started",
        "carrier_claim_opened",
        "approved",
        "replacement_shipped",
    ]


async def test_exchange_from_open_to_replacement_with_the_difference_charged(
    dev_env: WorkflowEnvironment,
    running_worker: Any,
    gateway: CaseGateway,
    pool: asyncpg.Pool,
    payments: SandboxPaymentProvider,
) -> None:  # R22, R26, R23
    request = recent_request(
        kind=CaseKind.EXCHANGE, exchange_for=ExchangeItem(sku="SKU-42-XL", price=eur(6_490))
    )
    case_id = request.case_id
    async with running_worker(dev_env.client):
        opened = await gateway.open_case(request)
        assert opened.view.status is CaseStatus.AWAITING_SHIP_BACK
        await gateway.scan(case_id, dock_scan(f"{case_id}-dock"))
        await gateway.scan(case_id, inspection(f"{case_id}-qc"))
        result = await dev_env.client.get_workflow_handle_for(ExchangeCase.run, case_id).result()
    assert result.status is CaseStatus.EXCHANGED
    assert list(payments.charges.values()) == [eur(6_490 - 5_990)]
    actions = await pool.fetch(
        "SELECT action FROM case_events WHERE case_id = $1 ORDER BY seq", case_id
    )
    assert [a["action"] for a in actions] == [
        "case_opened",
        "approved",
        "parcel_received",
        "inspection_passed",
        "price_difference_charged",
        "replacement_shipped",
    ]
