"""Benchmark 8: where an opening's and a scan's milliseconds go, stage by stage.

A second API and worker, traced (infra/tracing.py), run beside the stack's on a task queue
of their own and export their spans to this process (bench/spans.py): the API's request,
authentication, the request's and scans' statements, the data key's creation or fetch,
the StartWorkflow / SignalWorkflow call, each local activity and the ledger step's
transaction within it (one call: activities/ledger.py). The server's history gives each
workflow task's schedule-to-start and run. Measured apart, in the same run: the body's
validation (the API's own models, in this process) and what the ledger's triggers (SLA
clocks, R24 rollups) add to its transaction (bench/triggers.py).

Then the 20-at-a-time load once more with py-spy sampling the traced API and worker:
docs/flame-api.svg and docs/flame-worker.svg (docs/benchmarks.md reads them)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType

from api.scans import ScanBatch
from bench.intake import case_body, case_id, scan_body
from bench.measure import CONCURRENCY, latencies_ms, percentiles, until
from bench.spans import Span, span_sink
from bench.stack import SCANNER, SERVICE, Stack, until_up
from bench.triggers import measure_triggers
from domain.case import OpenCaseRequest
from domain.state import CaseStatus
from tests.processes import free_port, start_process

TRACED_QUEUE = "bench-traced"
_TRACED = ("api-traced", "worker-traced")
# (requests at a time, cases): one at a time shows the floor, 20 at a time the queueing.
LOADED = (CONCURRENCY, 160)
MODES = {"one_at_a_time": (1, 40), f"{CONCURRENCY}_concurrent": LOADED}
_VALIDATIONS = 2_000
FLAMES = Path(__file__).parent.parent / "docs"
_PY_SPY = Path(sys.executable).parent / "py-spy"
_POLL_S = 0.002
_STARTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
_SIGNALED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
_TASK_SCHEDULED = EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED
_TASK_STARTED = EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
_TASK_COMPLETED = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED


async def measure_breakdown(stack: Stack, run: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    validation = _validation_ms()
    async with span_sink() as (sink, endpoint), _traced_pair(stack, endpoint) as api:
        for mode, (concurrency, cases) in MODES.items():
            prefix = f"T{concurrency}x{run}"
            windows, client_ms, cpu_ms = await _open_and_scan(
                stack, api, prefix, cases, concurrency
            )
            await sink.settled()
            found[mode] = {"cpu_ms_per_request": cpu_ms}
            for phase in ("opening", "scan"):
                stages = _stages(sink.spans, windows[phase], client_ms[phase]) | {
                    f"body validation ({phase}, in process)": validation[phase],
                    **await _workflow_tasks(stack, prefix, cases, phase),
                }
                found[mode][phase] = {s: stages[s] for s in sorted(stages, key=_in_path_order)}
            sink.spans.clear()
        with _flames(stack, _TRACED):
            await _open_and_scan(stack, api, f"F{run}", LOADED[1], LOADED[0])
    return found | {
        "flame_graphs": [f"docs/flame-{n}.svg" for n in ("api", "worker")],
        "triggers": await measure_triggers(stack.pool, prefix=f"T1x{run}"),
        "how": __doc__.split("\n\n")[1].replace("\n", " "),
    }


@asynccontextmanager
async def _traced_pair(stack: Stack, endpoint: str) -> AsyncIterator[aiohttp.ClientSession]:
    port = free_port()
    env = stack.env() | {
        "AFTERSALES_TASK_QUEUE": TRACED_QUEUE,
        "AFTERSALES_API_PORT": str(port),
        # Its /metrics beside the stack's worker's, not on the same port.
        "AFTERSALES_WORKER_STATUS_PORT": str(free_port()),
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        # Every span of a burst kept: the default queue (2,048) drops them under load.
        "OTEL_BSP_MAX_QUEUE_SIZE": "200000",
    }
    for name, command in (("api-traced", ["-m", "api"]), ("worker-traced", ["worker.py"])):
        stack.processes[name] = start_process(
            [sys.executable, *command], env, stack.folder / f"{name}.log"
        )[0]
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{port}",
        timeout=aiohttp.ClientTimeout(total=30),
        connector=aiohttp.TCPConnector(limit=50, keepalive_timeout=2),
    ) as api:
        await until_up(api)
        try:
            yield api
        finally:
            for name in _TRACED:
                stack.stop(name)


@contextlib.contextmanager
def _flames(stack: Stack, names: Iterable[str]) -> Iterator[None]:
    """py-spy sampling each process meanwhile (100 Hz, without pausing it), written out as
    a flame graph when stopped."""
    spies = [
        subprocess.Popen(
            [
                str(_PY_SPY),
                "record",
                "--pid",
                str(stack.processes[name].pid),
                "--nonblocking",
                "--rate",
                "100",
                "--output",
                str(FLAMES / f"flame-{name.split('-')[0]}.svg"),
            ],
            stdout=subprocess.DEVNULL,
        )
        for name in names
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)


async def _open_and_scan(
    stack: Stack, api: aiohttp.ClientSession, prefix: str, cases: int, concurrency: int
) -> tuple[dict[str, tuple[int, int]], dict[str, list[float]], dict[str, dict[str, float]]]:
    """Each phase's time window (ns since the epoch, as spans are stamped), its requests'
    latencies as the client saw them, until the read model shows each (one request at a
    time is then one case at a time in the worker as well), and the CPU the API and the
    worker spent per request (ms, every thread's, tracing included)."""

    async def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        async with api.post(path, json=body, headers=headers) as response:
            response.raise_for_status()
            await response.read()

    async def shows(i: int, status: CaseStatus) -> bool:
        found = await stack.pool.fetchval(
            "SELECT status FROM cases WHERE case_id = $1", case_id(prefix, i)
        )
        return bool(found == status.value)

    async def scan_until_visible(i: int) -> None:
        await post("/scans", {"scans": [scan_body(prefix, i, f"{prefix}-scan-{i}")]}, SCANNER)
        await until(lambda: shows(i, CaseStatus.AWAITING_INSPECTION), every_s=_POLL_S, within_s=60)

    async def open_until_visible(i: int) -> None:
        await post("/cases", case_body(prefix, i), SERVICE)
        await until(lambda: shows(i, CaseStatus.AWAITING_SHIP_BACK), every_s=_POLL_S, within_s=60)

    windows: dict[str, tuple[int, int]] = {}
    client_ms: dict[str, list[float]] = {}
    cpu_ms: dict[str, dict[str, float]] = {}
    phases = {"opening": open_until_visible, "scan": scan_until_visible}
    for phase, one in phases.items():
        started, used = time.time_ns(), {name: stack.cpu_s(name) for name in _TRACED}
        client_ms[phase] = await latencies_ms(cases, one, concurrency=concurrency)
        windows[phase] = (started, time.time_ns())
        cpu_ms[phase] = {
            name.split("-")[0]: round((stack.cpu_s(name) - used[name]) / cases * 1000, 2)
            for name in _TRACED
        }
    return windows, client_ms, cpu_ms


def _stages(
    spans: list[Span], window: tuple[int, int], client_ms: list[float]
) -> dict[str, dict[str, float]]:
    """Each stage's p50 / p99 over the window's spans (one figure per occurrence)."""
    inside = [s for s in spans if window[0] <= s.start_ns <= window[1]]
    children: dict[bytes, list[Span]] = defaultdict(list)
    for span in inside:
        children[span.parent_id].append(span)
    taken: dict[str, list[float]] = defaultdict(list)
    servers = [s for s in inside if s.name in ("POST /cases", "POST /scans")]
    taken["request until the read model shows it (client)"] = client_ms
    for server in servers:
        taken["API request (server span)"].append(server.ms)
        known = sum(c.ms for c in _descendants(server, children, depth=2) if _is_stage(c))
        taken["API: HTTP, validation, handler (rest)"].append(server.ms - known)
    for span in inside:
        if not span.name.startswith(("POST ", "RunWorkflow", "StartActivity", "HandleSignal")):
            taken[_stage_name(span)].append(span.ms - _nested(span, children))
    return {name: percentiles(ms) for name, ms in taken.items() if len(ms) > 1}


# The order a request meets the stages in; others (a new local activity) after them.
_PATH = ["request until", "API request", "API:", "authenticate", "body validation",
         "request and data key insert", "scans insert", "data key create", "StartWorkflow",
         "SignalWorkflow", "workflow task: schedule", "workflow task: run", "workflow tasks",
         "data key fetch",
         "local activity record_case_step", "ledger transaction"]  # fmt: skip


def _in_path_order(stage: str) -> int:
    return next((n for n, start in enumerate(_PATH) if stage.startswith(start)), len(_PATH))


def _is_stage(span: Span) -> bool:
    return span.name in (
        "authenticate",
        "request and data key insert",
        "scans insert",
    ) or span.name.startswith(("StartWorkflow", "SignalWorkflow"))


def _descendants(span: Span, children: dict[bytes, list[Span]], *, depth: int) -> Iterable[Span]:
    for child in children[span.span_id]:
        yield child
        if depth > 1 and not _is_stage(child):
            yield from _descendants(child, children, depth=depth - 1)


def _nested(span: Span, children: dict[bytes, list[Span]]) -> float:
    """The time of the data key spans a Temporal call makes while encoding (its own stage)."""
    if not span.name.startswith(("StartWorkflow", "SignalWorkflow")):
        return 0.0
    return sum(c.ms for c in children[span.span_id] if c.name.startswith("data key"))


def _stage_name(span: Span) -> str:
    if span.name.startswith(("StartWorkflow", "SignalWorkflow")):
        return f"{span.name} (RPC, data key apart)"
    if span.name.startswith("RunActivity:"):
        return f"local activity {span.name.removeprefix('RunActivity:')}"
    return span.name


async def _workflow_tasks(
    stack: Stack, prefix: str, cases: int, phase: str
) -> dict[str, dict[str, float]]:
    """From each case's history: the first workflow task after the case started (opening)
    or after the scan's signal (scan), its schedule-to-start and its run, and how many
    workflow tasks the phase took."""
    schedule_to_start, task, count = [], [], []
    for i in range(cases):
        history = await stack.client.get_workflow_handle(case_id(prefix, i)).fetch_history()
        events = list(history.events)
        signals = [n for n, e in enumerate(events) if e.event_type == _SIGNALED]
        first, last = (0, signals[0]) if phase == "opening" else (signals[0], len(events))
        times: dict[int, int] = {}
        tasks = 0
        for event in events[first:last]:
            times.setdefault(event.event_type, event.event_time.ToNanoseconds())
            tasks += event.event_type == _TASK_COMPLETED
        schedule_to_start.append((times[_TASK_STARTED] - times[_TASK_SCHEDULED]) / 1e6)
        task.append((times[_TASK_COMPLETED] - times[_TASK_STARTED]) / 1e6)
        count.append(float(tasks))
    return {
        "workflow task: schedule-to-start (first)": percentiles(schedule_to_start),
        "workflow task: run, local activities in it (first)": percentiles(task),
        "workflow tasks (count, not ms)": percentiles(count),
    }


def _validation_ms() -> dict[str, dict[str, float]]:
    """The API's body models on this request's JSON, in this process."""
    bodies: dict[str, tuple[type[BaseModel], str]] = {
        "opening": (OpenCaseRequest, json.dumps(case_body("V", 1))),
        "scan": (ScanBatch, json.dumps({"scans": [scan_body("V", 1, "V-scan-1")]})),
    }
    found = {}
    for phase, (model, body) in bodies.items():
        taken = []
        for _ in range(_VALIDATIONS):
            started = time.perf_counter()
            model.model_validate_json(body)
            taken.append((time.perf_counter() - started) * 1000)
        found[phase] = percentiles(taken, digits=3)
    return found
