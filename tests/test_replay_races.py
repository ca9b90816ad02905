"""Histories recorded from racing messages replay (issue 10's TMPRL1100): on one case,
two approvals, then at once two inspection-pass scans and a supervisor's compensation,
while an operator's screen polls the case. Where the workflow tasks fall differs from run
to run, so the test races many cases and replays every history it recorded.

The cause it caught: a run's first `workflow.patched(...)` call came right after a local
activity (a ledger step) resolved. When a query or message arrived meanwhile, the live
worker ran that code in the next workflow task and recorded the marker there; a replay
resolves the local activity in the earlier task, calls `patched` before the marker is
announced, takes the old branch and then meets the marker (r13-inspection-deadline...,
r21-refund-capped-at-the-limit, whichever patch came first after such a step)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.converter import DataConverter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from domain.case import CompensationOffer, Grade, ReviewDecision, Role, ScanEvent
from domain.state import CaseStatus
from tests.conftest import eur
from tests.helpers import Handle, scan, state_when, under_review
from worker import STRICT_WORKFLOW_RUNNER, WORKFLOWS
from workflows.return_case import ReturnCase

# Enough races for both orders: on the code with patches, 1 or 2 cases of 20 failed to replay in
# about half the runs, and the live worker failed the same tasks.
RACES = 30


def _approval(n: int) -> ReviewDecision:
    return ReviewDecision(action_id=f"d-{n}", actor=f"agent-{n}", role=Role.AGENT, approve=True)


async def _watch(handle: Handle, until: asyncio.Event) -> None:
    """An operator's screen polling the case, as the API's GET does."""
    while not until.is_set():
        with contextlib.suppress(RPCError, WorkflowQueryFailedError):
            # A query the worker cannot answer (a replay failing) is for the replay below.
            await handle.query(ReturnCase.state)
        await asyncio.sleep(0.05)  # a screen's refresh, not a business timer


async def _race(handle: Handle) -> None:
    closed = asyncio.Event()
    watching = asyncio.create_task(_watch(handle, closed))
    try:
        await _decide_scan_and_offer(handle)
    finally:
        closed.set()
        await watching


async def _decide_scan_and_offer(handle: Handle) -> None:
    approvals = await asyncio.gather(
        *(handle.execute_update(ReturnCase.decide, _approval(n)) for n in (1, 2)),
        return_exceptions=True,
    )
    assert any(not isinstance(a, BaseException) for a in approvals), approvals
    assert all(
        not isinstance(a, BaseException) or isinstance(a, WorkflowUpdateFailedError)
        for a in approvals
    ), approvals
    offer = CompensationOffer(
        action_id="c-1", actor="sup-sam", role=Role.SUPERVISOR, amount=eur(1_500),
        reason="goodwill for the wait",
    )  # fmt: skip
    await asyncio.gather(
        handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)),
        handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)),
        handle.execute_update(ReturnCase.offer_compensation, offer),
    )
    await state_when(handle, lambda s: s.status is CaseStatus.REFUNDED)


async def test_histories_of_racing_decisions_scans_and_offers_replay(  # R10, R17, R21, R26
    dev_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    data_converter: DataConverter,
) -> None:
    async with running_worker(dev_env.client):
        handles = [
            await under_review(dev_env, task_queue, order_id=f"O-race-{task_queue}-{n}")
            for n in range(RACES)
        ]
        await asyncio.gather(*(_race(handle) for handle in handles))
        histories = [await handle.fetch_history() for handle in handles]
    replayer = Replayer(
        workflows=WORKFLOWS, workflow_runner=STRICT_WORKFLOW_RUNNER, data_converter=data_converter
    )
    failures = {}
    for history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures[history.workflow_id] = str(result.replay_failure)
    assert failures == {}
