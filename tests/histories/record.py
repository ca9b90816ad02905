"""Record real histories of ReturnCase runs for the replay test.

Run once per new workflow shape (`.venv/bin/python -m tests.histories.record`), commit
the JSON, and never re-record an existing file: those stand for cases already running in
production, which every later version of the code must still replay."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from activities.notifications import RecordingNotifier
from activities.payments import SandboxPaymentProvider
from domain.case import Grade, OpenCaseRequest, ScanEvent, ShippedBack, WarehouseScan
from infra.database import create_pool, migrate
from infra.devstack import start_embedded_postgres, start_time_skipping_server
from tests.conftest import a_request
from worker import build_worker
from workflows.case_run import CaseRun
from workflows.return_case import ReturnCase

HERE = Path(__file__).parent
TASK_QUEUE = "record-histories"


def _scan(scan_id: str, event: ScanEvent, grade: Grade | None = None) -> WarehouseScan:
    at = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
    return WarehouseScan(scan_id=scan_id, event=event, station="DOCK-1", grade=grade, scanned_at=at)


async def main() -> None:
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
            scenarios: dict[str, tuple[OpenCaseRequest, list[ShippedBack | WarehouseScan]]] = {
                "return_refunded": (
                    a_request(order_id="HIST-1"),
                    [
                        ShippedBack(
                            event_id="e1",
                            carrier="DHL",
                            tracking_number="T1",
                            shipped_at=datetime(2026, 11, 4, tzinfo=UTC),
                        ),
                        _scan("dock-1", ScanEvent.PARCEL_RECEIVED),
                        _scan("dock-1", ScanEvent.PARCEL_RECEIVED),
                        _scan("qc-1", ScanEvent.INSPECTED, Grade.RESELLABLE),
                    ],
                ),
                "return_rejected": (
                    a_request(order_id="HIST-2"),
                    [_scan("qc-2", ScanEvent.INSPECTED, Grade.DAMAGED)],
                ),
                "return_refused": (
                    a_request(order_id="HIST-3", requested_after=timedelta(days=9)),
                    [],
                ),
                "return_abandoned": (a_request(order_id="HIST-4"), []),
            }
            for name, (request, messages) in scenarios.items():
                handle = await env.client.start_workflow(
                    ReturnCase.run, CaseRun(request=request), id=request.case_id,
                    task_queue=TASK_QUEUE,
                )  # fmt: skip
                for message in messages:
                    if isinstance(message, ShippedBack):
                        await handle.signal(ReturnCase.shipped_back, message)
                    else:
                        await handle.signal(ReturnCase.warehouse_scan, message)
                await handle.result()
                history = await handle.fetch_history()
                (HERE / f"{name}.json").write_text(history.to_json())
                print(f"recorded {name}: {len(history.events)} events")
        await env.shutdown()
        await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
