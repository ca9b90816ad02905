"""Faults survived (issue 5, first part): two worker processes share the cases; one is
killed with SIGKILL while refunds are in flight, and the other finishes every case with
nothing lost or doubled."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from domain.case import Grade, ScanEvent, WarehouseScan
from domain.state import CaseStatus
from infra.gateway import CaseGateway
from infra.policy_file import load_policy_file
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request
from tests.processes import start_process
from workflows.return_case import ReturnCase

QUEUE = "aftersales-faults"
CASES = 8


@pytest.fixture
def two_workers(
    dev_env: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Any]]:
    env = os.environ | {
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "DATABASE_URL": database_url,
        "AFTERSALES_TASK_QUEUE": QUEUE,
    }
    logs = tmp_path_factory.mktemp("faults")
    workers = [
        start_process([sys.executable, "worker.py"], env, logs / f"worker-{n}.log")[0]
        for n in (1, 2)
    ]
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
            worker.wait(timeout=20)


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
        await gateway.scan(
            request.case_id,
            WarehouseScan(
                scan_id=f"{request.case_id}-qc",
                event=ScanEvent.INSPECTED,
                station="QC-1",
                grade=Grade.RESELLABLE,
                scanned_at=now,
            ),
        )
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
