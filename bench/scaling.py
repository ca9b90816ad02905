"""`make bench-scaling`: past one machine, measured (docs/scaling.md).

1. The same backlog (cases opened through the API, every parcel scanned, every parcel
   inspected and refunded) worked by 1, 2 and 4 worker processes on one task queue:
   cases settled per second, scan -> read model latency, PostgreSQL bytes per case.
2. `max_cached_workflows` (AFTERSALES_MAX_CACHED_WORKFLOWS): the worker's resident memory
   with every case cached and with a small cache, and a timer firing for a case the small
   cache evicted (a short R12 ship-back reminder from a policy file): the reminder is sent,
   the case then settles; the wake-up's time is read from the history (timer fired -> the
   workflow task that acted on it completed) and the replay an evicted case needs first is
   timed on its own.

Each configuration runs `REPEATS` times, interleaved, with the load average recorded next
to each figure: the machine is shared. The whole run stops by itself after `DEADLINE_S`.
Writes bench/scaling_results.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from bench.intake import case_id, open_through_api, scan_body
from bench.measure import CONCURRENCY, latencies_ms, percentiles, rate, until
from bench.stack import SCANNER, Stack, running_stack
from domain.case import Grade, ScanEvent
from domain.ledger import LedgerAction
from domain.state import CaseStatus
from infra.settings import DEFAULT_MAX_CACHED_WORKFLOWS, DEFAULT_POLICY_FILE
from tests.processes import start_process
from worker import WORKFLOW_RUNNER, WORKFLOWS

HERE = Path(__file__).parent
RESULTS = HERE / "scaling_results.json"
DEADLINE_S = 900
REPEATS = 2

BACKLOG = 120
WORKER_COUNTS = (1, 2, 4)
_POLL_S = 0.005

CACHE_CASES = 80
SMALL_CACHE = 10
CACHE_SIZES = (DEFAULT_MAX_CACHED_WORKFLOWS, SMALL_CACHE)
REMINDER_S = 30
# The policy.toml of `make run`, but the first R12 reminder 30 s after approval, so a timer
# fires within the run; the window and second reminder stay out of it.
_SHORT_REMINDER = {
    'ship_back_window = "P7D"': 'ship_back_window = "PT20M"',
    'ship_back_reminders = ["P3D", "P6D"]': f'ship_back_reminders = ["PT{REMINDER_S}S", "PT19M"]',
}
_READY_LINE = "outside systems:"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@asynccontextmanager
async def workers(stack: Stack, count: int, cache: int, tag: str) -> AsyncIterator[list[int]]:
    """`count` worker processes (worker.py, as deployed) on the stack's task queue; yields
    their pids once each has started polling."""
    started = [
        start_process(
            [sys.executable, "worker.py"],
            stack.env(AFTERSALES_MAX_CACHED_WORKFLOWS=str(cache)),
            stack.folder / f"worker-{tag}-{n}.log",
            _READY_LINE,
        )
        for n in range(count)
    ]
    try:
        for process, ready in started:
            if not await asyncio.to_thread(ready.wait, 60):
                raise TimeoutError(f"worker {process.pid} did not start")
        yield [process.pid for process, _ in started]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            await asyncio.to_thread(process.wait, 30)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise LookupError(f"no VmRSS for {pid}")


def inspection_body(prefix: str, i: int) -> dict[str, Any]:
    return {"barcode": case_id(prefix, i), "scan_id": f"{prefix}-qc-{i}",
            "event": ScanEvent.INSPECTED.value, "station": "QC-1",
            "grade": Grade.RESELLABLE.value, "photos": ["https://photos.example/1.jpg"],
            "scanned_at": datetime.now(UTC).isoformat()}  # fmt: skip


async def open_backlog(stack: Stack, prefix: str, count: int) -> None:
    await rate(count, lambda i: open_through_api(stack, prefix, i), concurrency=CONCURRENCY)
    await stack.until_cases(prefix, CaseStatus.AWAITING_SHIP_BACK.value, count, within_s=240)


async def scan_backlog(stack: Stack, prefix: str, count: int) -> list[float]:
    """Each parcel scanned through POST /scans; the time until the read model shows it."""

    async def scan_until_visible(i: int) -> None:
        await stack.post("/scans", {"scans": [scan_body(prefix, i, f"{prefix}-scan-{i}")]},
                         SCANNER)  # fmt: skip

        async def in_read_model() -> bool:
            status = await stack.pool.fetchval(
                "SELECT status FROM cases WHERE case_id = $1", case_id(prefix, i)
            )
            return bool(status == CaseStatus.AWAITING_INSPECTION.value)

        await until(in_read_model, every_s=_POLL_S, within_s=120)

    return await latencies_ms(count, scan_until_visible, concurrency=CONCURRENCY)


async def settle_backlog(stack: Stack, prefix: str, count: int) -> None:
    """Every parcel inspected as resellable: the case refunds (sandbox payments) and closes."""
    await rate(count, lambda i: stack.post("/scans", {"scans": [inspection_body(prefix, i)]},
                                           SCANNER), concurrency=CONCURRENCY)  # fmt: skip
    await stack.until_cases(prefix, CaseStatus.REFUNDED.value, count, within_s=240)


async def case_tables_bytes(stack: Stack) -> int:
    size: int = await stack.pool.fetchval(
        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
    )
    return size


async def throughput(stack: Stack, count: int, repeat: int) -> dict[str, Any]:
    prefix = f"T{repeat}w{count}"
    load_before = load_average()
    async with workers(stack, count, DEFAULT_MAX_CACHED_WORKFLOWS, prefix) as pids:
        started = time.perf_counter()
        await open_backlog(stack, prefix, BACKLOG)
        opened = time.perf_counter()
        scan_ms = await scan_backlog(stack, prefix, BACKLOG)
        scanned = time.perf_counter()
        await settle_backlog(stack, prefix, BACKLOG)
        settled = time.perf_counter()
        rss = [rss_kib(pid) for pid in pids]
    return {
        "workers": count,
        "repeat": repeat,
        "cases": BACKLOG,
        "settled_per_s": round(BACKLOG / (settled - started), 1),
        "phases_per_s": {
            "open_to_awaiting_ship_back": round(BACKLOG / (opened - started), 1),
            "scan_to_awaiting_inspection": round(BACKLOG / (scanned - opened), 1),
            "inspect_to_refunded": round(BACKLOG / (settled - scanned), 1),
        },
        "scan_to_read_model": percentiles(scan_ms),
        "worker_rss_kib": rss,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


async def wake_ups(stack: Stack, prefix: str, count: int) -> dict[str, Any]:
    """From each case's history: the reminder timer fired -> the workflow task that sent the
    reminder completed. The history cannot say whether that task found the case cached:
    the server sends it to the worker's sticky queue either way, and on a miss the SDK
    fetches the whole history and replays it first. So the replay is also timed on its own:
    each case's history, as it stood once the reminder was sent, replayed with the worker's
    workflows and runner in this process (the CPU an evicted case costs on waking)."""
    wake_ms: list[float] = []
    replay_ms: list[float] = []
    events_at_wake: list[int] = []
    replayer = Replayer(
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        data_converter=stack.client.data_converter,
    )

    async def one(i: int) -> None:
        workflow_id = case_id(prefix, i)
        history = await stack.client.get_workflow_handle(workflow_id).fetch_history()
        events = history.events
        fired = _first(events, EventType.EVENT_TYPE_TIMER_FIRED, after=0)
        acted = _first(events, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, fired)
        delta = events[acted].event_time.ToDatetime() - events[fired].event_time.ToDatetime()
        wake_ms.append(delta.total_seconds() * 1000)
        events_at_wake.append(acted + 1)
        started = time.perf_counter()
        replayed = await replayer.replay_workflow(
            WorkflowHistory(workflow_id, events[: acted + 1]), raise_on_replay_failure=False
        )
        replay_ms.append((time.perf_counter() - started) * 1000)
        if replayed.replay_failure is not None:
            raise AssertionError(f"{workflow_id} does not replay: {replayed.replay_failure}")

    await rate(count, one, concurrency=1)
    return {
        "timer_fired_to_task_completed": percentiles(wake_ms),
        "replay_to_the_wake": percentiles(replay_ms),
        "history_events_replayed": round(statistics.mean(events_at_wake), 1),
    }


def _first(events: Sequence[HistoryEvent], kind: EventType.ValueType, after: int) -> int:
    return next(n for n in range(after, len(events)) if events[n].event_type == kind)


async def cache_effect(stack: Stack, cache: int, repeat: int) -> dict[str, Any]:
    prefix = f"C{repeat}c{cache}"
    load_before = load_average()
    async with workers(stack, 1, cache, prefix) as (pid,):
        idle = rss_kib(pid)
        await open_backlog(stack, prefix, CACHE_CASES)
        opened_rss = rss_kib(pid)

        async def reminded() -> bool:
            sent: int = await stack.pool.fetchval(
                "SELECT count(DISTINCT e.case_id) FROM case_events e "
                "JOIN cases c USING (case_id) WHERE c.order_id LIKE $1 AND e.action = $2",
                f"{prefix}-%",
                LedgerAction.SHIP_BACK_REMINDER_SENT.value,
            )
            return sent == CACHE_CASES

        await until(reminded, every_s=1, within_s=REMINDER_S + 180)
        woken_rss = rss_kib(pid)
        wake = await wake_ups(stack, prefix, CACHE_CASES)
        await scan_backlog(stack, prefix, CACHE_CASES)
        await settle_backlog(stack, prefix, CACHE_CASES)
    return {
        "max_cached_workflows": cache,
        "repeat": repeat,
        "cases": CACHE_CASES,
        "worker_rss_kib": {"idle": idle, "cases_open": opened_rss, "after_wake": woken_rss},
        "reminder_wake_up": wake,
        "reminders_sent": CACHE_CASES,
        "settled_after_wake": CACHE_CASES,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


@contextmanager
def short_reminder_policy(folder: Path) -> Iterator[None]:
    """The API pins the policy into each case it opens: the stack's API and workers read
    AFTERSALES_POLICY_FILE from this process's environment."""
    text = DEFAULT_POLICY_FILE.read_text()
    for old, new in _SHORT_REMINDER.items():
        if old not in text:
            raise LookupError(f"policy.toml no longer says {old!r}")
        text = text.replace(old, new)
    policy = folder / "short-reminder-policy.toml"
    policy.write_text(text)
    previous = os.environ.get("AFTERSALES_POLICY_FILE")
    os.environ["AFTERSALES_POLICY_FILE"] = str(policy)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["AFTERSALES_POLICY_FILE"]
        else:
            os.environ["AFTERSALES_POLICY_FILE"] = previous


async def measure_throughput(results: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with running_stack(Path(folder)) as stack:
            empty = await case_tables_bytes(stack)
            for repeat in range(REPEATS):
                for count in WORKER_COUNTS:
                    print(f"bench-scaling: {count} worker(s), run {repeat + 1}", flush=True)
                    results["throughput"].append(await throughput(stack, count, repeat))
                    _save(results)
            cases: int = await stack.pool.fetchval("SELECT count(*) FROM cases")
            results["postgres"] = {
                "cases": cases,
                "status": CaseStatus.REFUNDED.value,
                "bytes_per_case": round((await case_tables_bytes(stack) - empty) / cases),
                "how": "sum of pg_total_relation_size over the public tables (tables, their "
                "indexes and TOAST), after minus before, divided by the cases",
            }
            _save(results)


async def measure_cache(results: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder, short_reminder_policy(Path(folder)):
        async with running_stack(Path(folder)) as stack:
            for repeat in range(REPEATS):
                for cache in CACHE_SIZES:
                    print(f"bench-scaling: cache {cache}, run {repeat + 1}", flush=True)
                    results["cache"].append(await cache_effect(stack, cache, repeat))
                    _save(results)


PARTS = {"throughput": measure_throughput, "cache": measure_cache}


async def main(parts: list[str]) -> None:
    """A part run alone keeps the other's figures from the last run."""
    started = time.perf_counter()
    kept: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results: dict[str, Any] = kept | {
        "measured_at": datetime.now(UTC).isoformat(),
        "machine": {"cores": os.cpu_count(), "shared": True},
    }
    for part in parts:
        results[part] = []
    try:
        async with asyncio.timeout(DEADLINE_S):
            for part in parts:
                await PARTS[part](results)
    finally:
        results["wall_s"] = round(time.perf_counter() - started, 1)
        _save(results)
    print(json.dumps(results, indent=2))


def _save(results: dict[str, Any]) -> None:
    """After every figure, so a run stopped half-way keeps what it measured."""
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(PARTS), help="one part (default: both)")
    chosen = parser.parse_args().only
    asyncio.run(main([chosen] if chosen else list(PARTS)))
