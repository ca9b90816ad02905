"""R24 at scale: SLA compliance read off the clocks the ledger triggers keep
(`sla_clocks`) answers exactly what searching the ledgers' events answers, and every
section read off the report rollups (SLA: every clock, R10, R14 and R15's included)
exactly what the base tables answer, on random histories, on real PostgreSQL."""

from __future__ import annotations

import functools
import random
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from activities.analytics_store import AnalyticsStore, ReportReader
from activities.policy_file import load_policy_file
from domain.analytics import (
    CLOSED,
    RETURNED_KINDS,
    RETURNED_REASONS,
    SLA_CLOCKS,
    BatchCounts,
    ClockRule,
    DeliveredUnits,
    DueAt,
    ReportFilters,
)
from domain.policy_settings import PolicySettings
from domain.sla import SlaClock
from domain.state import MERCHANT_SIDE
from infra.settings import DEFAULT_POLICY_FILE
from tests.integration.test_analytics_data_in import a_sku
from tests.integration.test_analytics_reports import a_case, a_case_id, an_event

NOW = datetime.now(UTC)
# Every action and role a clock starts or ends on, and some no clock cares about.
ACTIONS = sorted(
    {a for c in SLA_CLOCKS if not c.on_claims for a in c.starts | c.ends}
    | {"awaiting_ship_back", "note_added"}
)
ROLES = ["system", "customer", "agent", "supervisor", "manager", "warehouse"]
CLAIM_ACTIONS = ["claim_filed", "claim_deadline_missed", "carrier_answered", "claim_chased"]
# The statuses a case is left in: the merchant side R14's clock runs in, the closed ones
# that stop R10's first contact, and one neither.
STATUSES = [*sorted(MERCHANT_SIDE | CLOSED), "awaiting_evidence"]


async def ledger_search(
    pool: asyncpg.Pool, clock: ClockRule, deadline: timedelta, sku: str
) -> tuple[int, int, list[tuple[str, datetime, datetime | None]]]:
    """The reference: each start's first later end searched for in the events (the
    report's query before the clocks were kept)."""
    if clock.on_claims:
        # claim_events have no role; an empty role list still types its parameter
        events, key, by_role = "claim_events", "claim_id", "OR cardinality($3::text[]) < 0"
        scope = "JOIN carrier_claims cc ON cc.claim_id = e.claim_id JOIN cases c USING (case_id)"
    else:
        events, key, by_role = "case_events", "case_id", "OR x.role = ANY($3::text[])"
        scope = "JOIN cases c ON c.case_id = e.case_id"
    rows = await pool.fetch(
        f"""WITH starts AS (
                SELECT e.{key} AS id, e.seq, e.occurred_at AS started_at FROM {events} e {scope}
                WHERE e.action = ANY($1::text[]) AND c.sku = $4),
            ended AS (
                SELECT s.id, s.started_at, fin.occurred_at AS ended_at
                FROM starts s LEFT JOIN LATERAL (
                    SELECT x.occurred_at FROM {events} x
                    WHERE x.{key} = s.id AND x.seq > s.seq
                          AND (x.action = ANY($2::text[]) {by_role})
                    ORDER BY x.seq LIMIT 1) fin ON true)
            SELECT id, started_at, ended_at,
                   coalesce(ended_at, $5) - started_at > $6::interval AS breached
            FROM ended WHERE ended_at IS NOT NULL OR $5 - started_at > $6::interval""",
        sorted(clock.starts), sorted(clock.ends), sorted(clock.ends_roles), sku, NOW, deadline,
    )  # fmt: skip
    breaches = sorted((r["id"], r["started_at"], r["ended_at"]) for r in rows if r["breached"])
    return len(rows) - len(breaches), len(breaches), breaches


async def test_r24_the_clock_rules_the_triggers_follow_are_the_domains(
    pool: asyncpg.Pool,
) -> None:
    rows = await pool.fetch("SELECT * FROM sla_clock_rules")
    kept = {
        r["clock"]: (r["on_claims"], set(r["starts"]), set(r["ends"]), set(r["ends_roles"]),
                     set(r["while_status"]), set(r["stops_in"]), r["due"], r["grace"])
        for r in rows
    }  # fmt: skip
    assert kept == {
        c.clock: (c.on_claims, set(c.starts), set(c.ends), set(c.ends_roles),
                  set(c.while_status), set(c.stops_in), c.due, c.grace)
        for c in SLA_CLOCKS
    }  # fmt: skip
    # R14: the follow-up clock runs in the one merchant-side set the workflow sends in.
    [follow_up] = [r for r in rows if r["clock"] == SlaClock.FOLLOW_UP]
    assert set(follow_up["while_status"]) == MERCHANT_SIDE


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_r24_sla_from_the_kept_clocks_equals_the_ledger_search(
    pool: asyncpg.Pool, seed: int
) -> None:
    rng = random.Random(seed)
    sku = a_sku()
    for _ in range(40):
        case_id = await a_case(pool, sku, kind=rng.choice(["return", "exchange"]))
        at = NOW - timedelta(hours=rng.randint(1, 200), minutes=rng.randint(0, 59))
        for seq in range(1, rng.randint(1, 8) + 1):
            await an_event(pool, case_id, seq, rng.choice(ACTIONS), at, role=rng.choice(ROLES))
            at += timedelta(hours=rng.randint(0, 40), minutes=rng.randint(0, 59))
        if rng.random() < 0.3:
            claim_id = f"claim-{uuid.uuid4().hex[:10]}"
            await pool.execute(
                """INSERT INTO carrier_claims (claim_id, case_id, carrier, status, currency,
                       claimed_minor, recovered_minor, file_deadline, last_seq, updated_at)
                   VALUES ($1, $2, 'DHL', 'filed', 'EUR', 5000, 0, $3, 1, $3)""",
                claim_id, case_id, NOW,
            )  # fmt: skip
            at = NOW - timedelta(days=rng.randint(1, 60))
            for seq in range(1, rng.randint(1, 4) + 1):
                await pool.execute(
                    """INSERT INTO claim_events (claim_id, seq, occurred_at, action, status_after)
                       VALUES ($1, $2, $3, $4, 'x')""",
                    claim_id, seq, at, rng.choice(CLAIM_ACTIONS),
                )  # fmt: skip
                at += timedelta(days=rng.randint(0, 40))
    settings: PolicySettings = load_policy_file(DEFAULT_POLICY_FILE).resolve("general")

    found = await AnalyticsStore(pool).report(ReportFilters(sku=sku), settings, NOW)

    judged = 0
    for clock, row in zip(SLA_CLOCKS, found.sla, strict=True):
        if clock.while_status or clock.stops_in or clock.due is not DueAt.AFTER_LENGTH:
            continue  # not "a start to its first end": test_analytics_sla_clocks.py
        met, breached, breaches = await ledger_search(
            pool, clock, getattr(settings, clock.setting), sku
        )
        assert (row.met, row.breached) == (met, breached), clock
        # A claim's clock is listed by its claim (and its case).
        listed = [(b.claim_id or b.case_id, b.started_at, b.ended_at) for b in row.breaches]
        assert sorted(listed) == breaches
        judged += met + breached
    assert judged >= 20  # the histories did start and end clocks


# --- The report rollups answer what the base tables answer ---------------------------

LEVELS = ["very_satisfied", "satisfied", "dissatisfied", "very_dissatisfied"]
MONEY_ACTIONS = ["refund_issued", "compensation_paid", "price_difference_charged"]
# A year of its own, so the ranges below hold only these histories.
EPOCH = datetime(2011, 3, 1, tzinfo=UTC)


def a_moment(rng: random.Random, days: int) -> datetime:
    return EPOCH + timedelta(days=rng.randint(0, days), seconds=rng.randint(0, 86_399),
                             microseconds=rng.randint(0, 999_999))  # fmt: skip


# The fields a report may narrow the rollups by alone (`report_narrowing`), and their values.
NARROWED_BY: dict[str, list[str]] = {
    "category": ["apparel", "electronics", "home"],
    "channel": ["web", "app", "phone_agent"],
    "kind": ["return", "exchange", "damage_claim"],
    "reason": ["quality_defect", "wrong_item", "changed_mind", "not_received"],
}


async def reclassified(pool: asyncpg.Pool, rng: random.Random, case_id: str) -> None:
    """A ledger step rewrites one of the case's fields the rollups are narrowed by."""
    field = rng.choice(sorted(NARROWED_BY))
    await pool.execute(
        f"UPDATE cases SET {field} = $2 WHERE case_id = $1", case_id, rng.choice(NARROWED_BY[field])
    )


async def random_histories(pool: asyncpg.Pool, rng: random.Random, skus: list[str]) -> None:
    """Cases opened over 60 days, closed or not, re-classified (category, channel, kind,
    reason) between their events and after their answers; some cases' first events
    written before the case's row, as the opening step writes them; ledger events (clock
    starts and ends, some at a length's edge, R14's updates due at a slot, statuses that
    start R14's clocks and stop R10's and R14's, money); some clocks deleted; carrier
    claims (filed or deadline missed); surveys answered, re-answered or withdrawn; units
    delivered over 90 days, some totals corrected, some 0. The last SKU has one case, moved
    out of its category."""
    *shared, lone = skus
    batches = ["B1", "B2", None]
    for _ in range(60):
        opened = a_moment(rng, 60)
        closed = timedelta(seconds=rng.randint(1, 20 * 86_400)) if rng.random() < 0.7 else None
        kind = rng.choice(NARROWED_BY["kind"])
        case_id = a_case_id(kind)
        case_row = functools.partial(
            a_case, pool, rng.choice(shared), batch=rng.choice(batches), quantity=rng.randint(1, 5),
            kind=kind, reason=rng.choice(NARROWED_BY["reason"]),
            category=rng.choice(NARROWED_BY["category"]),
            channel=rng.choice(NARROWED_BY["channel"]),
            opened_at=opened, closed_after=closed,
            root_cause=rng.choice([None, "picking_error", "supplier_defect"]), case_id=case_id,
        )  # fmt: skip
        events = rng.randint(1, 8)
        row_after = rng.randint(1, events) if rng.random() < 0.2 else 0
        if not row_after:
            await case_row()
        at = opened
        for seq in range(1, events + 1):
            action = rng.choice(MONEY_ACTIONS if rng.random() < 0.3 else ACTIONS)
            details: dict[str, object] | None = None
            if action in MONEY_ACTIONS:
                details = {"amount_minor": rng.randint(1, 9000),
                           "currency": rng.choice(["EUR", "USD"])}  # fmt: skip
            elif action == "progress_update_sent":
                # R14: due at its slot, sent then, within the grace or later
                slot = at - timedelta(seconds=rng.choice([0, 59, 60, 61, 3600, 30 * 3600]))
                details = {"due_at": slot.isoformat()}
            await an_event(pool, case_id, seq, action, at, role=rng.choice(ROLES),
                           details=details, status=rng.choice(STATUSES))  # fmt: skip
            if seq == row_after:
                await case_row()
            elif seq > row_after and rng.random() < 0.15:
                await reclassified(pool, rng, case_id)
            if rng.random() < 0.3:  # at a length's edge: on it, within R14's grace, past it
                at += timedelta(hours=rng.choice([24, 48]), seconds=rng.choice([0, 30, 60, 61]))
            else:
                at += timedelta(hours=rng.randint(0, 60), seconds=rng.randint(0, 3599))
        if rng.random() < 0.2:
            claim_id = f"claim-{uuid.uuid4().hex[:10]}"
            await pool.execute(
                """INSERT INTO carrier_claims (claim_id, case_id, carrier, status, currency,
                       claimed_minor, recovered_minor, file_deadline, last_seq, updated_at)
                   VALUES ($1, $2, 'DHL', 'filed', 'EUR', 5000, 0, $3, 1, $3)""",
                claim_id, case_id, opened,
            )  # fmt: skip
            for seq in range(1, rng.randint(1, 4) + 1):
                await pool.execute(
                    """INSERT INTO claim_events (claim_id, seq, occurred_at, action, status_after)
                       VALUES ($1, $2, $3, $4, 'x')""",
                    claim_id, seq, a_moment(rng, 120), rng.choice(CLAIM_ACTIONS),
                )  # fmt: skip
        if rng.random() < 0.3:  # the read model moves on: closed, re-opened, a root cause
            await pool.execute(
                "UPDATE cases SET closed_at = $2, root_cause = $3 WHERE case_id = $1",
                case_id, rng.choice([None, opened + timedelta(hours=rng.randint(0, 500))]),
                rng.choice([None, "carrier_damage"]),
            )  # fmt: skip
        if rng.random() < 0.1:
            await pool.execute(
                "UPDATE cases SET kind = 'exchange', quantity = 7, batch = NULL WHERE case_id = $1",
                case_id,
            )
        if rng.random() < 0.6:
            await pool.execute(
                """INSERT INTO surveys (case_id, sent_at, answered_at, attitude, expertise,
                                        timeliness, promise_kept)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                case_id, opened, rng.choice([None, a_moment(rng, 80)]),
                *(rng.choice(LEVELS) for _ in range(4)),
            )  # fmt: skip
            change = rng.random()
            if change < 0.2:
                await pool.execute(
                    "UPDATE surveys SET answered_at = $2, attitude = $3 WHERE case_id = $1",
                    case_id, a_moment(rng, 80), rng.choice(LEVELS),
                )  # fmt: skip
            elif change < 0.3:
                await pool.execute("DELETE FROM surveys WHERE case_id = $1", case_id)
        if rng.random() < 0.3:  # with its clocks, money and answers
            await reclassified(pool, rng, case_id)
    # The category no longer holds the lone SKU, nor its delivered units.
    lone_case = await a_case(pool, lone, category="home", opened_at=a_moment(rng, 60))
    await pool.execute("UPDATE cases SET category = 'apparel' WHERE case_id = $1", lone_case)
    # Clocks deleted (as a backfill that follows events again does first) leave the
    # rollups with the rows they summed.
    ended = await pool.fetch(
        """SELECT s.clock, s.id, s.start_seq FROM sla_clocks s
           JOIN cases c ON c.case_id = s.id AND c.sku = ANY($1::text[])
           WHERE s.ended_at IS NOT NULL ORDER BY 1, 2, 3""",
        skus,
    )
    for gone in rng.sample(ended, 3):
        await pool.execute(
            "DELETE FROM sla_clocks WHERE clock = $1 AND id = $2 AND start_seq = $3", *gone
        )
    store = AnalyticsStore(pool)
    for _ in range(3):  # the shop reports, then corrects some totals
        await store.record_deliveries([
            DeliveredUnits(sku=sku, batch=batch, day=EPOCH.date() + timedelta(days=day),
                           units=rng.choice([0, rng.randint(1, 500)]))
            for sku in skus for batch in ("B1", "B2") for day in rng.sample(range(90), 10)
        ])  # fmt: skip


async def sections(
    conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
    filters: ReportFilters,
    settings: PolicySettings,
    *,
    rollups: bool,
) -> dict[str, object]:
    read = ReportReader(conn, filters, rollups=rollups)
    return {
        "return_rates": await read.return_rates(),
        "reasons": await read.reasons(),
        "time_to_resolve": await read.time_to_resolve(),
        "sla": [await read.sla(c, getattr(settings, c.setting), NOW) for c in SLA_CLOCKS],
        "money": await read.money(),
        "satisfaction": await read.satisfaction(weekly=False),
        "satisfaction_trend": await read.satisfaction(weekly=True),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_r24_every_section_from_the_rollups_equals_the_base_tables(
    pool: asyncpg.Pool, seed: int
) -> None:
    rng = random.Random(seed)
    await random_histories(pool, rng, [a_sku(), a_sku(), a_sku()])
    settings: PolicySettings = load_policy_file(DEFAULT_POLICY_FILE).resolve("general")
    start = EPOCH.date()
    ranges: list[tuple[date | None, date | None]] = [
        (None, None), (start, None), (None, start + timedelta(days=30)),
        (start, start + timedelta(days=60)), (start + timedelta(days=3), start + timedelta(days=5)),
    ]  # fmt: skip
    for _ in range(6):  # any start and end: whole weeks inside or none, partial ones about
        since = start + timedelta(days=rng.randint(-2, 60))
        ranges.append((since, since + timedelta(days=rng.randint(0, 40))))
    # Unnarrowed, and by each field alone (a value no case has among them).
    narrowings: list[dict[str, str]] = [{}, {"category": "no-such-category"}]
    narrowings += [{field: value} for field, values in NARROWED_BY.items() for value in values]
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        for first, last in ranges:
            for narrowing in narrowings:
                filters = ReportFilters(from_day=first, to_day=last, **narrowing)
                from_rollups = await sections(conn, filters, settings, rollups=True)
                from_base = await sections(conn, filters, settings, rollups=False)
                assert from_rollups == from_base, (first, last, narrowing)
        whole = await sections(conn, ReportFilters(from_day=start), settings, rollups=True)
        # The batch alarm's counts, all time, from the rollups: as from the base tables.
        reference = await conn.fetch(
            """WITH delivered AS (
                   SELECT sku, batch, sum(units)::bigint AS units FROM delivered_units
                   GROUP BY sku, batch),
               returned AS (
                   SELECT sku, batch, sum(quantity)::bigint AS returns FROM cases
                   WHERE batch IS NOT NULL AND kind = ANY($1::text[])
                         AND reason = ANY($2::text[])
                   GROUP BY sku, batch)
               SELECT d.sku, d.batch, d.units, coalesce(r.returns, 0) AS returns
               FROM delivered d LEFT JOIN returned r USING (sku, batch)""",
            sorted(RETURNED_KINDS), sorted(RETURNED_REASONS),
        )  # fmt: skip
    counted = sorted(await AnalyticsStore(pool).batch_counts(), key=lambda b: (b.sku, b.batch))
    assert counted == sorted((BatchCounts(**dict(r)) for r in reference),
                             key=lambda b: (b.sku, b.batch))  # fmt: skip
    # The histories did reach every section, and every way the R10, R14, R15 clocks are judged.
    assert all(whole[name] for name in whole)
    assert sum(row.met + row.breached for row in whole["sla"]) >= 20  # type: ignore[attr-defined]
    kept = {
        (r["clock"], r["stopped"], r["late"] is not None)
        for r in await pool.fetch(
            "SELECT * FROM report_sla_daily WHERE clocks > 0 AND narrowed_by = 'all'"
        )
    }
    assert {
        (SlaClock.FOLLOW_UP, False, True),  # R14: an update, due at its slot
        (SlaClock.FOLLOW_UP, True, False),  # R14: the case left the merchant side
        (SlaClock.FIRST_CONTACT, True, False),  # R10: the case closed first
        (SlaClock.FIRST_CONTACT, False, False),
        (SlaClock.CLAIM_FILING, False, True),  # R15: due at the claim's deadline
    } <= kept


@pytest.mark.parametrize(
    "narrowed",
    [{"kind": "return", "reason": "wrong_item"}, {"sku": "SKU-1"}, {"batch": "B1"}],
)
async def test_r24_a_report_narrowed_by_two_fields_or_a_sku_does_not_read_the_rollups(
    pool: asyncpg.Pool, narrowed: dict[str, str]
) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(ValueError, match="at most one of category, channel, kind, reason"):
            ReportReader(conn, ReportFilters(**narrowed), rollups=True)
