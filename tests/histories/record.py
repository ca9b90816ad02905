"""Record real histories of case runs for the replay test.

`.venv/bin/python -m tests.histories.record` records each scenario whose file does not
exist yet. Never re-record an existing file: each stands for cases already running in
production, which every later version of the code must still replay."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from activities.notifications import RecordingNotifier
from activities.payments import SandboxPaymentProvider
from domain.case import (
    CompensationOffer,
    EscalationRequest,
    EvidenceSubmitted,
    Grade,
    OpenCaseRequest,
    Reason,
    Role,
    ScanEvent,
    ShippedBack,
    WarehouseScan,
)
from domain.money import Money
from infra.database import create_pool, migrate
from infra.devstack import start_embedded_postgres, start_time_skipping_server
from tests.conftest import a_request
from tests.helpers import Handle
from worker import build_worker
from workflows.case_run import CaseRun
from workflows.return_case import ReturnCase

HERE = Path(__file__).parent
TASK_QUEUE = "record-histories"
AT = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)


def _scan(scan_id: str, event: ScanEvent, grade: Grade | None = None) -> WarehouseScan:
    return WarehouseScan(scan_id=scan_id, event=event, station="DOCK-1", grade=grade, scanned_at=AT)


async def _ship_and_pass(handle: Handle, grade: Grade = Grade.RESELLABLE) -> None:
    shipped = ShippedBack(event_id="e1", carrier="DHL", tracking_number="T1", shipped_at=AT,
                          postage=Money(amount_minor=690, currency="EUR"))  # fmt: skip
    await handle.signal(ReturnCase.shipped_back, shipped)
    await handle.signal(ReturnCase.warehouse_scan, _scan("dock-1", ScanEvent.PARCEL_RECEIVED))
    await handle.signal(ReturnCase.warehouse_scan, _scan("dock-1", ScanEvent.PARCEL_RECEIVED))
    await handle.signal(ReturnCase.warehouse_scan, _scan("qc-1", ScanEvent.INSPECTED, grade))


async def _nothing(handle: Handle) -> None:
    del handle


async def _rejected_at_inspection(handle: Handle) -> None:
    await handle.signal(
        ReturnCase.warehouse_scan, _scan("qc-2", ScanEvent.INSPECTED, Grade.DAMAGED)
    )


async def _reviewed_escalated_compensated(handle: Handle) -> None:
    await handle.signal(ReturnCase.evidence_submitted,
                        EvidenceSubmitted(event_id="ev-1", photos=["p1.jpg"]))  # fmt: skip
    await handle.execute_update(
        ReturnCase.escalate,
        EscalationRequest(action_id="x-1", actor="agent-ann", role=Role.AGENT, reason="unsure"),
    )
    await handle.execute_update(
        ReturnCase.offer_compensation,
        CompensationOffer(action_id="c-1", actor="sup-sam", role=Role.SUPERVISOR,
                          amount=Money(amount_minor=1_500, currency="EUR"), reason="goodwill"),
    )  # fmt: skip
    await _ship_and_pass(handle, Grade.DAMAGED)


Scenario = tuple[OpenCaseRequest, Callable[[Handle], Awaitable[None]]]
SCENARIOS: dict[str, Scenario] = {
    "return_refunded": (a_request(order_id="HIST-1"), _ship_and_pass),
    "return_rejected": (a_request(order_id="HIST-2"), _rejected_at_inspection),
    "return_refused": (a_request(order_id="HIST-3", requested_after=timedelta(days=9)), _nothing),
    "return_abandoned": (a_request(order_id="HIST-4"), _nothing),
    "return_quality_defect_auto_approved": (
        a_request(order_id="HIST-5", reason=Reason.QUALITY_DEFECT),
        _reviewed_escalated_compensated,
    ),
    "return_not_as_described_no_evidence": (
        a_request(order_id="HIST-6", reason=Reason.NOT_AS_DESCRIBED),
        _nothing,
    ),
}


async def main() -> None:
    missing = {name: s for name, s in SCENARIOS.items() if not (HERE / f"{name}.json").exists()}
    if not missing:
        print("every scenario is recorded already")
        return
    with tempfile.TemporaryDirectory() as tmp:
        pool = await create_pool(start_embedded_postgres(Path(tmp) / "pg", delete_on_exit=True))
        await migrate(pool)
        env = await start_time_skipping_server()
        worker = build_worker(
            env.client,
            pool=pool,
            task_queue=TASK_QUEUE,
            payments=SandboxPaymentProvider(),
            notifier=RecordingNotifier(),
        )
        async with worker:
            for name, (request, drive) in missing.items():
                handle = await env.client.start_workflow(
                    ReturnCase.run, CaseRun(request=request), id=request.case_id,
                    task_queue=TASK_QUEUE,
                )  # fmt: skip
                await drive(handle)
                await handle.result()
                history = await handle.fetch_history()
                (HERE / f"{name}.json").write_text(history.to_json())
                print(f"recorded {name}: {len(history.events)} events")
        await env.shutdown()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
