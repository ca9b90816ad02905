"""Benchmark 5: how many history events a case of each kind has when it closes, and a
carrier claim chased for 90 days (continue-as-new keeps every run bounded). The cases
are the replay test's scenarios (tests/histories/record.py), run fresh on the current
code under time skipping."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client

from bench.stack import time_skipping_worker
from domain.claim import CarrierClaimRequest, CarrierResponse
from domain.money import Money
from domain.policy_settings import PolicySettings
from domain.state import CaseState
from infra.gateway import WORKFLOW_OF_KIND
from tests.histories.record import SCENARIOS
from workflows.carrier_claim import CarrierClaim, ClaimRun
from workflows.case_run import CaseRun

CLAIM_DAYS = 90


async def measure_histories() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        async with time_skipping_worker(Path(folder) / "cases") as (env, queue):
            per_case = {}
            for name, (request, drive) in SCENARIOS.items():
                handle = await env.client.start_workflow(
                    WORKFLOW_OF_KIND[request.kind].__name__, CaseRun(request=request),
                    id=f"bench-{request.case_id}", task_queue=queue, result_type=CaseState,
                )  # fmt: skip
                await drive(handle)
                closed = await handle.result()
                history = await handle.fetch_history()
                per_case[name] = {"kind": request.kind.value, "status": closed.status.value,
                                  "events": len(history.events)}  # fmt: skip
        # A server of its own: its clock must not wait on the cases' leftover surveys.
        async with time_skipping_worker(Path(folder) / "claim") as (env, queue):
            run = ClaimRun(
                request=CarrierClaimRequest(
                    claim_id="bench-claim-90", case_id="damage_claim-B-1-r1", carrier="DHL",
                    amount=Money(amount_minor=10_000, currency="EUR"),
                    deadline_counts_from=datetime.now(UTC), policy=PolicySettings(),
                ),
            )  # fmt: skip
            claim = await env.client.start_workflow(
                CarrierClaim.run, run, id=run.request.claim_id, task_queue=queue
            )
            await env.sleep(timedelta(days=CLAIM_DAYS))
            await claim.signal(
                CarrierClaim.carrier_response,
                CarrierResponse(response_id="dhl-90", accepted=True,
                                recovered=Money(amount_minor=7_000, currency="EUR")),
            )  # fmt: skip
            await claim.result()
            runs = await _events_per_run(env.client, run.request.claim_id, claim.result_run_id)
    return {
        "per_case_at_close": per_case,
        "carrier_claim_90_days": {
            "runs": len(runs),
            "events_per_run": runs,
            "largest_run": max(runs),
            "continue_as_new_after_events": run.history_events_before_continue,
            "target": "<= 4000 events",
        },
    }


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
