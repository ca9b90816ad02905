"""Issue 16, item 4: a carrier's credential answers its own carriers' claims only, and the
claim's ledger names the client that answered (R15, R23). Before: a `carrier` client made
for UPS settled a DHL claim with 120.00 EUR recovered, and `claim_events` did not say
which client answered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from domain.case import CaseKind, Reason, Role
from infra.security.identity import MachineClients
from tests.conftest import a_request, eventually
from tests.helpers import as_role
from tests.identities import IDENTITIES
from workflows.carrier_claim import CarrierClaim

NOTE = f"note-from-the-carrier-{uuid.uuid4().hex[:8]}"


def answer(response_id: str, minor: int) -> dict[str, Any]:
    return {"response_id": response_id, "accepted": True, "note": NOTE,
            "recovered": {"amount_minor": minor, "currency": "EUR"}}  # fmt: skip


def desk(name: str, *carriers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {IDENTITIES.credential(name, Role.CARRIER, carriers)}"}


async def a_dhl_claim(api: httpx.AsyncClient) -> str:
    """A parcel DHL lost (R8), approved: its claim against DHL runs (R15)."""
    now = datetime.now(UTC)
    body = a_request(
        kind=CaseKind.DAMAGE_CLAIM,
        reason=Reason.LOST_IN_TRANSIT,
        carrier="DHL",
        delivered_at=now - timedelta(days=2),
        requested_after=timedelta(days=1),
    )
    opened = await api.post("/cases", json=body.model_dump(mode="json", exclude_none=True),
                            headers=as_role("service"))  # fmt: skip
    status_url = opened.json()["status_url"]

    async def read() -> dict[str, Any]:
        found: dict[str, Any] = (await api.get(status_url, headers=as_role("agent"))).json()
        return found

    await eventually(read, lambda case: case.get("status") == "under_review")
    decision = {"action_id": "d-1", "approve": True, "root_cause": "handling"}
    approved = await api.post(f"{status_url}/decision", json=decision,
                              headers=as_role("agent", "agent-ann"))  # fmt: skip
    assert approved.status_code == 200, approved.text
    case = await eventually(read, lambda case: case.get("carrier_claim_id") is not None)
    claim_id: str = case["carrier_claim_id"]
    return claim_id


async def test_a_ups_client_cannot_answer_a_dhl_claim_and_learns_nothing_r15(
    api: httpx.AsyncClient, dev_env: WorkflowEnvironment, pool: asyncpg.Pool
) -> None:  # R15, R23
    claim_id = await a_dhl_claim(api)
    path = f"/claims/{claim_id}/carrier-response"
    ups = await api.post(path, json=answer("ups-1", 12_000), headers=desk("ups-desk", "UPS"))
    nowhere = f"claim-damage_claim-{uuid.uuid4().hex[:8]}-1-r1"
    unknown = await api.post(f"/claims/{nowhere}/carrier-response", json=answer("ups-2", 1),
                             headers=desk("ups-desk", "UPS"))  # fmt: skip
    # 404, in the very words an unknown claim gets: no confirmation that DHL has a claim.
    assert (ups.status_code, unknown.status_code) == (404, 404)
    assert ups.json()["detail"].replace(claim_id, "X") == unknown.json()["detail"].replace(
        nowhere, "X"
    )
    # The person who looks at the kept answer is told why.
    kept = await pool.fetchval(
        "SELECT errors->>'message' FROM refused_inputs WHERE operation = $1",
        f"carrier_response {claim_id}",
    )
    assert "ups-desk answers for ['UPS'], the claim is against DHL" in kept
    dhl = await api.post(path, json=answer("dhl-1", 4_000), headers=desk("dhl-desk", "DHL"))
    assert dhl.status_code == 202, dhl.text
    claim = dev_env.client.get_workflow_handle_for(CarrierClaim.run, claim_id)
    state = await eventually(
        lambda: claim.query(CarrierClaim.state), lambda s: s.response is not None
    )
    assert state.response is not None
    assert (state.response.response_id, state.response.answered_by) == ("dhl-1", "dhl-desk")
    assert state.recovered.amount_minor == 4_000  # never UPS's 120.00
    row = await eventually(
        lambda: pool.fetchrow(
            "SELECT answered_by, reason FROM claim_events WHERE claim_id = $1 "
            "AND action = 'carrier_answered'",
            claim_id,
        ),
        lambda found: found is not None,
    )
    assert row is not None
    assert row["answered_by"] == "dhl-desk"
    # Issue 16, item 3: the carrier's note is its free text; the ledger's reason is ours.
    assert NOTE not in row["reason"]
    assert state.response.note == NOTE  # kept in the claim


def test_a_carrier_client_names_its_carriers_and_no_other_client_names_any(
    tmp_path: Any,
) -> None:  # R15
    clients = MachineClients(tmp_path / "clients.json")
    with pytest.raises(ValueError, match="names the carriers"):
        clients.add("desk", Role.CARRIER)
    with pytest.raises(ValueError, match="only a carrier client"):
        clients.add("shop", Role.SERVICE, ["DHL"])
    credential = clients.add("desk", Role.CARRIER, ["DHL", "UPS"])
    assert clients.verify(credential).carriers == {"DHL", "UPS"}
