"""R24: the SLA clocks with their own rules of ending (`sla_clock_rules`), kept by the
ledger triggers and judged by the report: R10 first contact, R14 daily follow-ups, R15
claim filing (due at a date)."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.analytics_store import AnalyticsStore
from domain.analytics import SLA_CLOCKS, UPDATE_SENDING_GRACE, ReportFilters, SlaRow
from domain.ledger import LedgerAction as A
from domain.policy_settings import PolicySettings
from domain.sla import SlaClock as Clock
from tests.helpers import state_when, under_review
from tests.integration.test_analytics_data_in import a_sku
from tests.integration.test_analytics_reports import NOW, a_case, an_event
from tests.integration.test_review_and_escalation import decision
from workflows.return_case import ReturnCase

H = timedelta(hours=1)
S = timedelta(seconds=1)


async def sla_of(pool: asyncpg.Pool, sku: str, clock: Clock) -> SlaRow:
    found = await AnalyticsStore(pool).report(ReportFilters(sku=sku), PolicySettings(), NOW)
    [row] = [r for c, r in zip(SLA_CLOCKS, found.sla, strict=True) if c.clock is clock]
    return row


async def write_events(pool: asyncpg.Pool, case_id: str, steps: list[tuple[Any, ...]]) -> None:
    """(action, at, role, status[, due_at]) per event, in seq order."""
    for seq, (action, at, role, status, *due) in enumerate(steps, start=1):
        details = {"due_at": due[0].isoformat()} if due else None
        await an_event(pool, case_id, seq, action, at, role=role, status=status, details=details)


async def test_r10_first_contact_is_a_person_reaching_the_customer_within_24_hours(
    pool: asyncpg.Pool,
) -> None:
    sku = a_sku()
    start = NOW - timedelta(days=3)
    cases: dict[str, str] = {}

    async def case(name: str, *steps: tuple[A, timedelta, str, str]) -> None:
        cases[name] = await a_case(pool, sku)
        await write_events(pool, cases[name], [(a, start + t, r, st) for a, t, r, st in steps])

    # Met: an agent booked a call at 20 h; an agent paid goodwill at 10 h.
    await case(
        "called",
        (A.EVIDENCE_REQUESTED, 0 * H, "system", "awaiting_evidence"),
        (A.EVIDENCE_RECEIVED, 5 * H, "customer", "under_review"),
        (A.CALL_SCHEDULED, 20 * H, "agent", "under_review"),
    )
    await case(
        "paid",
        (A.REVIEW_STARTED, 0 * H, "system", "under_review"),
        (A.COMPENSATION_PAID, 10 * H, "agent", "under_review"),
    )
    # Breached: the first person decided after 30 h.
    await case(
        "late",
        (A.REVIEW_STARTED, 0 * H, "system", "under_review"),
        (A.APPROVED, 30 * H, "supervisor", "awaiting_ship_back"),
    )
    # Breached: staff steps the customer never sees are no contact, so it still runs.
    await case(
        "unseen",
        (A.REVIEW_STARTED, 0 * H, "system", "under_review"),
        (A.ASSIGNED, 1 * H, "agent", "under_review"),
        (A.DEADLINE_EXTENDED, 2 * H, "manager", "under_review"),
        (A.COMPENSATION_REFUSED, 3 * H, "manager", "under_review"),
    )
    # Breached, and stopped at the close: the system approved it (R11), then refunded.
    await case(
        "nobody",
        (A.REVIEW_STARTED, 0 * H, "system", "under_review"),
        (A.APPROVED, 48 * H, "system", "awaiting_ship_back"),
        (A.REFUND_ISSUED, 60 * H, "system", "refunded"),
    )
    # Not judged: closed before anyone was due to call.
    await case(
        "withdrawn",
        (A.REVIEW_STARTED, 0 * H, "system", "under_review"),
        (A.WITHDRAWN, 2 * H, "customer", "withdrawn"),
    )
    await case(
        "abandoned",
        (A.EVIDENCE_REQUESTED, 0 * H, "system", "awaiting_evidence"),
        (A.ABANDONED, 10 * H, "system", "abandoned"),
    )
    await case("running", (A.REVIEW_STARTED, 70 * H, "system", "under_review"))  # 2 h ago
    await case("no_review", (A.CASE_OPENED, 0 * H, "customer", "opened"))  # R5: no clock

    row = await sla_of(pool, sku, Clock.FIRST_CONTACT)

    assert (row.rule, row.deadline_hours) == ("R10", 24)
    assert (row.met, row.breached) == (2, 3)
    listed = {b.case_id: (b.ended_at, b.stopped, b.due_at, b.hours, b.hours_late)
              for b in row.breaches}  # fmt: skip
    assert listed == {
        cases["late"]: (start + 30 * H, False, start + 24 * H, 30, 6),
        cases["unseen"]: (None, False, start + 24 * H, 72, 48),
        cases["nobody"]: (start + 60 * H, True, start + 24 * H, 60, 36),  # no longer growing
    }
    assert {b.claim_id for b in row.breaches} == {None}
    stopped = await pool.fetch(
        "SELECT id FROM sla_clocks WHERE clock = $1 AND id = ANY($2) AND stopped",
        Clock.FIRST_CONTACT.value, list(cases.values()),
    )  # fmt: skip
    assert {r["id"] for r in stopped} == {cases[n] for n in ("nobody", "withdrawn", "abandoned")}


async def test_r14_r16_an_update_sent_at_its_slot_is_on_time_even_when_held_to_the_morning(
    pool: asyncpg.Pool,
) -> None:
    sku = a_sku()
    start = NOW - timedelta(days=10)
    case = await a_case(pool, sku)
    await write_events(pool, case, [
        (A.CASE_OPENED, start, "customer", "opened"),  # not yet waiting on the merchant
        (A.REVIEW_STARTED, start + H, "system", "under_review"),  # clock 1 starts
        # Due 24 h on, sent as its timer fired a moment later: met; clock 2 starts.
        (A.PROGRESS_UPDATE_SENT, start + 25 * H + S, "system", "under_review", start + 25 * H),
        (A.MORE_EVIDENCE_RECEIVED, start + 30 * H, "customer", "under_review"),  # no clock
        # Due in the night, held to the morning (R16), 35 h after the last: met; clock 3.
        (A.PROGRESS_UPDATE_SENT, start + 60 * H + S, "system", "under_review", start + 60 * H),
        # Sent 5 h after its slot (a worker down): breached; clock 4 starts.
        (A.PROGRESS_UPDATE_SENT, start + 90 * H, "system", "under_review", start + 85 * H),
        # The case left the merchant side 2 h into clock 4: not judged.
        (A.APPROVED, start + 92 * H, "agent", "awaiting_ship_back"),
        (A.PARCEL_RECEIVED, start + 93 * H, "warehouse", "awaiting_inspection"),  # clock 5
        (A.INSPECTION_PASSED, start + 100 * H, "warehouse", "refund_due"),  # still waiting
        # The case left the merchant side 37 h into clock 5, no update sent: breached.
        (A.REFUND_ISSUED, start + 130 * H, "system", "refunded"),
    ])  # fmt: skip
    waiting = await a_case(pool, sku)  # 30 h under review, no update: breached, running
    await write_events(pool, waiting, [(A.REVIEW_STARTED, NOW - 30 * H, "system", "under_review")])
    fresh = await a_case(pool, sku)  # 2 h under review: not judged yet
    await write_events(pool, fresh, [(A.REVIEW_STARTED, NOW - 2 * H, "system", "under_review")])

    row = await sla_of(pool, sku, Clock.FOLLOW_UP)

    assert (row.rule, row.deadline_hours) == ("R14", 24)
    assert (row.met, row.breached) == (2, 3)
    assert sorted((b.started_at, b.ended_at, b.due_at, b.hours_late) for b in row.breaches) == [
        (start + 60 * H + S, start + 90 * H, start + 85 * H, 5),
        (start + 93 * H, start + 130 * H, start + 117 * H, 13),
        (NOW - 30 * H, None, NOW - 6 * H, 6),
    ]
    clocks = await pool.fetch(
        "SELECT started_at, ended_at, due_at, stopped FROM sla_clocks WHERE clock = $1 "
        "AND id = $2 ORDER BY start_seq",
        Clock.FOLLOW_UP.value, case,
    )  # fmt: skip
    assert [tuple(c.values()) for c in clocks] == [
        (start + H, start + 25 * H + S, start + 25 * H, False),
        (start + 25 * H + S, start + 60 * H + S, start + 60 * H, False),
        (start + 60 * H + S, start + 90 * H, start + 85 * H, False),
        (start + 90 * H, start + 92 * H, None, True),
        (start + 93 * H, start + 130 * H, None, True),
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
    # Named as claims, each with its case; lateness past the carrier's date, not the 0 h
    # from the filing event to itself.
    listed = {b.claim_id: (b.case_id, b.ended_at, b.due_at, b.hours_late)
              for b in row.breaches}  # fmt: skip
    assert listed == {
        missed: (missed.removeprefix("claim-"), None, NOW - day, 24),
        late: (late.removeprefix("claim-"), NOW - day, NOW - 2 * day, 24),
    }
    due = await pool.fetchval(
        "SELECT due_at FROM sla_clocks WHERE clock = $1 AND id = $2",
        Clock.CLAIM_FILING.value, late,
    )  # fmt: skip
    assert due == NOW - 2 * day  # the carrier's date, not a length from the filing


async def test_r15_a_claims_event_without_its_claim_row_is_refused(pool: asyncpg.Pool) -> None:
    """The filing clock is due at the claim row's date: no row, no clock that is never
    judged, but the event refused."""
    with pytest.raises(asyncpg.RaiseError, match="has no carrier_claims row"):
        await pool.execute(
            """INSERT INTO claim_events (claim_id, seq, occurred_at, action, status_after)
               VALUES ('claim-without-row', 1, $1, $2, 'x')""",
            NOW, A.CLAIM_FILED,
        )  # fmt: skip
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM claim_events WHERE claim_id = 'claim-without-row'"
        )
        == 0
    )


async def test_r24_the_new_clocks_followed_afresh_equal_what_the_trigger_kept(
    pool: asyncpg.Pool,
) -> None:
    """A clock rule added later follows the events written before it with the trigger's
    own function (`only_clocks`, as 013 did before the baseline folded it): run it again
    over a case's events, the same clocks come out."""
    sku = a_sku()
    start = NOW - timedelta(days=2)
    case = await a_case(pool, sku)
    await write_events(pool, case, [
        (A.REVIEW_STARTED, start, "system", "under_review"),
        (A.PROGRESS_UPDATE_SENT, start + 20 * H, "system", "under_review", start + 20 * H),
        (A.APPROVED, start + 30 * H, "agent", "awaiting_ship_back"),
    ])  # fmt: skip
    new = [Clock.FIRST_CONTACT.value, Clock.FOLLOW_UP.value]
    query = (
        "SELECT clock, start_seq, started_at, ended_at, due_at, stopped FROM sla_clocks "
        "WHERE id = $1 AND clock = ANY($2) ORDER BY clock, start_seq"
    )
    kept = await pool.fetch(query, case, new)
    await pool.execute("DELETE FROM sla_clocks WHERE id = $1 AND clock = ANY($2)", case, new)
    await pool.execute(
        """SELECT sla_clocks_follow(false, case_id, seq, occurred_at, action, role,
                                    status_after, (details ->> 'due_at')::timestamptz, $2)
           FROM (SELECT * FROM case_events WHERE case_id = $1 ORDER BY seq) e""",
        case, new,
    )  # fmt: skip
    assert len(kept) == 3
    assert [k["due_at"] for k in kept if k["clock"] == Clock.FOLLOW_UP] == [start + 20 * H, None]
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
        "SELECT action, occurred_at, details FROM case_events WHERE case_id = $1 ORDER BY seq",
        handle.id,
    )
    at = {e["action"]: e["occurred_at"] for e in reversed(ledger)}  # each action's first
    updates = [e["occurred_at"] for e in ledger if e["action"] == A.PROGRESS_UPDATE_SENT]
    clocks = await pool.fetch(
        "SELECT clock, started_at, ended_at, due_at FROM sla_clocks "
        "WHERE id = $1 AND clock = ANY($2) ORDER BY clock, start_seq",
        handle.id, [Clock.FIRST_CONTACT.value, Clock.FOLLOW_UP.value],
    )  # fmt: skip
    kept = [(c["clock"], c["started_at"], c["ended_at"]) for c in clocks]
    # R14: each update carries the slot it was due at; its clock is due then, and the
    # update, written as its timer fired, is within the grace of it: on time.
    slots = [datetime.fromisoformat(e["details"]["due_at"]) for e in ledger
             if e["action"] == A.PROGRESS_UPDATE_SENT]  # fmt: skip
    ended_by_updates = [c for c in clocks if c["clock"] == Clock.FOLLOW_UP][: len(updates)]
    assert [c["due_at"] for c in ended_by_updates] == slots
    assert all(
        timedelta(0) <= c["ended_at"] - c["due_at"] <= UPDATE_SENDING_GRACE
        for c in ended_by_updates
    )
    # The first person to act was the agent approving: after 24 h, a breach.
    first_contact = [(Clock.FIRST_CONTACT, at[A.EVIDENCE_REQUESTED], at[A.APPROVED])]
    # Under review from the photos on: one clock per update, the last ended by the approval.
    bounds = [at[A.EVIDENCE_RECEIVED], *updates, at[A.APPROVED]]
    follow_ups = [(Clock.FOLLOW_UP, a, b) for a, b in pairwise(bounds)]
    assert updates
    assert kept == first_contact + follow_ups
