"""`make run`'s demo (stack/demo.py) fills every queue an operator works, as the README
names it, and opening it again (the next `make run`) adds nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from domain.case import Role
from domain.queues import CaseSort, Cursor, Queue, Viewer
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from stack import demo
from tests.conftest import eventually


async def _cases(pool: asyncpg.Pool) -> dict[str, asyncpg.Record]:
    rows = await pool.fetch(
        """SELECT case_id, status, next_deadline, case_view->'escalation'->>'level' AS level
           FROM cases WHERE order_id LIKE 'DEMO-10%'"""
    )
    return {row["case_id"].split("-demo-")[0]: row for row in rows}


async def _demo_queues(gateway: CaseGateway) -> dict[Queue, set[str]]:
    """Each queue's demo cases, as the supervisor's desk lists them."""
    supervisor = Viewer(actor="sue", role=Role.SUPERVISOR)
    found: dict[Queue, set[str]] = {}
    for queue in Queue:
        found[queue], after = set(), None
        while True:  # every page: other tests' cases share the session's database
            page = await gateway.queues.queue(
                queue, supervisor, datetime.now(UTC), after=after, limit=1000
            )
            found[queue] |= {r.case_id.split("-demo-")[0] for r in page.rows
                             if "-DEMO-" in r.case_id}  # fmt: skip
            if page.next_cursor is None:
                break
            after = Cursor.decode(page.next_cursor, CaseSort.NEXT_DEADLINE)
    return found


async def _kept(pool: asyncpg.Pool) -> tuple[int, int]:
    scans = await pool.fetchval(
        "SELECT count(*) FROM unmatched_scans WHERE barcode = $1", demo.DEMO_UNMATCHED_BARCODE
    )
    refused = await pool.fetchval(
        "SELECT count(*) FROM refused_inputs WHERE source = $1", demo.DEMO_SOURCE
    )
    return scans, refused


async def test_the_demo_fills_every_operators_queue_once(
    dev_env: WorkflowEnvironment,
    running_worker: Any,
    pool: asyncpg.Pool,
    task_queue: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # R4, R10, R17, R18, R19, R26
    monkeypatch.setattr(demo, "DATA_DIR", tmp_path)  # the demo's anchor, not the project's
    gateway = CaseGateway(dev_env.client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))
    async with running_worker(dev_env.client):
        await demo.open_demo_cases(gateway)
        await demo.open_demo_queues(gateway)
        cases = await eventually(
            lambda: _cases(pool),
            lambda found: (
                len(found) == 12
                and found["return-DEMO-1012-1"]["status"] == "in_arbitration"
                and found["return-DEMO-1011-1"]["level"] == "supervisor"
                and found["return-DEMO-1005-1"]["next_deadline"] is not None
            ),
            within_s=60,
        )
        kept = await _kept(pool)
        queues = await _demo_queues(gateway)
        # The next `make run`: the same cases, nothing kept twice.
        await demo.open_demo_cases(gateway)
        await demo.open_demo_queues(gateway)
        again = await _cases(pool)
        kept_again = await _kept(pool)
    status = {case: row["status"] for case, row in cases.items()}
    assert status["return-DEMO-1009-1"] == "under_review"
    assert (status["return-DEMO-1010-1"], cases["return-DEMO-1010-1"]["level"]) == (
        "under_review", "supervisor"
    )  # fmt: skip
    late = cases["return-DEMO-1011-1"]
    assert late["status"] == "awaiting_delivery"
    assert late["next_deadline"] < demo._demo_anchor()  # a deadline passed
    assert status["return-DEMO-1012-1"] == "in_arbitration"
    assert status["return-DEMO-1005-1"] == "rejected"  # within its dispute window
    assert status["return-DEMO-1006-1"] == "awaiting_evidence"
    assert status["return-DEMO-1001-1"] == "awaiting_ship_back"
    assert kept == (1, 1)
    # The queues (domain/queues.py) hold them as the README names them, for a supervisor.
    assert {"return-DEMO-1009-1", "damage_claim-DEMO-1008-1", "return-DEMO-1012-1"} <= queues[
        Queue.NEEDS_DECISION
    ]
    assert {"return-DEMO-1010-1", "return-DEMO-1011-1"} <= queues[Queue.ESCALATED]
    assert "return-DEMO-1011-1" in queues[Queue.LATE]
    assert {"return-DEMO-1006-1", "return-DEMO-1001-1"} <= queues[Queue.WAITING_ON_CUSTOMER]
    assert set(again) == set(cases)
    assert kept_again == kept
