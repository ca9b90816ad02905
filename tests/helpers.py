"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.workflow import UpdateMethodMultiParam

from api.app import create_app
from domain.case import (
    EvidenceSubmitted,
    Grade,
    OpenCaseRequest,
    Reason,
    Role,
    ScanEvent,
    ShippedBack,
    WarehouseScan,
)
from domain.policy_settings import PolicySettings
from domain.state import CaseState, CaseStatus
from domain.view import CaseView
from infra.case_messages import WORKFLOW_OF_KIND
from infra.gateway import CaseGateway
from tests.conftest import a_request, eventually
from tests.identities import IDENTITIES
from workflows.case_run import CaseRun
from workflows.return_case import ReturnCase

# Any: every case kind shares the query, signals and updates of CaseHandlers.
Handle = WorkflowHandle[Any, CaseState]
Message = TypeVar("Message")


async def open_case(
    env: WorkflowEnvironment, task_queue: str, request: OpenCaseRequest, **run: Any
) -> Handle:
    """Start the case workflow of the request's kind (typed as ReturnCase: every kind
    shares its query, signals and updates through CaseHandlers)."""
    started = await env.client.start_workflow(
        WORKFLOW_OF_KIND[request.kind].__name__,
        CaseRun(request=request, **run),
        id=request.case_id,
        task_queue=task_queue,
        result_type=CaseState,
    )
    # The handle the time-skipping client returns is the one whose result() skips time.
    handle: Handle = started
    return handle


async def sent_together(
    handle: Handle,
    update: UpdateMethodMultiParam[[Any, Message], CaseView],
    messages: Sequence[Message],
) -> tuple[list[CaseView], list[WorkflowUpdateFailedError]]:
    """Send one Update per message at once (a race): the answers applied and refused."""
    answers = await asyncio.gather(
        *(handle.execute_update(update, m) for m in messages), return_exceptions=True
    )
    applied = [a for a in answers if isinstance(a, CaseView)]
    refused = [a for a in answers if isinstance(a, WorkflowUpdateFailedError)]
    assert len(applied) + len(refused) == len(messages), answers
    return applied, refused


async def state_when(handle: Handle, accept: Callable[[CaseView], bool]) -> CaseView:
    return await eventually(lambda: handle.query(ReturnCase.state), accept)


# The history events of a workflow task's life, from scheduled to its end.
_WORKFLOW_TASK_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
}


def _no_workflow_task_in_flight(history: WorkflowHistory) -> bool:
    """The run's last workflow task completed, and none is scheduled since."""
    tasks = [e.event_type for e in history.events if e.event_type in _WORKFLOW_TASK_EVENTS]
    return tasks[-1] == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED


async def settled_state(handle: Handle) -> CaseView:
    """The case's view, asked only once no workflow task of its current run is in flight.

    The time-skipping test server (sdk-java's) loses a query that reaches it while a
    workflow task that continues as new is running: it buffers the query, then fails that
    completion after it has already started the new run ("workflow execution already
    completed"), so the query is never answered (query deadline exceeded) and the old
    run's hold on time skipping is never released (env.sleep hangs). A case that can
    continue as new at any turn is queried there only when settled."""
    history = await eventually(handle.fetch_history, _no_workflow_task_in_flight)
    assert _no_workflow_task_in_flight(history), "the case kept a workflow task in flight"
    return await handle.query(ReturnCase.state)


async def settled_state_when(handle: Handle, accept: Callable[[CaseView], bool]) -> CaseView:
    """`state_when` for a case that continues as new often (see `settled_state`)."""
    return await eventually(lambda: settled_state(handle), accept)


def scan(
    event: ScanEvent, *, scan_id: str | None = None, grade: Grade | None = None
) -> WarehouseScan:
    return WarehouseScan(
        scan_id=scan_id or f"scan-{uuid.uuid4().hex[:8]}",
        event=event,
        station="DOCK-1" if event is ScanEvent.PARCEL_RECEIVED else "QC-1",
        grade=grade,
        scanned_at=datetime.now(UTC),
    )


def shipped(event_id: str = "ship-1") -> ShippedBack:
    return ShippedBack(
        event_id=event_id, carrier="DHL", tracking_number="JD0001", shipped_at=datetime.now(UTC)
    )


async def events(pool: asyncpg.Pool, case_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT seq, action, rule_id, reason, status_after, details, actor FROM case_events "
        "WHERE case_id = $1 ORDER BY seq",
        case_id,
    )


def local_activities(history: WorkflowHistory) -> list[dict[str, Any]]:
    """What the SDK recorded of each local activity (type, attempt, ...), in order."""
    return [
        json.loads(event.marker_recorded_event_attributes.details["data"].payloads[0].data)
        for event in history.events
        if event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]


@asynccontextmanager
async def api_client(
    gateway: CaseGateway, host: str = "localhost"
) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API in this process (ASGI), called as a client would, on loopback as a
    local run serves it (`host`: another name it is reached by); it trusts the
    identities of tests/identities.py (`as_role`)."""
    transport = httpx.ASGITransport(app=create_app(gateway, IDENTITIES.authenticator))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as client:
        yield client


def as_role(role: Role | str, actor: str | None = None) -> dict[str, str]:
    """Headers of a caller proven in `role`: a staff token, or a machine's credential."""
    return IDENTITIES.bearer(role, actor)


def photos(event_id: str = "ev-1") -> EvidenceSubmitted:
    return EvidenceSubmitted(event_id=event_id, photos=["https://photos.example/crack.jpg"])


async def under_review(
    env: WorkflowEnvironment, task_queue: str, policy: PolicySettings | None = None, **request: Any
) -> Handle:
    """A merchant-fault case (R6, a quality defect unless `reason` says otherwise) with its
    photos in, waiting for the agent (R10)."""
    pinned = {"policy": policy} if policy else {}
    opened = a_request(**({"reason": Reason.QUALITY_DEFECT} | request))
    handle = await open_case(env, task_queue, opened, **pinned)
    await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_EVIDENCE)
    await handle.signal(ReturnCase.evidence_submitted, photos())
    await state_when(handle, lambda s: s.status is CaseStatus.UNDER_REVIEW)
    return handle


def fresh_grant_key_pem() -> bytes:
    """A grant signing key no development folder holds (PEM, unencrypted)."""
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
