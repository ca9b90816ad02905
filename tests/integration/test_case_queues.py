"""Case lists and work queues (issue 17) through the real API over real PostgreSQL:
cases written by the real ledger step (LedgerActivities.record_step, as a workflow
writes them), each filter and queue compared with the same predicate evaluated in
Python over the cases as generated, counts against lists, and cursor paging that
walks every row once while cases are inserted between pages."""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.ledger import CaseSnapshot, LedgerActivities, LedgerEntry
from activities.policy_file import load_policy_file
from domain.case import CaseKind, Channel, Dispute, Reason
from domain.ledger import LedgerAction
from domain.policy_settings import PolicySettings
from domain.queues import CUSTOMER_SIDE, NEEDS_DECISION, Queue
from domain.sla import SlaBreach, SlaClock
from domain.state import CaseState, CaseStatus, Escalation, EscalationLevel
from infra import case_queues
from infra.gateway import CaseGateway
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import a_request, eventually
from tests.helpers import api_client, as_role

NOW = datetime.now(UTC).replace(microsecond=0)
STATUSES = [
    CaseStatus.UNDER_REVIEW, CaseStatus.AWAITING_REMEDY_CHOICE, CaseStatus.IN_ARBITRATION,
    CaseStatus.AWAITING_EVIDENCE, CaseStatus.AWAITING_SHIP_BACK,
    CaseStatus.AWAITING_REFUND_CONSENT, CaseStatus.IN_RETURN_TRANSIT,
    CaseStatus.AWAITING_INSPECTION, CaseStatus.REFUNDED, CaseStatus.REJECTED,
]  # fmt: skip
AGENTS = [None, "ann", "bob"]
CARRIERS = [None, "DHL", "UPS"]
KIND_REASONS = [
    (CaseKind.RETURN, Reason.CHANGED_MIND), (CaseKind.RETURN, Reason.QUALITY_DEFECT),
    (CaseKind.DAMAGE_CLAIM, Reason.DAMAGED_IN_TRANSIT),
]  # fmt: skip
CHANNELS = [Channel.WEB, Channel.APP, Channel.EMAIL]
HOURS = [h for h in range(-72, 73) if h]
# Long before other tests' cases: the session's database is shared, and these hundreds of
# cases must not crowd theirs out of a newest-first list.
OPENED = datetime(2024, 1, 1, tzinfo=UTC)
DEADLINE_FIELDS = (
    "evidence_deadline", "review_deadline", "ship_back_deadline", "inspection_deadline",
    "refund_deadline", "remedy_deadline", "consent_deadline", "next_stock_check",
)  # fmt: skip


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API with no worker: lists and queues read PostgreSQL only."""
    gateway = CaseGateway(dev_env.client, pool, "no-worker", load_policy_file(DEFAULT_POLICY_FILE))
    async with api_client(gateway) as client:
        yield client


def a_state(rng: random.Random, sku: str) -> CaseState:
    """A case as some ledger step leaves it, every queue-relevant field drawn at random."""
    kind, reason = rng.choice(KIND_REASONS)
    request = a_request().model_copy(
        update={
            "kind": kind,
            "reason": reason,
            "channel": rng.choice(CHANNELS),
            "carrier": rng.choice(CARRIERS),
            "sku": sku,
            "order_id": f"O-{uuid.uuid4().hex[:10]}",
        }
    )
    status = rng.choice(STATUSES)
    # Never exactly now: "late" is judged at the request's time, moments after NOW.
    deadline = NOW + timedelta(hours=rng.choice(HOURS)) if rng.random() < 0.8 else None
    level = rng.choice(list(EscalationLevel))
    escalation = (
        Escalation(level=level, since=NOW, respond_by=NOW + timedelta(hours=rng.choice(HOURS)))
        if level is not EscalationLevel.NONE
        else Escalation()
    )
    breached = rng.random() < 0.2
    breaches = [SlaBreach(clock=SlaClock.REVIEW, due_at=NOW - timedelta(hours=3),
                          breached_at=NOW - timedelta(hours=2))] if breached else []  # fmt: skip
    disputed = status is CaseStatus.IN_ARBITRATION or rng.random() < 0.1
    return CaseState(
        case_id=request.case_id,
        request=request,
        policy=PolicySettings(),
        status=status,
        opened_at=OPENED - timedelta(minutes=rng.randint(0, 10_000)),
        closed_at=NOW if status.is_closed else None,
        assigned_agent=rng.choice(AGENTS),
        escalation=escalation,
        sla_breaches=breaches,
        dispute=Dispute(event_id="d-1", reason="not what I was told") if disputed else None,
        **dict.fromkeys(DEADLINE_FIELDS, deadline),
    )


async def record(pool: asyncpg.Pool, state: CaseState, seq: int = 1) -> None:
    """Through the ledger step the workflow calls: it fills the read model's columns."""
    entry = LedgerEntry(
        seq=seq, occurred_at=NOW, actor="test", role="system", action=LedgerAction.ASSIGNED,
        rule_id="R23", reason=None, details={}, case=CaseSnapshot.of(state),
    )  # fmt: skip
    await LedgerActivities(pool).record_step(entry)


@dataclass
class Cases:
    sku: str
    states: list[CaseState]

    def matching(self, accept: Callable[[CaseState], bool]) -> set[str]:
        return {s.case_id for s in self.states if accept(s)}


@pytest.fixture
async def cases(pool: asyncpg.Pool) -> Cases:
    rng = random.Random(17)
    sku = f"Q-{uuid.uuid4().hex[:10]}"
    states = [a_state(rng, sku) for _ in range(90)]
    for state in states:
        await record(pool, state)
    return Cases(sku, states)


async def listed(api: httpx.AsyncClient, query: str, role: str = "agent") -> list[dict[str, Any]]:
    answer = await api.get(f"/cases?{query}&limit=500", headers=as_role(role, "ann"))
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


def is_late(s: CaseState) -> bool:
    due = s.next_deadline
    return s.closed_at is None and (bool(s.sla_breaches) or (due is not None and due < NOW))


def forge(cursor: dict[str, str]) -> str:
    """A cursor as a caller could make one: the API's encoding of chosen contents."""
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


FILTERS: list[tuple[str, Callable[[CaseState], bool]]] = [
    ("status=under_review,awaiting_evidence",
     lambda s: s.status in {CaseStatus.UNDER_REVIEW, CaseStatus.AWAITING_EVIDENCE}),
    ("status=under_review&status=refunded",
     lambda s: s.status in {CaseStatus.UNDER_REVIEW, CaseStatus.REFUNDED}),
    ("open=true", lambda s: s.closed_at is None),
    ("kind=damage_claim", lambda s: s.request.kind is CaseKind.DAMAGE_CLAIM),
    ("reason=quality_defect,changed_mind",
     lambda s: s.request.reason in {Reason.QUALITY_DEFECT, Reason.CHANGED_MIND}),
    ("carrier=DHL", lambda s: s.request.carrier == "DHL"),
    ("carrier=dhl", lambda s: s.request.carrier == "DHL"),  # as a person types it
    ("channel=email", lambda s: s.request.channel is Channel.EMAIL),
    ("assignee=bob", lambda s: s.assigned_agent == "bob"),
    ("assignee=unassigned", lambda s: s.assigned_agent is None),
    ("escalation_level=manager", lambda s: s.escalation.level is EscalationLevel.MANAGER),
    ("escalation_level=none", lambda s: s.escalation.level is EscalationLevel.NONE),
    (f"deadline_before={iso(NOW)}",
     lambda s: s.next_deadline is not None and s.next_deadline < NOW),
    (f"deadline_after={iso(NOW + timedelta(hours=24))}",
     lambda s: s.next_deadline is not None and s.next_deadline >= NOW + timedelta(hours=24)),
    ("late=true", is_late),
    ("kind=return&open=true&assignee=ann",
     lambda s: s.request.kind is CaseKind.RETURN and s.closed_at is None
     and s.assigned_agent == "ann"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "accept"), FILTERS, ids=[q for q, _ in FILTERS])
async def test_each_filter_lists_exactly_the_cases_it_names(
    api: httpx.AsyncClient, cases: Cases, query: str, accept: Callable[[CaseState], bool]
) -> None:
    rows = await listed(api, f"sku={cases.sku}&{query}&sort=next_deadline")
    expected = cases.matching(accept)
    assert expected, f"the generated cases should exercise {query}"
    assert {r["case_id"] for r in rows} == expected
    assert len(rows) == len(expected)
    deadlines = [r["next_deadline"] or "9999" for r in rows]
    assert deadlines == sorted(deadlines)  # soonest first, none last


async def test_rows_carry_waiting_for_and_the_next_deadline(
    api: httpx.AsyncClient, cases: Cases
) -> None:
    rows = {r["case_id"]: r for r in await listed(api, f"sku={cases.sku}")}
    for state in cases.states:
        row = rows[state.case_id]
        assert row["waiting_for"] == state.waiting_for
        due = state.next_deadline
        assert row["next_deadline"] == (iso(due) if due else None)
        assert row["escalation_level"] == state.escalation.level.value
        assert row["assigned_agent"] == state.assigned_agent
        assert row["disputed"] is (state.dispute is not None)


async def test_search_finds_a_case_by_its_id_its_order_or_its_sku(
    api: httpx.AsyncClient, cases: Cases
) -> None:
    one = cases.states[3]
    by_id = await listed(api, f"search={one.case_id}")
    by_order = await listed(api, f"search={one.request.order_id}")
    by_sku = await listed(api, f"search={cases.sku}")
    nothing = await listed(api, "search=no-such-thing")
    assert [r["case_id"] for r in by_id] == [one.case_id]
    assert [r["case_id"] for r in by_order] == [one.case_id]
    assert {r["case_id"] for r in by_sku} == cases.matching(lambda _: True)
    assert nothing == []


QUEUES: dict[Queue, Callable[[CaseState], bool]] = {
    Queue.NEEDS_DECISION: lambda s: s.closed_at is None and s.status in NEEDS_DECISION,
    Queue.LATE: is_late,
    # for a supervisor: the cases escalated to supervisors (R18)
    Queue.ESCALATED: lambda s: (
        s.closed_at is None and s.escalation.level is EscalationLevel.SUPERVISOR
    ),
    Queue.ASSIGNED_TO_ME: lambda s: s.closed_at is None and s.assigned_agent == "ann",
    Queue.UNASSIGNED: lambda s: s.closed_at is None and s.assigned_agent is None,
    Queue.WAITING_ON_CUSTOMER: lambda s: s.closed_at is None and s.status in CUSTOMER_SIDE,
}


@pytest.mark.parametrize("queue", list(Queue))
async def test_each_queue_holds_the_open_cases_it_names(
    api: httpx.AsyncClient, cases: Cases, queue: Queue
) -> None:
    answer = await api.get(
        f"/queues/{queue.value}?sku={cases.sku}&limit=500&count=true",
        headers=as_role("supervisor", "ann"),
    )
    assert answer.status_code == 200, answer.text
    page = answer.json()
    expected = cases.matching(QUEUES[queue])
    assert expected
    assert {r["case_id"] for r in page["rows"]} == expected
    assert page["total"] == len(expected)
    assert page["next_cursor"] is None


async def test_an_agents_escalated_queue_holds_every_level_and_the_arbiters_only_disputes(
    api: httpx.AsyncClient, cases: Cases
) -> None:
    """R18: an agent sees every escalated case; R19: the arbiter lists disputed cases
    only, in every queue and list, as it may read no other."""
    escalated = await api.get(
        f"/queues/escalated?sku={cases.sku}&limit=500", headers=as_role("agent", "ann")
    )
    arbiter = await listed(api, f"sku={cases.sku}", role="arbiter")
    arbiter_queue = await api.get(
        f"/queues/needs_decision?sku={cases.sku}&limit=500", headers=as_role("arbiter")
    )
    assert {r["case_id"] for r in escalated.json()["rows"]} == cases.matching(
        lambda s: s.closed_at is None and s.escalation.level is not EscalationLevel.NONE
    )
    assert {r["case_id"] for r in arbiter} == cases.matching(lambda s: s.dispute is not None)
    assert {r["case_id"] for r in arbiter_queue.json()["rows"]} == cases.matching(
        lambda s: s.closed_at is None and s.dispute is not None and s.status in NEEDS_DECISION
    )


@pytest.mark.parametrize("role", ["agent", "supervisor", "manager", "arbiter"])
async def test_queue_counts_match_the_queues_lists(
    api: httpx.AsyncClient, cases: Cases, role: str
) -> None:
    counts = await api.get("/queues", headers=as_role(role, "ann"))
    assert counts.status_code == 200, counts.text
    assert set(counts.json()["counts"]) == {q.value for q in Queue}
    for queue in Queue:
        page = await api.get(f"/queues/{queue.value}?limit=1&count=true",
                             headers=as_role(role, "ann"))  # fmt: skip
        assert page.json()["total"] == counts.json()["counts"][queue.value], queue
    total = await api.get("/cases?open=true&assignee=ann&count=true&limit=1",
                          headers=as_role(role, "ann"))  # fmt: skip
    assert int(total.headers["X-Total-Count"]) == counts.json()["counts"]["assigned_to_me"]


@pytest.mark.parametrize("sort", ["next_deadline", "newest"])
async def test_cursor_paging_walks_every_row_once_while_cases_are_inserted(
    api: httpx.AsyncClient, pool: asyncpg.Pool, cases: Cases, sort: str
) -> None:
    rng = random.Random(26)
    before = {r["case_id"] for r in await listed(api, f"sku={cases.sku}")}
    seen: list[str] = []
    pages = 0
    url = f"/cases?sku={cases.sku}&sort={sort}&limit=7"
    inserted: list[CaseState] = []
    while url:
        answer = await api.get(url, headers=as_role("agent"))
        assert answer.status_code == 200, answer.text
        seen += [r["case_id"] for r in answer.json()]
        pages += 1
        # New cases land before and after the page's end between every two pages.
        for _ in range(2):
            state = a_state(rng, cases.sku)
            inserted.append(state)
            await record(pool, state)
        link = answer.headers.get("Link")
        url = link[1 : link.index(">")] if link else ""
        if link:
            assert answer.headers["X-Next-Cursor"] in url
    assert len(seen) == len(set(seen)), "a row came twice"
    assert before <= set(seen), "a row that was there from the start was skipped"
    assert set(seen) - before <= {s.case_id for s in inserted}
    assert pages > len(before) // 7


async def test_offset_and_a_forged_cursor_are_refused_naming_the_field(
    api: httpx.AsyncClient,
) -> None:
    offset = await api.get("/cases?offset=50", headers=as_role("agent"))
    forged = await api.get("/cases?cursor=bm90LWEtY3Vyc29y", headers=as_role("agent"))
    other_sort = await api.get("/cases?limit=1&sort=newest", headers=as_role("agent"))
    token = other_sort.headers.get("X-Next-Cursor")
    mismatched = await api.get(f"/cases?cursor={token}&sort=next_deadline",
                               headers=as_role("agent"))  # fmt: skip
    crafted = [
        forge({"sort": "newest", "at": "2026-12-01T10:00:00Z", "case_id": "return-\u0000"}),
        forge({"sort": "newest", "at": "2026-12-01T10:00:00", "case_id": "return-O-1-1-r1"}),
    ]
    crafted_answers = [
        await api.get(f"/cases?cursor={token}", headers=as_role("agent")) for token in crafted
    ]
    unknown_status = await api.get("/cases?status=under_review,lost", headers=as_role("agent"))
    naive = await api.get("/cases?deadline_before=2026-12-01T10:00:00", headers=as_role("agent"))
    assert (offset.status_code, offset.json()["errors"][0]["field"]) == (422, "query.offset")
    assert (forged.status_code, forged.json()["errors"][0]["field"]) == (422, "query.cursor")
    assert token is not None
    assert (mismatched.status_code, mismatched.json()["errors"][0]["field"]) == (
        422, "query.cursor",
    )  # fmt: skip
    for answer in crafted_answers:  # a NUL, a time without its offset: 422, not 500
        assert (answer.status_code, answer.json()["errors"][0]["field"]) == (422, "query.cursor")
    assert unknown_status.status_code == 422
    assert unknown_status.json()["errors"][0]["field"] == "query.status"
    assert "under_review, awaiting_remedy_choice" in unknown_status.json()["detail"]
    assert "lost" not in unknown_status.json()["detail"]  # no input echoed
    assert naive.status_code == 422
    assert "deadline_before" in naive.json()["detail"]


async def test_old_callers_still_get_the_newest_cases_of_one_status(
    api: httpx.AsyncClient, cases: Cases
) -> None:
    rows = await listed(api, f"sku={cases.sku}&status=under_review")
    opened = [r["opened_at"] for r in rows]
    assert opened == sorted(opened, reverse=True)
    assert {r["case_id"] for r in rows} == cases.matching(
        lambda s: s.status is CaseStatus.UNDER_REVIEW
    )


async def test_a_ledger_step_moves_a_case_between_queues(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    """The columns follow the case: assigning, escalating and closing it in later steps
    moves it out of one queue and into another."""
    rng = random.Random(3)
    sku = f"Q-{uuid.uuid4().hex[:10]}"
    state = a_state(rng, sku).model_copy(
        update={"status": CaseStatus.UNDER_REVIEW, "closed_at": None, "assigned_agent": None,
                "escalation": Escalation()}
    )  # fmt: skip
    await record(pool, state, seq=1)

    async def queue_of(queue: Queue) -> set[str]:
        page = await api.get(f"/queues/{queue.value}?sku={sku}", headers=as_role("manager", "kim"))
        return {r["case_id"] for r in page.json()["rows"]}

    assert await queue_of(Queue.UNASSIGNED) == {state.case_id}
    assert await queue_of(Queue.ASSIGNED_TO_ME) == set()
    state = state.model_copy(
        update={
            "assigned_agent": "kim",
            "escalation": Escalation(
                level=EscalationLevel.MANAGER, since=NOW, respond_by=NOW + timedelta(hours=4)
            ),
        }
    )
    await record(pool, state, seq=2)
    assert await queue_of(Queue.UNASSIGNED) == set()
    assert await queue_of(Queue.ASSIGNED_TO_ME) == {state.case_id}
    assert await queue_of(Queue.ESCALATED) == {state.case_id}
    await record(pool, state.model_copy(update={"status": CaseStatus.REJECTED,
                                                 "closed_at": NOW}), seq=3)  # fmt: skip
    assert await queue_of(Queue.ASSIGNED_TO_ME) == set()
    assert await queue_of(Queue.NEEDS_DECISION) == set()


async def test_shared_counts_are_taken_once_for_a_moment_and_mine_live(
    api: httpx.AsyncClient, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counts every viewer shares are taken once for all of them and recounted behind
    the answer once older than SHARED_COUNTS_TTL_S (their `at` says when); "assigned to
    me" is the viewer's own and always current."""
    rng = random.Random(5)
    sku = f"Q-{uuid.uuid4().hex[:10]}"
    headers = as_role("agent", "ann")
    first = (await api.get("/queues", headers=headers)).json()
    state = a_state(rng, sku).model_copy(
        update={"status": CaseStatus.UNDER_REVIEW, "closed_at": None, "assigned_agent": "ann"}
    )
    await record(pool, state)
    cached = (await api.get("/queues", headers=headers)).json()
    monkeypatch.setattr(case_queues, "SHARED_COUNTS_TTL_S", 0.0)
    # Stale: answered as they are, while a recount runs behind them.
    stale = (await api.get("/queues", headers=headers)).json()
    fresh = (
        await eventually(
            lambda: api.get("/queues", headers=headers), lambda r: r.json()["at"] > first["at"]
        )
    ).json()
    assert cached["at"] == first["at"] == stale["at"]
    assert cached["counts"]["needs_decision"] == first["counts"]["needs_decision"]
    assert cached["counts"]["assigned_to_me"] == first["counts"]["assigned_to_me"] + 1
    assert fresh["at"] > first["at"]
    assert fresh["counts"]["needs_decision"] == first["counts"]["needs_decision"] + 1


async def test_counts_older_than_their_longest_life_are_recounted_before_answering(
    api: httpx.AsyncClient, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a quiet spell (no reader for SHARED_COUNTS_MAX_AGE_S) the first reader does
    not get the counts from before it: the desk a newcomer opens in the morning counts
    the night's cases."""
    rng = random.Random(6)
    headers = as_role("agent", "ann")
    first = (await api.get("/queues", headers=headers)).json()
    state = a_state(rng, f"Q-{uuid.uuid4().hex[:10]}").model_copy(
        update={"status": CaseStatus.UNDER_REVIEW, "closed_at": None}
    )
    await record(pool, state)
    monkeypatch.setattr(case_queues, "SHARED_COUNTS_MAX_AGE_S", 0.0)
    after_the_quiet = (await api.get("/queues", headers=headers)).json()
    assert after_the_quiet["at"] > first["at"]
    assert after_the_quiet["counts"]["needs_decision"] == first["counts"]["needs_decision"] + 1
