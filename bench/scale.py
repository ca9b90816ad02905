"""Benchmark 4: 10,000 open cases, each waiting on a timer (the R12 ship-back reminder).
Memory per case in the worker (every case cached) and in the server, PostgreSQL's size per
case, and the opening rate with 10,000 cases open against the rate with 1,000 open."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.intake import open_through_api
from bench.measure import CONCURRENCY, rate
from bench.stack import Stack, running_stack

FEW = 1_000
MANY = 10_000
SAMPLE = 200
_CASE_TYPES = "WorkflowType IN ('ReturnCase', 'ExchangeCase', 'DamageClaimCase')"


async def measure_scale(stack: Stack, run: str) -> dict[str, Any]:
    prefix = f"S{run}"
    stack.start_worker()
    opened = 0

    async def open_cases(count: int) -> float:
        nonlocal opened
        first = opened
        opened += count
        per_s = await rate(count, lambda i: open_through_api(stack, prefix, first + i),
                           concurrency=CONCURRENCY)  # fmt: skip

        await stack.until_cases(prefix, "awaiting_ship_back", opened, within_s=900)
        return per_s

    async def open_now() -> int:
        counted = await stack.client.count_workflows(f"{_CASE_TYPES} AND ExecutionStatus='Running'")
        return counted.count

    async def snapshot() -> dict[str, int]:
        return {
            "open_cases": await open_now(),
            "worker_rss_kib": stack.rss_kib("worker"),
            "server_rss_kib": stack.rss_kib("server"),
            "database_bytes": await stack.pool.fetchval(
                "SELECT pg_database_size(current_database())"
            ),
        }

    await open_cases(max(FEW - SAMPLE - await open_now(), 0))
    at_few = await open_cases(SAMPLE)
    few = await snapshot()
    await open_cases(max(MANY - SAMPLE - few["open_cases"], 0))
    at_many = await open_cases(SAMPLE)
    many = await snapshot()
    added = many["open_cases"] - few["open_cases"]
    recorded = await stack.pool.fetchval(
        "SELECT count(*) FROM cases WHERE order_id LIKE $1 AND status = 'awaiting_ship_back'",
        f"{prefix}-%",
    )

    def per_case(key: str, unit: int) -> float:
        return round((many[key] - few[key]) * unit / added / 1024, 1)

    return {
        "at_1k": few,
        "at_10k": many,
        "worker_kib_per_cached_case": per_case("worker_rss_kib", 1024),
        "server_kib_per_case": per_case("server_rss_kib", 1024),
        "database_kib_per_case": per_case("database_bytes", 1),
        "targets": {"worker": "<= 100 KB", "server_or_database": "<= 50 KB"},
        "opened_through_api": opened,
        "recorded_waiting_for_ship_back": recorded,
        "opening_rate": {
            "api_per_s_at_1k_open": round(at_few, 1),
            "api_per_s_at_10k_open": round(at_many, 1),
            "drop": round(1 - at_many / at_few, 3),
            "target": "drop <= 25%",
            "note": "measured with the worker busy starting the new cases",
        },
    }


FILE_CASES = 500


async def measure_file_server() -> dict[str, Any]:
    """The server's own storage per case, on a file-backed dev server: its SQLite file
    (with the write-ahead log) before and after opening cases that wait on timers."""
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "temporal.db"
        async with running_stack(Path(folder), server_file=database) as stack:
            stack.start_worker()
            await rate(50, lambda i: open_through_api(stack, "F0", i), concurrency=CONCURRENCY)
            await stack.until_cases("F0", "awaiting_ship_back", 50, within_s=300)
            before = _size(database)
            await rate(FILE_CASES, lambda i: open_through_api(stack, "F", i),
                       concurrency=CONCURRENCY)  # fmt: skip
            await stack.until_cases("F", "awaiting_ship_back", FILE_CASES, within_s=300)
            after = _size(database)
    return {
        "cases": FILE_CASES,
        "server_file_kib_per_case": round((after - before) / FILE_CASES / 1024, 1),
        "target": "<= 50 KB",
    }


def _size(database: Path) -> int:
    return sum(p.stat().st_size for p in database.parent.glob(f"{database.name}*"))
