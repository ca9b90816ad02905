"""Benchmark 2: from a scan sent through the API to its effect being visible, in the case's
query and in the PostgreSQL read model, against a bare Update round trip (the fastest way
Temporal offers to change a workflow and see the change)."""

from __future__ import annotations

import time
from typing import Any

from temporalio.worker import Worker

from bench.intake import BARE_QUEUE, case_id, open_through_api, scan_body
from bench.measure import CONCURRENCY, latencies_ms, percentiles, rate, until
from bench.noop import NoOp
from bench.stack import SCANNER, Stack
from domain.state import CaseStatus
from domain.view import CaseView
from workflows.return_case import ReturnCase

SEQUENTIAL = 60
CONCURRENT = 160
_POLL_S = 0.002


async def measure_latency(stack: Stack, run: str) -> dict[str, Any]:
    prefix = f"L{run}"
    stack.start_worker()
    cases = SEQUENTIAL + CONCURRENT
    await rate(cases, lambda i: open_through_api(stack, prefix, i), concurrency=CONCURRENCY)

    await stack.until_cases(prefix, "awaiting_ship_back", cases, within_s=300)
    query_ms: dict[int, float] = {}
    read_model_ms: dict[int, float] = {}

    async def scan_until_visible(i: int) -> None:
        """The read model is polled every 2 ms (a cheap indexed read); once it shows the
        scan, one query confirms the case's own state does too. Polling queries that fast
        would itself load the worker: each query is a round trip to it."""
        started = time.perf_counter()
        scan = scan_body(prefix, i, f"{prefix}-scan-{i}")
        await stack.post("/scans", {"scans": [scan]}, SCANNER)

        async def in_read_model() -> bool:
            status = await stack.pool.fetchval(
                "SELECT status FROM cases WHERE case_id = $1", case_id(prefix, i)
            )
            return bool(status == CaseStatus.AWAITING_INSPECTION.value)

        await until(in_read_model, every_s=_POLL_S, within_s=60)
        read_model_ms[i] = (time.perf_counter() - started) * 1000
        handle = stack.client.get_workflow_handle(case_id(prefix, i))
        state = await handle.query(ReturnCase.state.__name__, result_type=CaseView)
        if state.status is not CaseStatus.AWAITING_INSPECTION:
            raise AssertionError(f"{handle.id}: the read model ran ahead of the case")
        query_ms[i] = (time.perf_counter() - started) * 1000

    await latencies_ms(SEQUENTIAL, scan_until_visible, concurrency=1)
    sequential = (dict(query_ms), dict(read_model_ms))
    query_ms.clear()
    read_model_ms.clear()
    await latencies_ms(
        CONCURRENT, lambda i: scan_until_visible(SEQUENTIAL + i), concurrency=CONCURRENCY
    )
    concurrent = (query_ms, read_model_ms)

    async with Worker(stack.client, task_queue=BARE_QUEUE, workflows=[NoOp]):
        handles = [
            await stack.client.start_workflow(
                NoOp.run, id=f"noop-latency-{run}-{i}", task_queue=BARE_QUEUE
            )
            for i in range(CONCURRENCY)
        ]
        # Warm: every handle's first update also waits for its workflow's first task.
        await rate(CONCURRENCY, lambda i: handles[i].execute_update(NoOp.bump),
                   concurrency=CONCURRENCY)  # fmt: skip
        bare_one = await latencies_ms(
            SEQUENTIAL, lambda i: handles[0].execute_update(NoOp.bump), concurrency=1
        )
        bare_many = await latencies_ms(
            CONCURRENT,
            lambda i: handles[i % CONCURRENCY].execute_update(NoOp.bump),
            concurrency=CONCURRENCY,
        )

    return {
        "one_at_a_time": _side(sequential, bare_one),
        f"{CONCURRENCY}_concurrent": _side(concurrent, bare_many),
        "poll_interval_ms": _POLL_S * 1000,
        "how": "POST /scans (one scan), then the read model polled until it shows the "
        "parcel received; scan_to_query adds one confirming query",
    }


def _side(measured: tuple[dict[int, float], dict[int, float]], bare: list[float]) -> dict[str, Any]:
    query, read_model = (percentiles(list(m.values())) for m in measured)
    base = percentiles(bare)
    return {
        "scan_to_query": query,
        "scan_to_read_model": read_model,
        "bare_update": base,
        "p99_ratio_query": round(query["p99_ms"] / base["p99_ms"], 2),
        "p99_ratio_read_model": round(read_model["p99_ms"] / base["p99_ms"], 2),
    }
