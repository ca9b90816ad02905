"""Every figure of results.json beside its target (issue 20's, for the figures it names),
as results.json's `targets` list and as the Markdown table the README carries
(bench/results.md), followed by benchmark 8's stage breakdown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

OPENING_RATIO = 0.9  # of bare starts
SCAN_P99_RATIO = 2.0  # of a bare Update's p99
SCANS_RATIO = 0.85  # of bare signals
WORKER_KIB_PER_CASE = 100
EVENTS_AT_CLOSE = 4000


@dataclass(frozen=True)
class Figure:
    benchmark: str
    figure: str
    aftersales: str
    bare: str
    ratio: float | str
    target: str
    met: bool | None  # None: a figure without a target


def figures(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per figure, for results.json."""
    found: list[Figure] = []
    for name, rows in _ROWS.items():
        if name in results:
            found.extend(rows(results[name]))
    return [asdict(f) for f in sorted(found, key=lambda f: f.benchmark)]


def _intake(intake: dict[str, Any]) -> Iterator[Figure]:
    opening, scans = intake["opening_rate"], intake["scan_ingest_rate"]
    yield Figure("1", "cases opened through the API", f"{opening['api_per_s']}/s",
                 f"{opening['bare_start_workflow_per_s']}/s start", opening["ratio"],
                 f"≥ {OPENING_RATIO}", opening["ratio"] >= OPENING_RATIO)  # fmt: skip
    bare = f"{scans['bare_signal_per_s']}/s signal"
    for how, key in (("one per request", "one_scan_per_request"), ("batches of 10",
                                                                   "batches_of_10")):  # fmt: skip
        ratio = scans[f"ratio_{key}"]
        yield Figure("3", f"scans through POST /scans, {how}", f"{scans[f'api_per_s_{key}']}/s",
                     bare, ratio, f"≥ {SCANS_RATIO}", ratio >= SCANS_RATIO)  # fmt: skip


def _latency(latency: dict[str, Any]) -> Iterator[Figure]:
    for mode in ("one_at_a_time", "20_concurrent"):
        found = latency[mode]
        bare = found["bare_update"]
        for seen, has_target in (("read_model", True), ("query", False)):
            ours, ratio = found[f"scan_to_{seen}"], found[f"p99_ratio_{seen}"]
            yield Figure(
                "2",
                f"scan → visible in the {seen.replace('_', ' ')}, {mode.replace('_', ' ')} "
                "(p50 / p99)",
                f"{ours['p50_ms']} / {ours['p99_ms']} ms",
                f"{bare['p50_ms']} / {bare['p99_ms']} ms update",
                ratio,
                f"p99 ≤ {SCAN_P99_RATIO} x" if has_target else "",
                ratio <= SCAN_P99_RATIO if has_target else None,
            )


def _scale(scale: dict[str, Any]) -> Iterator[Figure]:
    for key, figure, limit in (
        ("worker_kib_per_cached_case", "worker RSS per cached case", WORKER_KIB_PER_CASE),
        ("server_kib_per_case", "server RSS per case (in memory)", 50),
        ("database_kib_per_case", "PostgreSQL size per case", 50),
    ):
        yield Figure("4", figure, f"{scale[key]} KiB", "", "", f"≤ {limit} KiB",
                     scale[key] <= limit)  # fmt: skip
    rates = scale["opening_rate"]
    yield Figure("4", "opening rate at 10k open vs at 1k open",
                 f"{rates['api_per_s_at_10k_open']}/s vs {rates['api_per_s_at_1k_open']}/s", "",
                 f"drop {rates['drop']:.1%}", "drop ≤ 25%", rates["drop"] <= 0.25)  # fmt: skip


def _scale_file(found: dict[str, Any]) -> Iterator[Figure]:
    per_case = found["server_file_kib_per_case"]
    yield Figure("4", "server's SQLite file per case (file-backed server)", f"{per_case} KiB",
                 "", "", "≤ 50 KiB", per_case <= 50)  # fmt: skip


def _histories(found: dict[str, Any]) -> Iterator[Figure]:
    sizes = {f"history events at close: {name.replace('_', ' ')}": case["events"]
             for name, case in found["per_case_at_close"].items()}  # fmt: skip
    sizes["90-day carrier claim, largest run"] = found["carrier_claim_90_days"]["largest_run"]
    for figure, events in sizes.items():
        yield Figure("5", figure, str(events), "", "", f"≤ {EVENTS_AT_CLOSE}",
                     events <= EVENTS_AT_CLOSE)  # fmt: skip


def _suite(suite: dict[str, Any]) -> Iterator[Figure]:
    scenario = suite["thirty_day_timer_scenario_s"]
    yield Figure("6", f"test suite (pytest: {suite['pytest_summary']})",
                 f"{suite['pytest_wall_s']} s", "", "", "", None)  # fmt: skip
    yield Figure("6", "one 30-day-timer scenario under time skipping (median / max)",
                 f"{scenario['median']} / {scenario['max']} s", "", "", "", None)  # fmt: skip


def _codec(codec: dict[str, Any]) -> Iterator[Figure]:
    # The baseline here is the same stack with a pass-through codec, not bare Temporal.
    opening, scans = codec["opening_rate"], codec["scan_to_read_model"]
    yield Figure("7", "cases opened, payloads sealed vs not", f"{opening['sealed_per_s']}/s",
                 f"{opening['unsealed_per_s']}/s unsealed", opening["ratio"], "≥ 0.9",
                 opening["ratio"] >= 0.9)  # fmt: skip
    yield Figure("7", "scan → read model, sealed vs not (p50 / p99)",
                 f"{scans['sealed']['p50_ms']} / {scans['sealed']['p99_ms']} ms",
                 f"{scans['unsealed']['p50_ms']} / {scans['unsealed']['p99_ms']} ms unsealed",
                 scans["p99_ratio"], "p99 ≤ 1.1 x", scans["p99_ratio"] <= 1.1)  # fmt: skip


_ROWS: dict[str, Callable[[dict[str, Any]], Iterator[Figure]]] = {
    "intake": _intake,
    "latency": _latency,
    "scale": _scale,
    "scale_file": _scale_file,
    "histories": _histories,
    "suite": _suite,
    "codec": _codec,
}


def markdown(results: dict[str, Any]) -> str:
    rows = ["| # | figure | aftersales | bare Temporal | ratio | target | met |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for f in results["targets"]:
        verdict = "—" if f["met"] is None else "yes" if f["met"] else "no"
        rows.append(f"| {f['benchmark']} | {f['figure']} | {f['aftersales']} | {f['bare']} | "
                    f"{f['ratio']} | {f['target']} | {verdict} |")  # fmt: skip
    if "breakdown" in results:
        rows.extend(["", *breakdown_markdown(results["breakdown"])])
    return "\n".join(rows) + "\n"


def breakdown_markdown(breakdown: dict[str, Any]) -> list[str]:
    """Benchmark 8: a table per load, each stage's p50 / p99 for an opening and a scan."""
    lines = []
    for mode, phases in breakdown.items():
        if not isinstance(phases, dict) or "opening" not in phases:
            continue
        lines += [f"Where the time goes, {mode.replace('_', ' ')} (ms, p50 / p99):", "",
                  "| stage | opening | scan |", "|---|---|---|"]  # fmt: skip
        stages = dict.fromkeys([*phases["opening"], *phases["scan"]])
        for stage in stages:
            cells = [_cell(phases[phase].get(stage)) for phase in ("opening", "scan")]
            lines.append(f"| {stage} | {cells[0]} | {cells[1]} |")
        cpu = phases["cpu_ms_per_request"]
        for process in ("api", "worker"):
            lines.append(f"| CPU per request, {process} process (ms, all threads) | "
                         f"{cpu['opening'][process]} | {cpu['scan'][process]} |")  # fmt: skip
        lines.append("")
    lines += ["A ledger step's transaction, by the triggers it fires (ms, p50 / p99):", "",
              "| triggers | opening step | next step |", "|---|---|---|"]  # fmt: skip
    for variant, steps in breakdown["triggers"].items():
        if "opening step" in steps and isinstance(steps["opening step"], dict):
            lines.append(f"| {variant} | {_cell(steps['opening step'])} | "
                         f"{_cell(steps['next step'])} |")  # fmt: skip
    share = breakdown["triggers"]["triggers' share of a step (p50)"]
    lines.append(f"| triggers' share (p50) | {share['opening step']:.0%} | "
                 f"{share['next step']:.0%} |")  # fmt: skip
    return lines


def _cell(found: dict[str, float] | None) -> str:
    return "" if found is None else f"{found['p50_ms']} / {found['p99_ms']}"
