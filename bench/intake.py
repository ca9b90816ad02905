"""Benchmarks 1 and 3: how fast cases and scans are taken in through the API, each against
the bare Temporal call it wraps (start a no-op workflow; signal it).

Both sides are measured with no worker polling, so each figure is the intake path alone
(API: HTTP, validation, the PostgreSQL write and the Temporal call). The worker is then
started and drains the backlog: that rate, and every accepted scan being recorded, are
reported too."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.measure import CONCURRENCY, Side, interleaved_rates
from bench.noop import NoOp
from bench.stack import SCANNER, SERVICE, Stack

CASES = 400
ROUNDS = 2
SCAN_BATCH = 10
BARE_QUEUE = "bench-bare"


def case_body(prefix: str, i: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "order_id": f"{prefix}-{i}", "line_id": "1", "request_id": "r1", "kind": "return",
        "reason": "changed_mind", "channel": "web", "sku": "SKU-B",
        "paid": {"amount_minor": 1000, "currency": "EUR"},
        "delivered_at": (now - timedelta(days=1)).isoformat(), "requested_at": now.isoformat(),
        "customer": {"customer_id": f"c{i}", "time_zone": "UTC"},
    }  # fmt: skip


def case_id(prefix: str, i: int) -> str:
    return f"return-{prefix}-{i}-1-r1"


def scan_body(prefix: str, i: int, scan_id: str) -> dict[str, Any]:
    return {"barcode": case_id(prefix, i), "scan_id": scan_id, "event": "parcel_received",
            "station": "DOCK-B", "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip


async def open_through_api(stack: Stack, prefix: str, i: int) -> None:
    await stack.post("/cases", case_body(prefix, i), SERVICE)


async def measure_intake(stack: Stack, run: str) -> dict[str, Any]:
    prefix = f"I{run}"
    client = stack.client

    async def bare_start(i: int) -> None:
        await client.start_workflow(NoOp.run, id=f"noop-{run}-{i}", task_queue=BARE_QUEUE)

    async def bare_signal(i: int) -> None:
        await client.get_workflow_handle(f"noop-{run}-{i}").signal(NoOp.poke)

    async def scan_batch(first: int, size: int) -> None:
        scans = [scan_body(prefix, i, f"{prefix}-scan-{i}") for i in range(first, first + size)]
        await stack.post("/scans", {"scans": scans}, SCANNER)

    opening = await interleaved_rates(
        {
            "bare": Side(CASES, bare_start),
            "api": Side(CASES, lambda i: open_through_api(stack, prefix, i)),
        },
        rounds=ROUNDS,
    )
    half = CASES // 2
    # One scan per request, 20 requests at a time, and batches of 10 with 2 requests at a
    # time: 20 signals in flight in every case, as for the bare signals.
    ingest = await interleaved_rates(
        {
            "bare": Side(CASES, bare_signal),
            "single": Side(half, lambda i: scan_batch(i, 1)),
            "batches": Side(
                half,
                lambda b: scan_batch(half + b * SCAN_BATCH, SCAN_BATCH),
                concurrency=CONCURRENCY // SCAN_BATCH,
                per_call=SCAN_BATCH,
            ),
        },
        rounds=ROUNDS,
    )
    bare_open, api_open = opening["bare"], opening["api"]
    bare_signals, single, batches = ingest["bare"], ingest["single"], ingest["batches"]
    kept = await _drained(stack, prefix)
    return {
        "opening_rate": {
            "api_per_s": round(api_open, 1),
            "bare_start_workflow_per_s": round(bare_open, 1),
            "ratio": round(api_open / bare_open, 3),
            "cases": CASES,
            "concurrency": CONCURRENCY,
            "rounds": f"{ROUNDS}, bare and API alternating",
            "accepted": CASES,
            "stored_in_case_requests": kept["requests"],
            "opened_in_ledger": kept["opened"],
        },
        "scan_ingest_rate": {
            "api_per_s_one_scan_per_request": round(single, 1),
            f"api_per_s_batches_of_{SCAN_BATCH}": round(batches, 1),
            "bare_signal_per_s": round(bare_signals, 1),
            "ratio_one_scan_per_request": round(single / bare_signals, 3),
            f"ratio_batches_of_{SCAN_BATCH}": round(batches / bare_signals, 3),
            "accepted": CASES,
            "stored_in_scans": kept["scans"],
            "applied_by_cases": kept["applied"],
        },
        "worker_drain": {
            "cases_opened_and_scanned_per_s": kept["drained_per_s"],
            "note": "the worker started after intake; rate to every case's scan applied",
        },
    }


async def _drained(stack: Stack, prefix: str) -> dict[str, float]:
    """The worker started on the backlog: how fast it takes every case to its scan, and
    what was kept of every accepted request and scan."""
    started = time.perf_counter()
    stack.start_worker()
    await stack.until_cases(prefix, "awaiting_inspection", CASES, within_s=600)
    drained = CASES / (time.perf_counter() - started)
    counts = {
        "scans": ("SELECT count(*) FROM scans WHERE scan_id LIKE $1", f"{prefix}-scan-%"),
        "applied": (
            "SELECT count(*) FROM case_events WHERE action = 'parcel_received' "
            "AND details->>'scan_id' LIKE $1",
            f"{prefix}-scan-%",
        ),
        "requests": (
            "SELECT count(*) FROM case_requests WHERE request->>'order_id' LIKE $1",
            f"{prefix}-%",
        ),
        "opened": (
            "SELECT count(*) FROM case_events e JOIN cases c USING (case_id) "
            "WHERE e.action = 'case_opened' AND c.order_id LIKE $1",
            f"{prefix}-%",
        ),
    }
    kept = {name: await stack.pool.fetchval(*query) for name, query in counts.items()}
    return kept | {"drained_per_s": round(drained, 1)}
