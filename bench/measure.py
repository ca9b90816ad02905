"""Rates and latencies, measured the same way for aftersales and for its bare baseline."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

CONCURRENCY = 20


async def rate(count: int, one: Callable[[int], Awaitable[Any]], *, concurrency: int) -> float:
    """Operations per second, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> None:
        async with gate:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(limited(i) for i in range(count)))
    return count / (time.perf_counter() - started)


async def latencies_ms(
    count: int, one: Callable[[int], Awaitable[Any]], *, concurrency: int
) -> list[float]:
    gate = asyncio.Semaphore(concurrency)
    taken: list[float] = []

    async def timed(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            await one(i)
            taken.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(timed(i) for i in range(count)))
    return taken


def percentiles(taken: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(taken, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49], 1), "p99_ms": round(cuts[98], 1), "n": len(taken)}


async def until(probe: Callable[[], Awaitable[bool]], *, every_s: float, within_s: float) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within_s
    while not await probe():
        if loop.time() > give_up:
            raise TimeoutError(f"not reached within {within_s} s")
        await asyncio.sleep(every_s)
