"""`make bench`: issue 5's benchmarks, each against a bare-Temporal baseline measured in the
same run on the same dev server. Writes bench/results.json, results.png and results.md
(the README's table).

1. case opening rate through the API vs bare start_workflow  (bench/intake.py)
2. scan -> visible latency vs a bare Update round trip         (bench/latency.py)
3. scan ingest rate through POST /scans vs bare signal()       (bench/intake.py)
4. 10,000 open cases: memory per case, opening rate at 10k     (bench/scale.py)
   and the server's SQLite file per case (file-backed server)
5. history events per case kind and for a 90-day claim         (bench/histories.py)
6. test suite time and time per 30-day-timer scenario          (bench/suite.py)
7. the payload codec's cost: opening rate and scan latency,    (bench/codec.py)
   sealed vs a pass-through codec, same run
8. where an opening's and a scan's time goes, stage by stage,  (bench/breakdown.py)
   what the ledger's triggers cost, flame graphs under load

Each run writes results.json whole: what it measured and every figure's target (`targets`),
nothing kept from an earlier run. `python -m bench.run --only intake,latency` runs some of
them (a quick look while changing something; its file holds only those)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.breakdown import measure_breakdown
from bench.codec import measure_codec
from bench.histories import measure_histories
from bench.intake import measure_intake
from bench.latency import measure_latency
from bench.plot import plot
from bench.scale import measure_file_server, measure_scale
from bench.stack import Stack, running_stack
from bench.suite import measure_suite
from bench.table import figures, markdown
from infra.devstack import temporal_cli

HERE = Path(__file__).parent
RESULTS = HERE / "results.json"

ON_STACK: dict[str, Callable[[Stack, str], Awaitable[dict[str, Any]]]] = {
    "intake": measure_intake,
    "latency": measure_latency,
    "scale": measure_scale,
    "codec": measure_codec,
    # Last: its traced API and worker add their cases to the stack's PostgreSQL.
    "breakdown": measure_breakdown,
}
ALONE: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
    "scale_file": measure_file_server,
    "histories": measure_histories,
    "suite": measure_suite,
}


async def main(only: set[str]) -> None:
    results: dict[str, Any] = {}
    started = time.perf_counter()
    run = uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory() as folder:
        async with running_stack(Path(folder)) as stack:
            for name, measure in ON_STACK.items():
                if name in only:
                    print(f"bench: {name} ...", flush=True)
                    results[name] = await measure(stack, run)
                    _save(results)
    for name, alone in ALONE.items():
        if name in only:
            print(f"bench: {name} ...", flush=True)
            results[name] = await alone()
            _save(results)
    results["run"] = {
        "measured_at": datetime.now(UTC).isoformat(),
        "benchmarks": sorted(only),
        "wall_s": round(time.perf_counter() - started, 1),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "server": {
            "mode": "in-memory",
            "binary": await _version_of(temporal_cli()),
            "settings": "temporal server start-dev defaults (SQLite in memory, 1 history "
            "shard), on the same machine as the worker, API, PostgreSQL and this client",
        },
    }
    results["targets"] = figures(results)
    _save(results)
    plot(results, HERE / "results.png")
    table = markdown(results)
    (HERE / "results.md").write_text(table)
    print(table)


def _save(results: dict[str, Any]) -> None:
    """After every benchmark, so a run stopped half-way keeps what it measured."""
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


async def _version_of(binary: str) -> str:
    process = await asyncio.create_subprocess_exec(
        binary, "--version", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    return out.decode().strip()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    everything = [*ON_STACK, *ALONE]
    parser.add_argument("--only", default=",".join(everything), help=", ".join(everything))
    chosen = set(parser.parse_args().only.split(","))
    if unknown := chosen - set(everything):
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    asyncio.run(main(chosen))
