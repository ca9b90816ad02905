"""R24 at scale: SLA compliance read off the clocks the ledger triggers keep (migration
012) answers exactly what searching the ledgers' events answers, on the same random
histories, on real PostgreSQL."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from domain.analytics import SLA_CLOCKS, ClockRule, DueAt, ReportFilters
from domain.policy_settings import PolicySettings
from domain.sla import SlaClock
from domain.state import MERCHANT_SIDE
from infra.analytics import AnalyticsStore
from infra.policy_file import load_policy_file
from infra.settings import DEFAULT_POLICY_FILE
from tests.test_analytics_data_in import a_sku
from tests.test_analytics_reports import a_case, an_event

NOW = datetime.now(UTC)
# Every action and role a clock starts or ends on, and some no clock cares about.
ACTIONS = sorted(
    {a for c in SLA_CLOCKS if not c.on_claims for a in c.starts | c.ends}
    | {"awaiting_ship_back", "note_added"}
)
ROLES = ["system", "customer", "agent", "supervisor", "manager", "warehouse"]
CLAIM_ACTIONS = ["claim_filed", "carrier_answered", "claim_chased"]


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
                     set(r["while_status"]), set(r["stops_in"]), r["due"])
        for r in rows
    }  # fmt: skip
    assert kept == {
        c.clock: (c.on_claims, set(c.starts), set(c.ends), set(c.ends_roles),
                  set(c.while_status), set(c.stops_in), c.due)
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
            continue  # not "a start to its first end": tests/test_analytics_sla_clocks.py
        met, breached, breaches = await ledger_search(
            pool, clock, getattr(settings, clock.setting), sku
        )
        assert (row.met, row.breached) == (met, breached), clock
        # A claim's clock is listed by its claim (and its case).
        listed = [(b.claim_id or b.case_id, b.started_at, b.ended_at) for b in row.breaches]
        assert sorted(listed) == breaches
        judged += met + breached
    assert judged >= 20  # the histories did start and end clocks
