"""The desk's reads at a real team's size (issue 17): 100,000 open cases (and 200,000
closed ones) in the read model, generated in PostgreSQL as bench/analytics_scale.py
does, and 20 operators at once, each going through its queues with their counts, a page
further, a filtered list, a search, a case's ledger and the case itself, through the real
API process (bench/stack.py), beside the API's plain `GET /cases/{id}`. Latency is the
server's own (`Server-Timing`, api/app.py), p50/p95/p99 per route; the client's is
listed too. Then what the queues' columns and indexes (migration 017) cost each ledger
step: the real step (LedgerActivities.record_step) timed with and without them.

`python -m bench.desk_queues` prints JSON and writes bench/desk_queues_results.json."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from activities.ledger import CaseSnapshot, LedgerActivities, LedgerEntry
from bench.stack import Stack, running_stack
from domain.case import CaseKind, Channel, Customer, OpenCaseRequest, Reason, Role
from domain.ledger import LedgerAction
from domain.money import Money
from domain.policy_settings import PolicySettings
from domain.queues import Queue
from domain.state import CaseState, CaseStatus
from domain.view import CaseView
from tests.identities import IDENTITIES

OPEN_CASES = 100_000
CLOSED_CASES = 200_000
OPERATORS = 20
# Per operator; each round is 12 requests.
ROUNDS_WORKING, ROUNDS_SATURATED = 6, 12
THINK_S = 1.0
AGENTS = 40
STEPS = 500  # ledger steps timed with, then without, migration 017's indexes (twice)
OUT = Path(__file__).parent / "desk_queues_results.json"
OPEN_STATUSES = [
    "under_review", "awaiting_evidence", "awaiting_ship_back", "in_return_transit",
    "awaiting_inspection", "refund_due", "awaiting_remedy_choice", "awaiting_refund_consent",
    "in_arbitration",
]  # fmt: skip
# Migration 017's indexes: dropped for the "without" half of the write cost.
QUEUE_INDEXES = [
    "cases_open_by_deadline_idx", "cases_open_status_idx", "cases_open_assignee_idx",
    "cases_open_escalated_idx", "cases_open_breached_idx",
]  # fmt: skip

_GENERATE = f"""
INSERT INTO cases (case_id, kind, reason, channel, order_id, line_id, request_id, sku,
                   category, customer_id, status, currency, paid_minor, refund_limit_minor,
                   refunded_minor, policy_version, waiting_for, next_deadline, opened_at,
                   closed_at, last_seq, updated_at, carrier, assigned_agent,
                   escalation_level, sla_breached_at, disputed, case_view)
SELECT 'return-D' || i || '-1-r1', 'return', 'quality_defect',
       (ARRAY['web', 'app', 'phone_agent', 'email', 'store'])[1 + i % 5],
       'D' || i, '1', 'r1', 'SKU-' || i % 2000, 'apparel', 'cust-' || i % 50000, s.status,
       'EUR', 5990, 5990, 0, 'bench', 'the next step', d.deadline, o.opened_at,
       CASE WHEN i > {OPEN_CASES} THEN o.opened_at + interval '3 days' END, 6, now(),
       (ARRAY['DHL', 'UPS', 'DPD', NULL])[1 + i % 4],
       CASE WHEN i % 5 < 2 THEN NULL ELSE 'agent-' || i % {AGENTS} END,
       CASE WHEN i % 50 = 0 THEN 'manager' WHEN i % 20 = 0 THEN 'supervisor' ELSE 'none' END,
       CASE WHEN i % 19 = 0 THEN now() - interval '1 hour' END,
       s.status = 'in_arbitration',
       jsonb_set(jsonb_set($1::jsonb, '{{case_id}}', to_jsonb('return-D' || i || '-1-r1')),
                 '{{status}}', to_jsonb(s.status))
FROM generate_series(1, {OPEN_CASES + CLOSED_CASES}) AS i,
     LATERAL (SELECT CASE WHEN i > {OPEN_CASES} THEN 'refunded'
                          ELSE ($2::text[])[1 + i % cardinality($2::text[])] END AS status) s,
     LATERAL (SELECT now() - (i % 90) * interval '1 day' AS opened_at) o,
     LATERAL (SELECT CASE WHEN i > {OPEN_CASES} OR i % 10 = 0 THEN NULL
                          ELSE now() + ((i * 7919) % 20160 - 2880) * interval '1 minute'
                     END AS deadline) d;
INSERT INTO case_events (case_id, seq, occurred_at, actor, role, action, rule_id, reason,
                         status_after)
SELECT c.case_id, e.seq, c.opened_at + e.seq * interval '1 hour', e.actor, e.role,
       e.action, e.rule_id, e.reason, c.status
FROM cases c, (VALUES
    (1, 'system', 'system', 'case_opened', 'R2', NULL),
    (2, 'system', 'system', 'review_started', 'R10', NULL),
    (3, 'agent-1', 'agent', 'approved', 'R10', 'the photos show the defect'),
    (4, 'cust-1', 'customer', 'customer_shipped_back', 'R12', 'handed to DHL'),
    (5, 'warehouse', 'warehouse', 'parcel_received', 'R26', NULL),
    (6, 'system', 'system', 'assigned', 'R23', NULL)) AS e(seq, actor, role, action,
                                                            rule_id, reason)
WHERE c.closed_at IS NULL;
INSERT INTO case_notes (case_id, note_id, author, role, body)
SELECT case_id, 'n-1', 'agent-2', 'agent', 'customer called about the pick-up'
FROM cases WHERE closed_at IS NULL AND right(order_id, 1) = '5'
"""


def _template_state(order_id: str) -> CaseState:
    now = datetime.now(UTC)
    request = OpenCaseRequest(
        order_id=order_id, line_id="1", request_id="r1", kind=CaseKind.RETURN,
        reason=Reason.QUALITY_DEFECT, channel=Channel.WEB, sku="SKU-1", category="apparel",
        paid=Money(amount_minor=5990, currency="EUR"), delivered_at=now - timedelta(days=3),
        requested_at=now - timedelta(days=1),
        customer=Customer(customer_id="cust-1", time_zone="Europe/Berlin"),
    )  # fmt: skip
    return CaseState(
        case_id=request.case_id, request=request, policy=PolicySettings(),
        status=CaseStatus.UNDER_REVIEW, opened_at=now, review_deadline=now + timedelta(days=2),
    )  # fmt: skip


async def generate(pool: asyncpg.Pool) -> float:
    started = time.perf_counter()
    view = CaseView.of(_template_state("D0")).model_dump(mode="json")
    async with pool.acquire() as conn, conn.transaction():
        # The rollups' triggers (R24) are not what is measured: off while generating.
        await conn.execute("SET LOCAL session_replication_role = replica")
        cases, events, notes = _GENERATE.split(";\n")
        await conn.execute(cases, view, OPEN_STATUSES)
        await conn.execute(events)
        await conn.execute(notes)
    await pool.execute("VACUUM ANALYZE cases, case_events, case_notes")
    return time.perf_counter() - started


class Timings:
    def __init__(self) -> None:
        self.server: dict[str, list[float]] = defaultdict(list)
        self.client: dict[str, list[float]] = defaultdict(list)

    async def get(self, stack: Stack, route: str, url: str, headers: dict[str, str]) -> Any:
        started = time.perf_counter()
        async with stack.api.get(url, headers=headers) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status} {body}")
            timing = response.headers["Server-Timing"]
        self.client[route].append((time.perf_counter() - started) * 1000)
        self.server[route].append(float(timing.split("dur=")[1]))
        return body

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            route: _percentiles(self.server[route])
            | {"client_p95_ms": _percentiles(self.client[route])["p95_ms"]}
            for route in sorted(self.server)
        }


def _percentiles(taken: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(taken, n=100, method="inclusive")
    return {"p50_ms": round(cuts[49], 1), "p95_ms": round(cuts[94], 1),
            "p99_ms": round(cuts[98], 1), "n": len(taken)}  # fmt: skip


async def operator(stack: Stack, timings: Timings, n: int, *, rounds: int, think_s: float) -> None:
    """One person's loop: queues and counts, the next page of one, a filtered list, a
    search, then a case's ledger and the case itself (the plain `GET /cases/{id}`), with
    `think_s` (0.5 to 1.5 times it) between two requests."""
    rng = random.Random(n)
    role = Role.SUPERVISOR if n % 4 == 0 else Role.AGENT
    headers = IDENTITIES.bearer(role, f"agent-{n}")

    async def get(route: str, url: str) -> Any:
        answer = await timings.get(stack, route, url, headers)
        if think_s:
            await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
        return answer

    for _ in range(rounds):
        await get("GET /queues (counts)", "/queues")
        for queue in Queue:
            page = await get(f"GET /queues/{queue.value}", f"/queues/{queue.value}?limit=50")
            if queue is Queue.UNASSIGNED and page["next_cursor"]:
                following = f"/queues/{queue.value}?limit=50&cursor={page['next_cursor']}"
                await get("GET /queues/{queue} (page 2)", following)
        await get(
            "GET /cases (filtered)",
            "/cases?status=under_review,awaiting_inspection&carrier=DHL&open=true"
            "&sort=next_deadline&limit=50",
        )
        order_id = f"D{rng.randint(1, OPEN_CASES)}"
        case_id = f"return-{order_id}-1-r1"
        await get("GET /cases?search", f"/cases?search={order_id}")
        await get("GET /cases/{id}/ledger", f"/cases/{case_id}/ledger")
        await get("GET /cases/{id}", f"/cases/{case_id}")


async def team(stack: Stack, *, rounds: int, think_s: float) -> dict[str, Any]:
    """OPERATORS people at once; their latencies per route and the rate they made."""
    timings = Timings()
    started = time.perf_counter()
    await asyncio.gather(
        *(operator(stack, timings, n, rounds=rounds, think_s=think_s) for n in range(OPERATORS))
    )
    elapsed = time.perf_counter() - started
    requests = sum(len(v) for v in timings.server.values())
    return {"think_s": think_s, "requests": requests,
            "requests_per_s": round(requests / elapsed, 1),
            "server_side_latency": timings.summary()}  # fmt: skip


async def ledger_steps_ms(pool: asyncpg.Pool, first_seq: int) -> list[float]:
    """STEPS real ledger steps, each on another open case, moving its status, next
    deadline and assignee (so every index that holds them is written)."""
    ledger = LedgerActivities(pool)
    rng = random.Random(first_seq)
    taken = []
    for k in range(STEPS):
        state = _template_state(f"D{rng.randint(1, OPEN_CASES)}").model_copy(
            update={"status": CaseStatus.AWAITING_INSPECTION, "assigned_agent": f"agent-{k}",
                    "inspection_deadline": datetime.now(UTC) + timedelta(hours=k % 48)}
        )  # fmt: skip
        entry = LedgerEntry(
            seq=first_seq + k, occurred_at=datetime.now(UTC), actor="system", role="system",
            action=LedgerAction.ASSIGNED, rule_id="R23", reason=None, details={},
            case=CaseSnapshot.of(state),
        )  # fmt: skip
        started = time.perf_counter()
        await ledger.record_step(entry)
        taken.append((time.perf_counter() - started) * 1000)
    return taken


async def write_cost(pool: asyncpg.Pool) -> dict[str, float]:
    """The ledger step's median with and without migration 017's indexes, alternated
    (with, without, with, without) so the machine's other load falls on both alike."""
    definitions = [
        row["indexdef"]
        for row in await pool.fetch(
            "SELECT indexdef FROM pg_indexes WHERE indexname = ANY($1)", QUEUE_INDEXES
        )
    ]
    with_indexes: list[float] = []
    without: list[float] = []
    seq = 100
    for _ in range(2):
        with_indexes += await ledger_steps_ms(pool, seq)
        await pool.execute(f"DROP INDEX {', '.join(QUEUE_INDEXES)}")
        without += await ledger_steps_ms(pool, seq + STEPS)
        for definition in definitions:
            await pool.execute(definition)
        seq += 2 * STEPS
    return {"ledger_step_median_ms_with_queue_indexes": round(statistics.median(with_indexes), 3),
            "ledger_step_median_ms_without": round(statistics.median(without), 3),
            "steps_each": len(without)}  # fmt: skip


async def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        async with running_stack(Path(folder)) as stack:
            generated_s = await generate(stack.pool)
            # A warm-up round: the API's first requests build its caches and pools.
            await operator(stack, Timings(), 999, rounds=1, think_s=0)
            # People at work: a page, a second or so to read it, the next.
            working = await team(stack, rounds=ROUNDS_WORKING, think_s=THINK_S)
            # Saturation: every operator's next request as soon as the last answered.
            saturated = await team(stack, rounds=ROUNDS_SATURATED, think_s=0)
            cost = await write_cost(stack.pool)
    results = {
        "open_cases": OPEN_CASES, "closed_cases": CLOSED_CASES, "operators": OPERATORS,
        "generated_s": round(generated_s, 1), "working": working, "saturated": saturated,
        "write_cost": cost,
    }  # fmt: skip
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2))
