"""R24 at scale: the report and the batch alarm over 1,000,000 cases and 10,000,000
delivered units (600,000 day totals), generated in PostgreSQL (generate_series), on an
embedded server of its own. Also the write cost analytics adds to opening a case: the
read model's row and the ledger's events with and without the report rollups' triggers
(and analytics' index).

`python -m bench.analytics_scale` prints JSON and writes bench/analytics_results.json."""

from __future__ import annotations

import asyncio
import functools
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from activities.analytics_store import REPORT_SNAPSHOT_SETTINGS, AnalyticsStore, ReportReader
from activities.policy_file import PolicyFile, load_policy_file
from bench.stack import scratch_database
from domain.analytics import SLA_CLOCKS, BatchAlarmSettings, ReportFilters, judge_batches
from infra.settings import DEFAULT_POLICY_FILE

CASES = 1_000_000
SKUS, BATCHES, DAYS = 2_000, 10, 30  # 600,000 day totals, 10,000,000 units
RUNS = 3
OPENINGS = 9_000  # a multiple of 3: whole cases of three ledger events
WRITERS = 8  # concurrent openings, for the rollups' hot rows
OUT = Path(__file__).parent / "analytics_results.json"

# Migration 014's rollup triggers, off while the data is generated in one transaction and
# summed afresh after (report_rollups_rebuild), on for the reports and the write costs.
ROLLUP_TRIGGERS = {
    "cases": ["cases_keep_report_rollups_on_insert", "cases_keep_report_rollups_on_update"],
    "delivered_units": ["delivered_units_keep_report_rollups"],
    "sla_clocks": ["sla_clocks_keep_report_rollups"],
    "case_events": ["case_events_keep_report_money"],
    "surveys": ["surveys_keep_report_rollups"],
}


def _rollup_triggers(switch: str) -> str:
    return ";".join(
        f"ALTER TABLE {table} {switch} TRIGGER {name}"
        for table, names in ROLLUP_TRIGGERS.items()
        for name in names
    )


_GENERATE = f"""
INSERT INTO cases (case_id, kind, reason, channel, order_id, line_id, request_id, sku,
                   category, customer_id, status, currency, paid_minor, refund_limit_minor,
                   refunded_minor, policy_version, waiting_for, opened_at, closed_at,
                   last_seq, updated_at, batch, quantity)
SELECT 'return-B' || i || '-1-r1', k.kind,
       CASE WHEN k.kind = 'damage_claim' THEN 'damaged_in_transit'
            ELSE (ARRAY['changed_mind', 'quality_defect', 'not_as_described', 'wrong_item',
                        'missing_parts'])[1 + (i / 5) % 5] END,
       (ARRAY['web', 'app', 'phone_agent', 'email', 'store'])[1 + (i / 7) % 5],
       'B' || i, '1', 'r1', 'SKU-' || i % {SKUS},
       (ARRAY['apparel', 'electronics', 'home'])[1 + (i % {SKUS}) % 3], 'cust-' || i % 50000,
       'refunded', 'EUR', 5000, 5000, 0, 'bench', 'nothing', o.opened_at,
       CASE WHEN i % 5 <> 0 THEN o.opened_at + ((i % 240) + 1) * interval '1 hour' END,
       5, o.opened_at, 'LOT-' || (i / {SKUS}) % {BATCHES}, 1
FROM generate_series(1, {CASES}) AS i,
     LATERAL (SELECT (ARRAY['return', 'return', 'return', 'exchange', 'damage_claim'])[1 + i % 5]
                     AS kind) k,
     LATERAL (SELECT now() - (i % 365) * interval '1 day' - (i % 1440) * interval '1 minute'
                     AS opened_at) o;

INSERT INTO case_events (case_id, seq, occurred_at, actor, role, action, status_after)
SELECT c.case_id, e.seq, c.opened_at + e.after, e.role, e.role, e.action, 'x'
FROM cases c, LATERAL (VALUES
    (1, interval '0', 'system', 'review_started'),
    (2, ((hashtext(c.case_id) & 63) + 1) * interval '1 hour', 'agent', 'approved'))
    e(seq, after, role, action)
WHERE hashtext(c.case_id) % 3 = 0;

INSERT INTO case_events (case_id, seq, occurred_at, actor, role, action, status_after, details)
SELECT c.case_id, e.seq, c.opened_at + e.after, e.role, e.role, e.action, 'x', e.details
FROM cases c, LATERAL (VALUES
    (3, interval '1 day', 'warehouse', 'parcel_received', '{{}}'::jsonb),
    (4, interval '1 day' + ((hashtext(c.case_id) & 63) + 1) * interval '1 hour', 'warehouse',
     'inspection_passed', '{{}}'::jsonb),
    (5, interval '1 day' + ((hashtext(c.case_id) & 63) + 30) * interval '1 hour', 'system',
     'refund_issued', '{{"amount_minor": 5000, "currency": "EUR"}}'::jsonb))
    e(seq, after, role, action, details)
WHERE hashtext(c.case_id) % 2 = 0;

INSERT INTO surveys (case_id, sent_at, answered_at, attitude, expertise, timeliness,
                     promise_kept)
SELECT case_id, closed_at, closed_at + interval '1 day', l, l, l, l
FROM cases,
     LATERAL (SELECT (ARRAY['very_satisfied', 'satisfied', 'dissatisfied',
                            'very_dissatisfied'])[1 + abs(hashtext(case_id)) % 4] AS l) s
WHERE closed_at IS NOT NULL AND hashtext(case_id) % 4 = 1;

INSERT INTO delivered_units (sku, batch, day, units)
SELECT 'SKU-' || s, 'LOT-' || b, current_date - d, CASE WHEN d % 3 <> 0 THEN 17 ELSE 16 END
FROM generate_series(0, {SKUS - 1}) s, generate_series(0, {BATCHES - 1}) b,
     generate_series(0, {DAYS - 1}) d;
"""


async def _median_s(step: Callable[[], Awaitable[object]]) -> float:
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await step()
        timings.append(time.perf_counter() - started)
    return round(statistics.median(timings), 3)


async def _one_transaction_each(pool: asyncpg.Pool, statement: str, rows: list[Any]) -> None:
    """Each row its own transaction, as concurrent ledger steps commit: a rollup row that
    many of them update is a new row version per commit, pruned as they go (in one long
    transaction the versions would pile up, which no writer of ours does)."""
    async with pool.acquire() as conn:
        for row in rows:
            await conn.execute(statement, *row)


# The read model's row of a newly opened case, as the first ledger step writes it.
_OPEN_CASE = """INSERT INTO cases (case_id, kind, reason, channel, order_id, line_id, request_id,
               sku, category, customer_id, status, currency, paid_minor, refund_limit_minor,
               refunded_minor, policy_version, waiting_for, opened_at, last_seq, updated_at,
               batch, quantity)
           VALUES ($1, 'return', 'quality_defect', 'web', $2, '1', 'r1', $3, 'apparel', 'c',
                   'requested', 'EUR', 5000, 5000, 0, 'bench', 'review', now(), 1, now(),
                   $4, 1)"""


async def _opening_rows_per_s(pool: asyncpg.Pool, prefix: str, writers: int = 1) -> float:
    """The read model's row of a newly opened case, one transaction each (as each case's
    first ledger step writes it), OPENINGS of them, by `writers` connections at once: all
    opened today for one reason, so every one of them updates the same unnarrowed reasons
    row (and its narrowed ones), each writer waiting for the last one's commit."""
    rows = [
        (f"return-{prefix}{n}-1-r1", f"{prefix}{n}", f"SKU-{n % SKUS}", f"LOT-{n % BATCHES}")
        for n in range(OPENINGS)
    ]
    started = time.perf_counter()
    await asyncio.gather(
        *(_one_transaction_each(pool, _OPEN_CASE, rows[w::writers]) for w in range(writers))
    )
    return round(OPENINGS / (time.perf_counter() - started), 1)


async def _ledger_events_per_s(pool: asyncpg.Pool, prefix: str) -> float:
    """A case's ledger steps, one transaction each as record_case_step writes them: a review
    starts, an agent ends it, a refund is paid (one clock started and ended, one money
    movement), OPENINGS events."""
    rows = [
        (f"return-{prefix}{n // 3}-1-r1", 1 + n % 3,
         ("review_started", "approved", "refund_issued")[n % 3], ("system", "agent")[n % 3 > 0],
         {"amount_minor": 5000, "currency": "EUR"} if n % 3 == 2 else {})
        for n in range(OPENINGS)
    ]  # fmt: skip
    started = time.perf_counter()
    await _one_transaction_each(
        pool,
        """INSERT INTO case_events (case_id, seq, occurred_at, actor, role, action,
                                    status_after, details)
           VALUES ($1, $2, now(), $4, $4, $3, 'x', $5)""",
        rows,
    )
    return round(OPENINGS / (time.perf_counter() - started), 1)


def _steps(
    read: ReportReader, policy: PolicyFile, now: datetime
) -> dict[str, Callable[[], Awaitable[object]]]:
    settings = policy.resolve("general")
    return {
        "rates_by_sku_and_batch": read.return_rates,
        "reasons": read.reasons,
        "time_to_resolve": read.time_to_resolve,
        **{
            f"sla_{clock.rule}_{clock.clock}": functools.partial(
                read.sla, clock, getattr(settings, clock.setting), now
            )
            for clock in SLA_CLOCKS
        },
        "money": read.money,
        "carrier_claims": read.carrier_claims,
        "satisfaction": lambda: read.satisfaction(weekly=False),
        "satisfaction_trend": lambda: read.satisfaction(weekly=True),
    }


async def _sections(
    pool: asyncpg.Pool, policy: PolicyFile, now: datetime, filters: ReportFilters
) -> dict[str, float]:
    """Where a report's time goes: each section once, as AnalyticsStore.report runs it."""
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        await conn.execute(REPORT_SNAPSHOT_SETTINGS)
        read = ReportReader(conn, filters, rollups=filters.rollup_narrowing() is not None)
        timings = {}
        for name, step in _steps(read, policy, now).items():
            started = time.perf_counter()
            await step()
            timings[name] = round(time.perf_counter() - started, 3)
    return timings


async def _report_timings(
    pool: asyncpg.Pool, now: datetime
) -> tuple[dict[str, float], dict[str, Any]]:
    """Each report's and the batch alarm's median time, and three reports by section."""
    store = AnalyticsStore(pool)
    policy = load_policy_file(DEFAULT_POLICY_FILE)
    settings: BatchAlarmSettings = policy.batch_alarm

    async def alarm() -> object:
        return judge_batches(await store.batch_counts(), settings)

    today = now.date()
    days_30 = {"from_day": today - timedelta(days=30), "to_day": today}
    year = {"from_day": today - timedelta(days=365), "to_day": today}
    reports = {
        "everything": ReportFilters(),
        "a_year": ReportFilters(**year),
        "last_30_days": ReportFilters(**days_30),
        "a_year_one_category": ReportFilters(**year, category="home"),
        "a_year_one_channel": ReportFilters(**year, channel="app"),
        "a_year_one_kind": ReportFilters(**year, kind="exchange"),
        "a_year_one_reason": ReportFilters(**year, reason="wrong_item"),
        "last_30_days_one_category": ReportFilters(**days_30, category="home"),
        "last_30_days_one_reason": ReportFilters(**days_30, reason="wrong_item"),
        "a_year_one_sku": ReportFilters(**year, sku="SKU-7"),
        "a_year_one_batch": ReportFilters(**year, sku="SKU-7", batch="LOT-3"),
    }
    timings = {
        f"report_{name}_s": await _median_s(
            functools.partial(store.report, filters, policy.resolve("general"), now)
        )
        for name, filters in reports.items()
    }
    timings["batch_alarm_s"] = await _median_s(alarm)
    sections = {
        name: await _sections(pool, policy, now, reports[name])
        for name in ("everything", "last_30_days", "a_year_one_category")
    }
    return timings, sections


async def measure(pool: asyncpg.Pool) -> dict[str, Any]:
    started = time.perf_counter()
    await pool.execute(_rollup_triggers("DISABLE"))
    await pool.execute(_GENERATE)
    generated_s = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    await pool.execute(_rollup_triggers("ENABLE") + "; SELECT report_rollups_rebuild()")
    rollups_built_s = round(time.perf_counter() - started, 1)
    await pool.execute("VACUUM ANALYZE")
    [counts] = await pool.fetch(
        """SELECT (SELECT count(*) FROM cases) AS cases,
                  (SELECT count(*) FROM case_events) AS events,
                  (SELECT count(*) FROM delivered_units) AS day_totals,
                  (SELECT sum(units) FROM delivered_units) AS units"""
    )
    now = datetime.now(UTC)
    timings, sections = await _report_timings(pool, now)
    with_rollups = await _opening_rows_per_s(pool, "W")
    concurrent_with_rollups = await _opening_rows_per_s(pool, "X", writers=WRITERS)
    await pool.execute("ALTER TABLE cases DISABLE TRIGGER cases_keep_report_rollups_on_insert")
    without_rollups = await _opening_rows_per_s(pool, "R")
    concurrent_without_rollups = await _opening_rows_per_s(pool, "Y", writers=WRITERS)
    await pool.execute("DROP INDEX cases_sku_batch_idx")
    without_index = await _opening_rows_per_s(pool, "N")
    events_with_rollups = await _ledger_events_per_s(pool, "W")
    await pool.execute(
        """ALTER TABLE sla_clocks DISABLE TRIGGER sla_clocks_keep_report_rollups;
           ALTER TABLE case_events DISABLE TRIGGER case_events_keep_report_money"""
    )
    events_without_rollups = await _ledger_events_per_s(pool, "R")
    await pool.execute("ALTER TABLE case_events DISABLE TRIGGER case_events_keep_sla_clocks")
    events_bare = await _ledger_events_per_s(pool, "N")
    return {
        "measured_at": now.isoformat(),
        "generated_s": generated_s,
        "rollups_built_s": rollups_built_s,
        "data": {k: int(v) for k, v in dict(counts).items()},
        "timings_median_of_3": timings,
        "by_section_s": sections,
        "opening_read_model_rows_per_s": {
            "with_rollups_and_index": with_rollups,
            "without_the_rollups": without_rollups,
            "without_the_rollups_nor_the_index": without_index,
            "rollups_ratio": round(with_rollups / without_rollups, 3),
            f"{WRITERS}_writers_with_rollups_and_index": concurrent_with_rollups,
            f"{WRITERS}_writers_without_the_rollups": concurrent_without_rollups,
            f"{WRITERS}_writers_rollups_ratio": round(
                concurrent_with_rollups / concurrent_without_rollups, 3
            ),
        },
        "ledger_events_per_s": {
            "keeping_clocks_and_rollups": events_with_rollups,
            "keeping_clocks_only": events_without_rollups,
            "neither": events_bare,
            "rollups_ratio": round(events_with_rollups / events_without_rollups, 3),
        },
    }


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with scratch_database(Path(folder)) as pool:
            results = await measure(pool)
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
