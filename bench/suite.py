"""Benchmark 6: how long `make test`'s pytest takes, and what one scenario that lives
through a 30-day timer (a carrier claim left unanswered until R15 escalates it) costs in
wall time under time skipping."""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.histories import a_claim
from bench.stack import scratch_database, time_skipping_worker
from tests.processes import ROOT
from workflows.carrier_claim import CarrierClaim

SCENARIO_RUNS = 5


async def measure_suite() -> dict[str, Any]:
    started = time.perf_counter()
    tests = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await tests.communicate()
    suite_s = time.perf_counter() - started
    summary = out.decode().strip().splitlines()
    with tempfile.TemporaryDirectory() as folder:
        async with scratch_database(Path(folder)) as pool:
            scenario_s = [await _thirty_days_unanswered(pool, n) for n in range(SCENARIO_RUNS)]
    return {
        "pytest_wall_s": round(suite_s, 1),
        "pytest_summary": _summary_line(summary),
        "pytest_passed": tests.returncode == 0,
        # Which tests failed or errored, so a bad run can be told from a slow one.
        "pytest_problems": [line for line in summary if line.startswith(("ERROR ", "FAILED "))],
        "thirty_day_timer_scenario_s": {
            "median": round(statistics.median(scenario_s), 2),
            "max": round(max(scenario_s), 2),
            "runs": SCENARIO_RUNS,
            "scenario": "carrier claim filed, 30 days without an answer, escalated (R15)",
        },
    }


def _summary_line(lines: list[str]) -> str:
    """pytest's own last line ("N passed in S s"): servers stopping after the tests may
    print theirs later."""
    for line in reversed(lines):
        if re.search(r"\b(passed|failed|error|no tests ran)\b.* in [0-9.]+s", line):
            return line.strip("= ")
    return lines[-1] if lines else ""


async def _thirty_days_unanswered(pool: asyncpg.Pool, n: int) -> float:
    async with time_skipping_worker(pool) as (env, queue):
        started = time.perf_counter()
        run = a_claim(f"bench-claim-30-{n}", f"damage_claim-B30-{n}-1-r1")
        claim = await env.client.start_workflow(
            CarrierClaim.run, run, id=run.request.claim_id, task_queue=queue
        )
        await env.sleep(timedelta(days=30, hours=1))
        state = await claim.query(CarrierClaim.state)
        if state.escalated_at is None:
            raise AssertionError("R15: a claim unanswered for 30 days was not escalated")
        return time.perf_counter() - started
