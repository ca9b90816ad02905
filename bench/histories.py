"""Benchmark 5: how many history events a case of each kind has when it closes, and a
carrier claim chased for 90 days (continue-as-new keeps every run bounded). The cases
are the replay test's scenarios (tests/histories/record.py), run fresh on the current
code under time skipping."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

from bench.stack import scratch_database, time_skipping_worker
from domain.case import OpenCaseRequest
from domain.claim import CarrierAnswer, CarrierClaimRequest
from domain.money import Money
from domain.policy_settings import PolicySettings
from domain.state import CaseState
from infra.case_messages import WORKFLOW_OF_KIND
from tests.helpers import Handle
from tests.histories.record import PAYMENTS, SCENARIOS
from workflows.carrier_claim import CarrierClaim, ClaimRun
from workflows.case_run import CaseRun

CLAIM_DAYS = 90
RECORDED = Path(__file__).parent.parent / "tests" / "histories"


async def measure_histories() -> dict[str, Any]:
    per_case = {}
    with tempfile.TemporaryDirectory() as folder:
        async with scratch_database(Path(folder)) as pool:
            for name, (request, drive) in SCENARIOS.items():
                per_case[name] = await _case_at_close(pool, request, drive)
                recorded = RECORDED / f"{name}.json"
                if recorded.exists():  # the versioning baseline (docs/versioning.md)
                    per_case[name]["events_recorded_at_baseline"] = len(
                        json.loads(recorded.read_text())["events"]
                    )
            claim_runs = await _claim_chased_for_90_days(pool)
    return {
        "per_case_at_close": per_case,
        "carrier_claim_90_days": {
            "runs": len(claim_runs),
            "events_per_run": claim_runs,
            "largest_run": max(claim_runs),
            "continue_as_new_after_events": ClaimRun.model_fields[
                "history_events_before_continue"
            ].default,
            "target": "<= 4000 events",
        },
    }


async def _case_at_close(
    pool: asyncpg.Pool, request: OpenCaseRequest, drive: Callable[[Handle], Awaitable[None]]
) -> dict[str, Any]:
    # The scenarios' own payment provider: one of them is about a refund it declines.
    async with time_skipping_worker(pool, PAYMENTS) as (env, queue):
        handle = await env.client.start_workflow(
            WORKFLOW_OF_KIND[request.kind].__name__, CaseRun(request=request),
            id=request.case_id, task_queue=queue, result_type=CaseState,
        )  # fmt: skip
        await drive(handle)
        closed = await handle.result()
        history = await handle.fetch_history()
    return {"kind": request.kind.value, "status": closed.status.value,
            "events": len(history.events)}  # fmt: skip


def a_claim(claim_id: str, case_id: str) -> ClaimRun:
    """A claim with DHL for 100.00 EUR, filed now under the default policy."""
    return ClaimRun(
        request=CarrierClaimRequest(
            claim_id=claim_id, case_id=case_id, carrier="DHL",
            amount=Money(amount_minor=10_000, currency="EUR"),
            deadline_counts_from=datetime.now(UTC), policy=PolicySettings(),
        ),
    )  # fmt: skip


async def _claim_chased_for_90_days(pool: asyncpg.Pool) -> list[int]:
    """History events of each run of a claim the carrier answers only after 90 days."""
    async with time_skipping_worker(pool) as (env, queue):
        run = a_claim("bench-claim-90", "damage_claim-B-1-r1")
        claim = await env.client.start_workflow(
            CarrierClaim.run, run, id=run.request.claim_id, task_queue=queue
        )
        await env.sleep(timedelta(days=CLAIM_DAYS))
        await claim.signal(
            CarrierClaim.carrier_response,
            CarrierAnswer(response_id="dhl-90", accepted=True,
                            recovered=Money(amount_minor=7_000, currency="EUR")),
        )  # fmt: skip
        await claim.result()
        return await _events_per_run(env.client, run.request.claim_id, claim.result_run_id)


async def _events_per_run(client: Client, workflow_id: str, first_run: str | None) -> list[int]:
    """Follows the chain of runs from the first, through each continue-as-new."""
    sizes = []
    run_id = first_run
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        sizes.append(len(history.events))
        last = history.events[-1]
        continued = last.HasField("workflow_execution_continued_as_new_event_attributes")
        attributes = last.workflow_execution_continued_as_new_event_attributes
        run_id = attributes.new_execution_run_id if continued else None
    return sizes
