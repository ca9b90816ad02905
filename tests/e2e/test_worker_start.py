"""A worker starts whatever else fails: registering the R24 batch alarm's schedule is
set-up work (`starter.py setup`), so a worker on a server without schedules (the
time-skipping server here) warns and runs its cases."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from domain.state import CaseStatus
from infra.alarm_schedule import batch_alarm_schedule_missing
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request
from tests.processes import start_process
from workflows.return_case import ReturnCase

WARNING = "the R24 batch alarm will not run"


async def test_a_worker_on_a_server_without_schedules_warns_and_runs_cases(
    time_skipping_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    database_url: str,
    task_queue: str,
    tmp_path: Path,
) -> None:  # R1, R24
    client = time_skipping_env.client
    why = await batch_alarm_schedule_missing(client)
    assert why is not None
    assert "no schedules" in why

    env = os.environ | {
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "DATABASE_URL": database_url,
        "AFTERSALES_TASK_QUEUE": task_queue,
        "AFTERSALES_SANDBOX_PAYMENTS_JOURNAL": str(tmp_path / "payments.jsonl"),
    }
    log = tmp_path / "worker.log"
    worker, warned = start_process([sys.executable, "worker.py"], env, log, WARNING)
    try:
        assert await asyncio.to_thread(warned.wait, 60), log.read_text()
        # R1: asked for after the window, so the case is refused at once and closes.
        request = a_request(requested_after=timedelta(days=45))
        gateway = CaseGateway(client, pool, task_queue, load_policy_file(DEFAULT_POLICY_FILE))
        await gateway.open_case(request)
        handle = client.get_workflow_handle_for(ReturnCase.run, request.case_id)
        result = await asyncio.wait_for(handle.result(), timeout=60)
        assert result.status is CaseStatus.REFUSED
        assert worker.poll() is None, log.read_text()
    finally:
        worker.terminate()
        worker.wait(timeout=20)
