"""Rates and latencies, measured the same way for aftersales and for its bare baseline."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

CONCURRENCY = 20


@dataclass(frozen=True)
class Side:
    """One side of a comparison: `call(k)` makes the k-th call, which handles `per_call`
    of the `items`."""

    items: int
    call: Callable[[int], Awaitable[Any]]
    concurrency: int = CONCURRENCY
    per_call: int = 1


async def interleaved_rates(sides: dict[str, Side], *, rounds: int) -> dict[str, float]:
    """Items per second for each side, measured in alternating rounds so that drift (a
    server whose state grows, a neighbour's load) falls on every side alike."""
    elapsed = dict.fromkeys(sides, 0.0)
    done = dict.fromkeys(sides, 0)
    for round_number in range(rounds):
        for name, side in sides.items():
            calls = side.items // side.per_call // rounds
            first = round_number * calls

            async def call(k: int, side: Side = side, first: int = first) -> None:
                await side.call(first + k)

            elapsed[name] += calls / await rate(calls, call, concurrency=side.concurrency)
            done[name] += calls * side.per_call
    return {name: done[name] / elapsed[name] for name in sides}


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


def percentiles(taken: list[float], *, digits: int = 1) -> dict[str, float]:
    cuts = statistics.quantiles(taken, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49], digits), "p99_ms": round(cuts[98], digits), "n": len(taken)}


async def until(probe: Callable[[], Awaitable[bool]], *, every_s: float, within_s: float) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + within_s
    while not await probe():
        if loop.time() > give_up:
            raise TimeoutError(f"not reached within {within_s} s")
        await asyncio.sleep(every_s)
