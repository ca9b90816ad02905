"""Benchmark 7: what sealing personal data costs. The same stack runs a second API and
worker whose codec changes nothing (bench/unsealed.py), on a task queue of their own;
opening rate and scan latency are measured on both in alternating rounds, as a ratio."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.intake import case_body, case_id, scan_body
from bench.measure import CONCURRENCY, Side, interleaved_rates, percentiles, until
from bench.stack import SCANNER, SERVICE, Stack, until_up
from domain.state import CaseStatus
from tests.processes import free_port, start_process

UNSEALED_QUEUE = "bench-unsealed"
CASES = 400
ROUNDS = 4
SCANS = 200  # per side, one at a time, alternating
_POLL_S = 0.002


async def measure_codec(stack: Stack, run: str) -> dict[str, Any]:
    env = stack.env() | {"AFTERSALES_TASK_QUEUE": UNSEALED_QUEUE}
    port = free_port()
    for name, command in (("api-unsealed", "api"), ("worker-unsealed", "worker")):
        stack.processes[name] = start_process(
            [sys.executable, "-m", "bench.unsealed", command],
            env | {"AFTERSALES_API_PORT": str(port)},
            stack.folder / f"{name}.log",
        )[0]
    stack.start_worker()
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{port}",
        timeout=aiohttp.ClientTimeout(total=30),
        connector=aiohttp.TCPConnector(limit=50, keepalive_timeout=2),
    ) as unsealed_api:
        await until_up(unsealed_api)
        apis = {"sealed": stack.api, "unsealed": unsealed_api}
        prefixes = {side: f"C{side[0].upper()}{run}" for side in apis}

        async def post(side: str, path: str, body: dict[str, Any], headers: dict[str, str]
                       ) -> None:  # fmt: skip
            async with apis[side].post(path, json=body, headers=headers) as response:
                response.raise_for_status()
                await response.read()

        per_round = CASES // ROUNDS
        opened = per_round * ROUNDS

        def opening(side: str, first: int) -> Side:
            return Side(per_round, lambda i: post(side, "/cases",
                        case_body(prefixes[side], first + i), SERVICE))  # fmt: skip

        # Rounds alternate which side goes first as well: the second one finds the workers
        # still busy with the first one's new cases.
        elapsed = dict.fromkeys(apis, 0.0)
        for number in range(ROUNDS):
            order = sorted(apis, reverse=number % 2 == 1)
            sides = {side: opening(side, number * per_round) for side in order}
            for side, rate_per_s in (await interleaved_rates(sides, rounds=1)).items():
                elapsed[side] += per_round / rate_per_s
        rates = {side: opened / elapsed[side] for side in apis}
        for prefix in prefixes.values():
            await stack.until_cases(prefix, "awaiting_ship_back", opened, within_s=600)

        taken = await _scan_latencies(stack, post, prefixes)
    for name in ("api-unsealed", "worker-unsealed"):
        stack.stop(name)
    latency = {side: percentiles(ms) for side, ms in taken.items()}
    return {
        "opening_rate": {
            "sealed_per_s": round(rates["sealed"], 1),
            "unsealed_per_s": round(rates["unsealed"], 1),
            "ratio": round(rates["sealed"] / rates["unsealed"], 3),
            "cases_per_side": opened,
            "concurrency": CONCURRENCY,
            "rounds": f"{ROUNDS}, sealed and unsealed alternating, each first in half of them",
        },
        "scan_to_read_model": {
            "sealed": latency["sealed"],
            "unsealed": latency["unsealed"],
            "p50_ratio": round(latency["sealed"]["p50_ms"] / latency["unsealed"]["p50_ms"], 3),
            "p99_ratio": round(latency["sealed"]["p99_ms"] / latency["unsealed"]["p99_ms"], 3),
        },
        "how": "both APIs and workers run at once on the same server and PostgreSQL; the "
        "unsealed pair's codec passes payloads through unchanged",
    }


async def _scan_latencies(
    stack: Stack,
    post: Callable[[str, str, dict[str, Any], dict[str, str]], Awaitable[None]],
    prefixes: dict[str, str],
) -> dict[str, list[float]]:
    """Scan -> read model, one scan at a time, the sides taking turns."""
    taken: dict[str, list[float]] = {side: [] for side in prefixes}
    for i in range(SCANS):
        # Which side goes first alternates too: the second may find the worker busier.
        for side, prefix in sorted(prefixes.items(), reverse=i % 2 == 1):
            started = time.perf_counter()
            scan = scan_body(prefix, i, f"{prefix}-scan-{i}")
            await post(side, "/scans", {"scans": [scan]}, SCANNER)

            async def received(prefix: str = prefix, i: int = i) -> bool:
                status = await stack.pool.fetchval(
                    "SELECT status FROM cases WHERE case_id = $1", case_id(prefix, i)
                )
                return bool(status == CaseStatus.AWAITING_INSPECTION.value)

            await until(received, every_s=_POLL_S, within_s=60)
            taken[side].append((time.perf_counter() - started) * 1000)
    return taken
