"""CarrierClaim over stand-in activities (R15): filed within the carrier's deadline,
chased every 7 days, escalated after 30, settled by the carrier's answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.claim import CarrierAnswer, CarrierClaimRequest, ClaimState, ClaimStatus
from domain.policy_settings import PolicySettings
from tests.conftest import eur, eventually
from tests.workflows.standins import StandIns
from workflows.carrier_claim import CarrierClaim, ClaimRun

ClaimHandle = WorkflowHandle[CarrierClaim, ClaimState]


async def start_claim(
    env: WorkflowEnvironment,
    task_queue: str,
    *,
    delivered_days_ago: int,
    policy: PolicySettings | None = None,
) -> ClaimHandle:
    request = CarrierClaimRequest(
        claim_id=f"claim-damage_claim-{uuid.uuid4().hex[:8]}-1-r1",
        case_id="damage_claim-X-1-r1",
        carrier="DHL",
        amount=eur(10_000),
        deadline_counts_from=datetime.now(UTC) - timedelta(days=delivered_days_ago),
        policy=policy or PolicySettings(),
    )
    return await env.client.start_workflow(
        CarrierClaim.run, ClaimRun(request=request), id=request.claim_id, task_queue=task_queue
    )


async def test_r15_a_claim_is_chased_every_7_days_escalated_after_30_and_settled(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    env = time_skipping_env
    async with running_worker(env.client):
        claim = await start_claim(env, task_queue, delivered_days_ago=2)
        filed = await eventually(
            lambda: claim.query(CarrierClaim.state), lambda s: s.filed_at is not None
        )
        assert filed.filed_at is not None
        await env.sleep(timedelta(days=6, hours=23))
        assert (await claim.query(CarrierClaim.state)).chases == []
        await env.sleep(timedelta(hours=2))
        await eventually(lambda: claim.query(CarrierClaim.state), lambda s: len(s.chases) == 1)
        await env.sleep(timedelta(days=22, hours=22))
        before = await eventually(
            lambda: claim.query(CarrierClaim.state), lambda s: len(s.chases) == 4
        )
        assert before.escalated_at is None
        await env.sleep(timedelta(hours=2))
        after = await eventually(
            lambda: claim.query(CarrierClaim.state), lambda s: s.escalated_at is not None
        )
        await claim.signal(
            CarrierClaim.carrier_response,
            CarrierAnswer(response_id="dhl-1", accepted=True, recovered=eur(8_000)),
        )
        settled = await claim.result()
    assert after.escalated_at is not None
    assert after.escalated_at - filed.filed_at >= timedelta(days=30)
    assert settled.status is ClaimStatus.SETTLED
    assert len(standins.chased) == len(settled.chases) == 4
    claim_id = settled.request.claim_id
    assert list(standins.claims_filed) == [claim_id]
    recorded = standins.claim_ledger[claim_id]
    assert recorded[max(recorded)].claim.status is ClaimStatus.SETTLED


async def test_r15_a_claim_after_the_carriers_deadline_is_recorded_as_missed(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    policy = PolicySettings(carrier_claim_deadline=timedelta(days=30))
    async with running_worker(time_skipping_env.client):
        claim = await start_claim(
            time_skipping_env, task_queue, delivered_days_ago=31, policy=policy
        )
        result = await claim.result()
    assert result.status is ClaimStatus.DEADLINE_MISSED
    assert standins.claims_filed == {}
    assert standins.claim_actions(result.request.claim_id) != []
