"""Worker RSS per cached case, two or more builds of the worker on one stack, in turn.

`python -m bench.memory_ab CASES ROUNDS FOLDER...`: each FOLDER holds a build (e.g.
`git archive <commit> | tar -x -C /tmp/build`); its `worker.py` runs with this
checkout's virtualenv, against this checkout's API. Each turn starts the build's worker,
opens WARM cases through the API, reads the worker's RSS, opens CASES more, reads it
again once the read model shows them all waiting for ship-back, and stops the worker.
The order of the builds reverses every round. Benchmark 4 (bench/scale.py) in minutes,
for comparing changes (docs/benchmarks.md, worker memory per cached case)."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from bench.intake import open_through_api
from bench.measure import CONCURRENCY, rate
from bench.stack import Stack, running_stack
from tests.processes import start_process

WARM = 300
SETTLE_S = 3


async def per_cached_case(stack: Stack, build: Path, prefix: str, cases: int) -> float:
    stack.processes["worker"] = start_process(
        [sys.executable, "worker.py"], stack.env(), stack.folder / f"{prefix}.log", cwd=build
    )[0]

    async def open_cases(batch: str, count: int) -> None:
        await rate(count, lambda i: open_through_api(stack, batch, i), concurrency=CONCURRENCY)
        await stack.until_cases(batch, "awaiting_ship_back", count, within_s=900)
        await asyncio.sleep(SETTLE_S)

    try:
        await open_cases(f"{prefix}w", WARM)
        before = stack.rss_kib("worker")
        await open_cases(f"{prefix}m", cases)
        return (stack.rss_kib("worker") - before) / cases
    finally:
        stack.stop("worker")


async def main(cases: int, rounds: int, builds: list[Path]) -> dict[str, list[float]]:
    measured: dict[str, list[float]] = {str(build): [] for build in builds}
    with tempfile.TemporaryDirectory() as folder:
        async with running_stack(Path(folder)) as stack:
            for round_ in range(rounds):
                for turn, build in enumerate(builds if round_ % 2 == 0 else builds[::-1]):
                    kib = await per_cached_case(stack, build, f"M{round_}x{turn}", cases)
                    measured[str(build)].append(round(kib, 1))
                    print(f"round {round_}, {build}: {kib:.1f} KiB per cached case", flush=True)
    return measured


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit("usage: python -m bench.memory_ab CASES ROUNDS FOLDER...")
    folders = [Path(arg).resolve() for arg in sys.argv[3:]]
    print(json.dumps(asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), folders))))
