"""R24: the SLA clocks migration 013 adds, kept by the ledger triggers and judged by the
report: R10 first contact, R14 daily follow-ups, R15 claim filing (due at a date)."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from domain.analytics import MERCHANT_SIDE, SLA_CLOCKS, ReportFilters, SlaRow
from domain.ledger import LedgerAction as A
from domain.policy_settings import PolicySettings
from domain.sla import SlaClock as Clock
from infra.analytics import AnalyticsStore
from tests.helpers import state_when, under_review
from tests.test_analytics_data_in import a_sku
from tests.test_analytics_reports import NOW, a_case, an_event
from tests.test_review_and_escalation import decision
from workflows.return_case import ReturnCase
from workflows.steps import casebook

H = timedelta(hours=1)


async def sla_of(pool: asyncpg.Pool, sku: str, clock: Clock) -> SlaRow:
    found = await AnalyticsStore(pool).report(ReportFilters(sku=sku), PolicySettings(), NOW)
    [row] = [r for c, r in zip(SLA_CLOCKS, found.sla, strict=True) if c.deadline is clock]
    return row


async def test_r10_first_contact_is_met_by_a_person_within_24_hours_and_breached_after(
    pool: asyncpg.Pool,
) -> None:
    sku = a_sku()
    start = NOW - timedelta(days=3)
    photos_first = await a_case(pool, sku)  # photos asked for; an agent called at 20 h
    await an_event(pool, photos_first, 1, A.EVIDENCE_REQUESTED, start)
    await an_event(pool, photos_first, 2, A.EVIDENCE_RECEIVED, start + 5 * H, role="customer")
    await an_event(pool, photos_first, 3, A.CALL_SCHEDULED, start + 20 * H, role="agent")
    withdrawn = await a_case(pool, sku)  # the customer withdrew before anyone had to call
    await an_event(pool, withdrawn, 1, A.REVIEW_STARTED, start)
    await an_event(pool, withdrawn, 2, A.WITHDRAWN, start + 2 * H, role="customer")
    late = await a_case(pool, sku)  # the first person acted after 30 h
    await an_event(pool, late, 1, A.REVIEW_STARTED, start)
    await an_event(pool, late, 2, A.APPROVED, start + 30 * H, role="supervisor")
    nobody = await a_case(pool, sku)  # the system approved it (R11): nobody ever called
    await an_event(pool, nobody, 1, A.REVIEW_STARTED, start)
    await an_event(pool, nobody, 2, A.APPROVED, start + 48 * H)
    running = await a_case(pool, sku)  # opened 2 h ago: not judged yet
    await an_event(pool, running, 1, A.REVIEW_STARTED, NOW - 2 * H)
    no_review = await a_case(pool, sku)  # no person needed (R5): no clock
    await an_event(pool, no_review, 1, A.CASE_OPENED, start, role="customer")

    row = await sla_of(pool, sku, Clock.FIRST_CONTACT)

    assert (row.rule, row.deadline_hours) == ("R10", 24)
    assert (row.met, row.breached, row.share_met) == (2, 2, 0.5)
    assert sorted((b.case_id, b.ended_at) for b in row.breaches) == sorted(
        [(late, start + 30 * H), (nobody, None)]
    )


async def test_r14_each_day_waiting_on_the_merchant_is_a_follow_up_clock(
    pool: asyncpg.Pool,
) -> None:
    sku = a_sku()
    start = NOW - timedelta(days=4)
    case = await a_case(pool, sku)
    steps = [
        (A.CASE_OPENED, start, "opened"),  # not yet waiting on the merchant
        (A.REVIEW_STARTED, start + H, "under_review"),  # clock 1 starts
        (A.PROGRESS_UPDATE_SENT, start + 23 * H, "under_review"),  # 1 met at 22 h; 2 starts
        (A.MORE_EVIDENCE_RECEIVED, start + 30 * H, "under_review"),  # changes no clock
        (A.PROGRESS_UPDATE_SENT, start + 53 * H, "under_review"),  # 2 breached at 30 h; 3
        (A.APPROVED, start + 55 * H, "awaiting_ship_back"),  # 3 met: the case left us
        (A.PARCEL_RECEIVED, start + 60 * H, "awaiting_inspection"),  # clock 4 starts
    ]
    for seq, (action, at, status) in enumerate(steps, start=1):
        await an_event(pool, case, seq, action, at, status=status)
    # Clock 4 has run 36 h with no update: breached though still open.

    row = await sla_of(pool, sku, Clock.FOLLOW_UP)

    # The statuses the clock runs in are the ones the workflow sends updates in.
    assert {s.value for s in casebook.MERCHANT_SIDE} == MERCHANT_SIDE

    assert (row.rule, row.deadline_hours) == ("R14", 24)
    assert (row.met, row.breached) == (2, 2)
    assert sorted((b.started_at, b.ended_at) for b in row.breaches) == [
        (start + 23 * H, start + 53 * H),
        (start + 60 * H, None),
    ]
    clocks = await pool.fetch(
        "SELECT started_at, ended_at FROM sla_clocks WHERE clock = $1 AND id = $2 "
        "ORDER BY start_seq",
        Clock.FOLLOW_UP.value, case,
    )  # fmt: skip
    assert [(c["started_at"], c["ended_at"]) for c in clocks] == [
        (start + H, start + 23 * H),
        (start + 23 * H, start + 53 * H),
        (start + 53 * H, start + 55 * H),
        (start + 60 * H, None),
    ]


async def a_claim(
    pool: asyncpg.Pool, sku: str, *, deadline_in: timedelta, events: list[tuple[A, timedelta]]
) -> str:
    case_id = await a_case(pool, sku, kind="damage_claim", reason="damaged_in_transit")
    claim_id = f"claim-{case_id}"
    await pool.execute(
        """INSERT INTO carrier_claims (claim_id, case_id, carrier, status, currency,
               claimed_minor, recovered_minor, file_deadline, last_seq, updated_at)
           VALUES ($1, $2, 'DHL', 'filing', 'EUR', 5000, 0, $3, 0, $4)""",
        claim_id, case_id, NOW + deadline_in, NOW,
    )  # fmt: skip
    for seq, (action, ago) in enumerate(events, start=1):
        await pool.execute(
            """INSERT INTO claim_events (claim_id, seq, occurred_at, action, status_after)
               VALUES ($1, $2, $3, $4, 'x')""",
            claim_id, seq, NOW - ago, action,
        )  # fmt: skip
    return claim_id


async def test_r15_a_claim_filed_by_the_carriers_deadline_is_met_and_one_missed_breached(
    pool: asyncpg.Pool,
) -> None:
    sku = a_sku()
    day = timedelta(days=1)
    await a_claim(pool, sku, deadline_in=10 * day,
                  events=[(A.CLAIM_FILED, 5 * day), (A.CLAIM_CHASED, 1 * day)])  # fmt: skip
    missed = await a_claim(pool, sku, deadline_in=-day, events=[(A.CLAIM_DEADLINE_MISSED, H)])
    late = await a_claim(pool, sku, deadline_in=-2 * day, events=[(A.CLAIM_FILED, day)])

    row = await sla_of(pool, sku, Clock.CLAIM_FILING)

    assert row.rule == "R15"
    assert (row.met, row.breached) == (1, 2)
    assert sorted((b.case_id, b.ended_at) for b in row.breaches) == sorted(
        [(missed, None), (late, NOW - day)]
    )
    due = await pool.fetchval(
        "SELECT due_at FROM sla_clocks WHERE clock = $1 AND id = $2",
        Clock.CLAIM_FILING.value, late,
    )  # fmt: skip
    assert due == NOW - 2 * day  # the carrier's date, not a length from the filing


async def test_r24_the_new_clocks_followed_afresh_equal_what_the_trigger_kept(
    pool: asyncpg.Pool,
) -> None:
    """Migration 013 follows the events written before it with the trigger's own function
    (`only_clocks`): run it again over a case's events, the same clocks come out."""
    sku = a_sku()
    start = NOW - timedelta(days=2)
    case = await a_case(pool, sku)
    steps = [
        (A.REVIEW_STARTED, "under_review", "system", 0),
        (A.PROGRESS_UPDATE_SENT, "under_review", "system", 20),
        (A.APPROVED, "awaiting_ship_back", "agent", 30),
    ]
    for seq, (action, status, role, hours) in enumerate(steps, start=1):
        await an_event(pool, case, seq, action, start + hours * H, role=role, status=status)
    new = [Clock.FIRST_CONTACT.value, Clock.FOLLOW_UP.value]
    query = (
        "SELECT clock, start_seq, started_at, ended_at FROM sla_clocks "
        "WHERE id = $1 AND clock = ANY($2) ORDER BY clock, start_seq"
    )
    kept = await pool.fetch(query, case, new)
    await pool.execute("DELETE FROM sla_clocks WHERE id = $1 AND clock = ANY($2)", case, new)
    await pool.execute(
        """SELECT sla_clocks_follow(false, case_id, seq, occurred_at, action, role,
                                    status_after, $2)
           FROM (SELECT * FROM case_events WHERE case_id = $1 ORDER BY seq) e""",
        case, new,
    )  # fmt: skip
    assert len(kept) == 3
    assert await pool.fetch(query, case, new) == kept


async def test_r10_r14_a_case_under_review_keeps_its_clocks_as_the_workflow_records_it(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # fmt: skip
    """The workflow's own ledger feeds the triggers: photos asked for, photos in, daily
    updates, an agent's approval a day and more later."""
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue)
        await env.sleep(timedelta(hours=30))
        await state_when(handle, lambda s: s.follow_ups_sent >= 1)
        await handle.execute_update(ReturnCase.decide, decision(True))
    ledger = await pool.fetch(
        "SELECT action, occurred_at FROM case_events WHERE case_id = $1 ORDER BY seq", handle.id
    )
    at = {e["action"]: e["occurred_at"] for e in reversed(ledger)}  # each action's first
    updates = [e["occurred_at"] for e in ledger if e["action"] == A.PROGRESS_UPDATE_SENT]
    clocks = await pool.fetch(
        "SELECT clock, started_at, ended_at FROM sla_clocks WHERE id = $1 AND clock = ANY($2) "
        "ORDER BY clock, start_seq",
        handle.id, [Clock.FIRST_CONTACT.value, Clock.FOLLOW_UP.value],
    )  # fmt: skip
    kept = [(c["clock"], c["started_at"], c["ended_at"]) for c in clocks]
    # The first person to act was the agent approving: after 24 h, a breach.
    first_contact = [(Clock.FIRST_CONTACT, at[A.EVIDENCE_REQUESTED], at[A.APPROVED])]
    # Under review from the photos on: one clock per update, the last ended by the approval.
    bounds = [at[A.EVIDENCE_RECEIVED], *updates, at[A.APPROVED]]
    follow_ups = [(Clock.FOLLOW_UP, a, b) for a, b in pairwise(bounds)]
    assert updates
    assert kept == first_contact + follow_ups
