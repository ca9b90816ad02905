"""Faults survived: a worker killed with SIGKILL in the middle of a refund, after the
payment provider took it but before the worker learnt so, is replaced and the case ends
with one refund row and one provider call; and two worker processes share the cases, one
is killed while refunds are in flight, the other finishes every case, nothing lost or
doubled. (PostgreSQL and Temporal server outages: test_outages.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.payments import JournaledSandboxPaymentProvider
from activities.policy_file import load_policy_file
from domain.case import Grade, ScanEvent, WarehouseScan
from domain.state import CaseStatus
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eventually
from tests.processes import start_process
from workflows.return_case import ReturnCase

QUEUE = "aftersales-faults"
CASES = 8


def worker_env(dev_env: WorkflowEnvironment, database_url: str, **extra: str) -> dict[str, str]:
    return (
        os.environ
        | extra
        | {
            "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
            "DATABASE_URL": database_url,
            "AFTERSALES_TASK_QUEUE": QUEUE,
        }
    )


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Any]]:
    """Worker processes a test starts; whatever is still running at the end is stopped."""
    started: list[Any] = []
    yield started
    for worker in started:
        if worker.poll() is None:
            worker.terminate()
        worker.wait(timeout=20)


def passed_inspection(case_id: str, at: datetime) -> WarehouseScan:
    """The QC scan that passes a changed-mind return, so its refund is issued (R5, R13)."""
    return WarehouseScan(
        scan_id=f"{case_id}-qc",
        event=ScanEvent.INSPECTED,
        station="QC-1",
        grade=Grade.RESELLABLE,
        scanned_at=at,
    )


def start_worker(env: dict[str, str], log: Path) -> Any:
    return start_process([sys.executable, "worker.py"], env, log)[0]


@pytest.fixture
def two_workers(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path: Path, workers: list[Any]
) -> list[Any]:
    env = worker_env(
        dev_env, database_url, AFTERSALES_SANDBOX_PAYMENTS_JOURNAL=str(tmp_path / "pay.jsonl")
    )
    workers.extend(start_worker(env, tmp_path / f"worker-{n}.log") for n in (1, 2))
    return workers


async def test_a_worker_killed_after_the_provider_paid_is_replaced_and_pays_once(
    dev_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    database_url: str,
    tmp_path: Path,
    workers: list[Any],
) -> None:  # R13, R21, durability
    journal = tmp_path / "payments.jsonl"
    provider = JournaledSandboxPaymentProvider(journal=journal)
    # The provider books a refund at once and answers 60 s later: the worker dies in
    # between, knowing only that it reserved the money row.
    slow = worker_env(
        dev_env,
        database_url,
        AFTERSALES_SANDBOX_PAYMENTS_JOURNAL=str(journal),
        AFTERSALES_SANDBOX_PAYMENTS_DELAY="PT60S",
    )
    workers.append(start_worker(slow, tmp_path / "doomed-worker.log"))
    gateway = CaseGateway(dev_env.client, pool, QUEUE, load_policy_file(DEFAULT_POLICY_FILE))
    now = datetime.now(UTC)
    request = a_request(delivered_at=now - timedelta(days=1), requested_after=timedelta(days=1))
    await gateway.open_case(request)
    await gateway.scan(request.case_id, passed_inspection(request.case_id, now))
    key = f"{request.case_id}:refund:1"

    async def provider_calls() -> int:
        return provider.journal_calls(key)

    assert await eventually(provider_calls, lambda calls: calls == 1, within_s=30) == 1
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(timeout=10)
    movement = await pool.fetchrow(
        "SELECT status FROM money_movements WHERE idempotency_key = $1", key
    )
    assert movement is not None
    assert movement["status"] == "pending"

    healthy = worker_env(dev_env, database_url, AFTERSALES_SANDBOX_PAYMENTS_JOURNAL=str(journal))
    workers.append(start_worker(healthy, tmp_path / "new-worker.log"))
    handle = dev_env.client.get_workflow_handle_for(ReturnCase.run, request.case_id)
    result = await asyncio.wait_for(handle.result(), timeout=60)

    assert result.status is CaseStatus.REFUNDED
    assert [r.provider_reference for r in result.refunds] == [f"sandbox-refund-{key}"]
    assert provider.journal_calls(key) == 1
    rows = await pool.fetch(
        "SELECT status, amount_minor FROM money_movements WHERE case_id = $1", request.case_id
    )
    assert [(r["status"], r["amount_minor"]) for r in rows] == [
        ("succeeded", request.paid.amount_minor)
    ]


async def test_a_worker_killed_mid_refund_leaves_every_case_finished_once(
    dev_env: WorkflowEnvironment, pool: asyncpg.Pool, two_workers: list[Any]
) -> None:  # R21, durability
    gateway = CaseGateway(dev_env.client, pool, QUEUE, load_policy_file(DEFAULT_POLICY_FILE))
    now = datetime.now(UTC)
    requests = [
        a_request(
            delivered_at=now - timedelta(days=1),
            requested_after=timedelta(days=1),
            paid_minor=1_000 + n,
        )
        for n in range(CASES)
    ]
    for request in requests:
        await gateway.open_case(request)
    for request in requests:
        await gateway.scan(request.case_id, passed_inspection(request.case_id, now))
    two_workers[0].send_signal(signal.SIGKILL)  # mid-flight: refunds are being issued now
    results = [
        await dev_env.client.get_workflow_handle_for(ReturnCase.run, r.case_id).result()
        for r in requests
    ]
    assert [r.status for r in results] == [CaseStatus.REFUNDED] * CASES
    rows = await pool.fetch(
        "SELECT case_id, count(*) AS n, sum(amount_minor) AS total FROM money_movements "
        "WHERE case_id = ANY($1) GROUP BY case_id",
        [r.case_id for r in requests],
    )
    paid = {r.case_id: r.paid.amount_minor for r in requests}
    assert {row["case_id"]: (row["n"], row["total"]) for row in rows} == {
        case_id: (1, amount) for case_id, amount in paid.items()
    }
    for request in requests:
        seqs = await pool.fetch(
            "SELECT seq FROM case_events WHERE case_id = $1 ORDER BY seq", request.case_id
        )
        assert [s["seq"] for s in seqs] == list(range(1, len(seqs) + 1))
