"""What the ledger's triggers add to a ledger step: the same step (LedgerActivities'
own transaction, on rows copied from cases the benchmark opened and scanned) timed with
every trigger on, without the SLA clocks', without R24's rollups', and with neither, in
alternating rounds on the stack's PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from activities.ledger import CaseSnapshot, LedgerActivities, LedgerEntry
from bench.analytics_scale import ROLLUP_TRIGGERS
from bench.measure import percentiles
from domain.ledger import LedgerAction

ROUNDS = 3
SOURCES = 40  # cases copied, each one opening step and one step after it per round
_CLOCKS = {"case_events": ["case_events_keep_sla_clocks"]}
VARIANTS: dict[str, dict[str, list[str]]] = {
    "every trigger": {},
    "no SLA clocks": _CLOCKS,
    "no rollups": ROLLUP_TRIGGERS,
    "no clocks, no rollups": _CLOCKS | ROLLUP_TRIGGERS,
}


async def measure_triggers(pool: asyncpg.Pool, *, prefix: str) -> dict[str, Any]:
    sources = await _sources(pool, prefix)
    ledger = LedgerActivities(pool)
    taken: dict[str, dict[str, list[float]]] = {
        v: {"opening step": [], "next step": []} for v in VARIANTS
    }
    try:
        for number in range(ROUNDS):
            for variant, off in VARIANTS.items():
                await _switch(pool, off, "DISABLE")
                for k, (first, second) in enumerate(sources):
                    copy = f"{first.case.case_id}-{variant[:2]}{number}-{k}"
                    for step, entry in (("opening step", first), ("next step", second)):
                        started = time.perf_counter()
                        await ledger.record_step(_renamed(entry, copy))
                        taken[variant][step].append((time.perf_counter() - started) * 1000)
                await _switch(pool, off, "ENABLE")
    finally:
        await _switch(pool, _CLOCKS | ROLLUP_TRIGGERS, "ENABLE")
    found: dict[str, Any] = {
        variant: {step: percentiles(ms) for step, ms in steps.items()}
        for variant, steps in taken.items()
    }
    every, neither = found["every trigger"], found["no clocks, no rollups"]
    found["triggers' share of a step (p50)"] = {
        step: round(1 - neither[step]["p50_ms"] / every[step]["p50_ms"], 2) for step in every
    }
    return found


async def _sources(pool: asyncpg.Pool, prefix: str) -> list[tuple[LedgerEntry, LedgerEntry]]:
    """Each case's first two ledger steps, as the workflow sent them (the case's row as
    it is now stands in for both snapshots)."""
    cases = await pool.fetch(
        "SELECT * FROM cases WHERE order_id LIKE $1 ORDER BY case_id LIMIT $2",
        f"{prefix}-%",
        SOURCES,
    )
    sources = []
    for case in cases:
        snapshot = CaseSnapshot.model_validate(
            {name: case[name] for name in CaseSnapshot.model_fields}
        )
        events = await pool.fetch(
            "SELECT * FROM case_events WHERE case_id = $1 ORDER BY seq LIMIT 2", case["case_id"]
        )
        first, second = (
            LedgerEntry(
                seq=e["seq"],
                occurred_at=e["occurred_at"],
                actor=e["actor"],
                role=e["role"],
                action=LedgerAction(e["action"]),
                rule_id=e["rule_id"],
                reason=e["reason"],
                details=e["details"],
                case=snapshot,
            )
            for e in events
        )
        sources.append((first, second))
    return sources


def _renamed(entry: LedgerEntry, case_id: str) -> LedgerEntry:
    case = entry.case.model_copy(update={"case_id": case_id})
    return entry.model_copy(update={"case": case})


async def _switch(pool: asyncpg.Pool, triggers: dict[str, list[str]], switch: str) -> None:
    for table, names in triggers.items():
        for name in names:
            await pool.execute(f"ALTER TABLE {table} {switch} TRIGGER {name}")
