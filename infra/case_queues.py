"""Case lists and work queues from the PostgreSQL read model (`cases`, infra/migrations):
one query builder for every filter of domain/queues.py, keyset paging, and every queue's
count in one round trip. No Temporal call: a list answers with no worker running.

Each filter becomes SQL with bound parameters only. The queues' order is the next
deadline, soonest first, cases with none last (the key `coalesce(next_deadline,
'infinity')`, which the schema's partial indexes `cases_open_*` hold for open cases), then the
case id; a page ends with a cursor naming its last row, and the next page starts after
it, so a case inserted meanwhile neither repeats a row nor hides one. A case whose next
deadline moves between two pages moves in the order too (it is read where it is now)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from domain.case import Role
from domain.queues import (
    PAGE_SIZE,
    CaseFilter,
    CasePage,
    CaseRow,
    CaseSort,
    Cursor,
    Queue,
    QueueCounts,
    Viewer,
    queue_filter,
    scope_of,
)
from domain.state import EscalationLevel
from infra.security.blind_index import TrackingNumberIndex

# How old the shared queues' counts may be: a count answers within this of the lists.
SHARED_COUNTS_TTL_S = 2.0
# Older than this (a desk nobody opened for a while), the counts are not answered stale
# while a recount runs behind them: the first reader waits for the recount.
SHARED_COUNTS_MAX_AGE_S = 10 * SHARED_COUNTS_TTL_S
SHARED_QUEUES = [q for q in Queue if q is not Queue.ASSIGNED_TO_ME]
_CountsKey = tuple[bool, frozenset[EscalationLevel]]
_Counted = tuple[float, datetime, dict[Queue, int]]
DEADLINE_KEY = "coalesce(next_deadline, 'infinity'::timestamptz)"
_ROW_COLUMNS = ", ".join(CaseRow.model_fields)
_ORDER = {
    CaseSort.NEXT_DEADLINE: f"{DEADLINE_KEY}, case_id",
    CaseSort.NEWEST: "opened_at DESC, case_id DESC",
}


class _Sql:
    """WHERE clauses and their bound parameters, numbered as they are added."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def bind(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def where(self, clause: str) -> None:
        self.clauses.append(clause)

    def conditions(self) -> str:
        return " AND ".join(self.clauses) or "true"


def _narrow(sql: _Sql, case_filter: CaseFilter, tracking: TrackingNumberIndex) -> None:
    f = case_filter
    if f.open_only or f.late_at is not None:
        sql.where("closed_at IS NULL")
    for column, values in (
        ("status", f.statuses),
        ("kind", f.kinds),
        ("reason", f.reasons),
        ("channel", f.channels),
        ("escalation_level", f.escalation_levels),
    ):
        if values:
            sql.where(f"{column} = ANY({sql.bind(sorted(v.value for v in values))}::text[])")
    if f.escalation_levels and EscalationLevel.NONE not in f.escalation_levels:
        sql.where(f"escalation_level <> '{EscalationLevel.NONE.value}'")  # the partial index
    for column, value in (("sku", f.sku), ("assigned_agent", f.assignee)):
        if value is not None:
            sql.where(f"{column} = {sql.bind(value)}")
    if f.carrier is not None:
        # A carrier's name as a person types it ("dhl" is DHL); no index serves it either way.
        sql.where(f"upper(carrier) = upper({sql.bind(f.carrier)})")
    if f.unassigned:
        sql.where("assigned_agent IS NULL")
    if f.deadline_before is not None:
        sql.where(f"next_deadline < {sql.bind(f.deadline_before)}")
    if f.deadline_after is not None:
        sql.where(f"next_deadline >= {sql.bind(f.deadline_after)}")
    if f.late_at is not None:
        sql.where(f"({DEADLINE_KEY} < {sql.bind(f.late_at)} OR sla_breached_at IS NOT NULL)")
    if f.disputed is not None:
        sql.where(f"disputed = {sql.bind(f.disputed)}")
    if f.search is not None:
        text = sql.bind(f.search)
        hashes = sql.bind(tracking.tokens(f.search))
        # One index lookup per way a case is named, instead of an OR no index serves.
        sql.where(
            f"""case_id IN (SELECT {text}::text
                            UNION ALL SELECT case_id FROM cases WHERE order_id = {text}
                            UNION ALL SELECT case_id FROM cases WHERE sku = {text}
                            UNION ALL SELECT case_id FROM case_tracking_numbers
                                      WHERE tracking_hash = ANY({hashes}::bytea[]))"""
        )


def _after(sql: _Sql, sort: CaseSort, cursor: Cursor) -> None:
    match sort:
        case CaseSort.NEXT_DEADLINE:
            at = f"coalesce({sql.bind(cursor.at)}::timestamptz, 'infinity'::timestamptz)"
            sql.where(f"({DEADLINE_KEY}, case_id) > ({at}, {sql.bind(cursor.case_id)})")
        case CaseSort.NEWEST:
            sql.where(f"(opened_at, case_id) < ({sql.bind(cursor.at)}, {sql.bind(cursor.case_id)})")


def _cursor_of(row: CaseRow, sort: CaseSort) -> Cursor:
    at = row.next_deadline if sort is CaseSort.NEXT_DEADLINE else row.opened_at
    return Cursor(sort=sort, at=at, case_id=row.case_id)


class CaseQueues:
    def __init__(self, pool: asyncpg.Pool, tracking: TrackingNumberIndex) -> None:
        self._pool = pool
        self._tracking = tracking
        # (arbiter's scope?, escalated levels) -> (monotonic time, as of, counts)
        self._shared_counts: dict[_CountsKey, _Counted] = {}
        self._count_locks: dict[_CountsKey, asyncio.Lock] = {}
        # The recount running behind stale counts, one per key; kept so it is not
        # collected while it runs.
        self._recounts: dict[_CountsKey, asyncio.Task[_Counted]] = {}
        # Bumped by `changed`: a recount begun before a change does not keep its counts.
        self._generation = 0

    async def page(
        self,
        filters: Sequence[CaseFilter],
        *,
        sort: CaseSort = CaseSort.NEXT_DEADLINE,
        after: Cursor | None = None,
        limit: int = PAGE_SIZE,
        with_total: bool = False,
    ) -> CasePage:
        """The cases every filter matches (AND), in `sort` order, after `after`."""
        sql = _Sql()
        for case_filter in filters:
            _narrow(sql, case_filter, self._tracking)
        matching, matching_args = sql.conditions(), list(sql.args)
        if after is not None:
            _after(sql, sort, after)
        query = (
            f"SELECT {_ROW_COLUMNS} FROM cases WHERE {sql.conditions()} "
            f"ORDER BY {_ORDER[sort]} LIMIT {sql.bind(limit + 1)}"
        )
        async with self._pool.acquire() as conn:
            records = await conn.fetch(query, *sql.args)
            total = None
            if with_total:
                total = await conn.fetchval(
                    f"SELECT count(*) FROM cases WHERE {matching}", *matching_args
                )
        rows = [CaseRow(**dict(r)) for r in records[:limit]]
        more = len(records) > limit
        return CasePage(
            rows=rows,
            next_cursor=_cursor_of(rows[-1], sort).encode() if more else None,
            total=total,
        )

    async def queue(
        self,
        queue: Queue,
        viewer: Viewer,
        now: datetime,
        *,
        narrowed_by: CaseFilter | None = None,
        after: Cursor | None = None,
        limit: int = PAGE_SIZE,
        with_total: bool = False,
    ) -> CasePage:
        """One queue as `viewer` sees it, soonest deadline first, optionally narrowed."""
        filters = [scope_of(viewer), queue_filter(queue, viewer, now)]
        if narrowed_by is not None:
            filters.append(narrowed_by)
        return await self.page(filters, after=after, limit=limit, with_total=with_total)

    async def counts(self, viewer: Viewer, now: datetime) -> QueueCounts:
        """Every queue's count for `viewer`, as of `at`. The queues every viewer of the
        same scope and ladder level shares are counted for all of them at once (20
        operators refreshing their queues would otherwise count the same 100,000 index
        entries 20 times over): a count older than SHARED_COUNTS_TTL_S is answered as it
        is while one recount runs behind it, so nobody waits for a recount but the first
        caller after a quiet spell (SHARED_COUNTS_MAX_AGE_S) or a change made here
        (`changed`). "Assigned to me" is the viewer's own, counted live."""
        level = queue_filter(Queue.ESCALATED, viewer, now).escalation_levels
        key = (viewer.role is Role.ARBITER, level)
        cached = self._fresh(key)
        if cached is None:
            async with self._count_locks.setdefault(key, asyncio.Lock()):
                cached = self._fresh(key) or await self._recount(key, viewer, now)
        elif time.monotonic() - cached[0] > SHARED_COUNTS_TTL_S and key not in self._recounts:
            recount = asyncio.create_task(self._recount(key, viewer, now))
            self._recounts[key] = recount
            # A failed recount (PostgreSQL down) leaves the old counts; the next caller
            # starts another, and meets the outage in its own count below.
            recount.add_done_callback(lambda done: done.cancelled() or done.exception())
        _, at, shared = cached
        mine = await self._count([Queue.ASSIGNED_TO_ME], viewer, now)
        return QueueCounts(at=at, counts=shared | mine)

    def changed(self) -> None:
        """A case changed through this process (a person's decision, assignment or scan
        attached): the next reader recounts, so whoever changed it sees it counted (the
        queue they go back to holds one case less, and its count says so)."""
        self._generation += 1
        self._shared_counts.clear()

    def _fresh(self, key: _CountsKey) -> _Counted | None:
        cached = self._shared_counts.get(key)
        if cached is None or time.monotonic() - cached[0] > SHARED_COUNTS_MAX_AGE_S:
            return None
        return cached

    async def _recount(self, key: _CountsKey, viewer: Viewer, now: datetime) -> _Counted:
        generation = self._generation
        try:
            counted = (time.monotonic(), now, await self._count(SHARED_QUEUES, viewer, now))
            if generation == self._generation:
                self._shared_counts[key] = counted
            return counted
        finally:
            self._recounts.pop(key, None)

    async def _count(
        self, queues: Sequence[Queue], viewer: Viewer, now: datetime
    ) -> dict[Queue, int]:
        """One statement, one scalar subquery per queue, each answered from its own
        partial index (an index-only scan where the visibility map allows)."""
        args: list[Any] = []
        counts = []
        for queue in queues:
            if queue is Queue.LATE:
                # Late = deadline passed + breached with a deadline still ahead: two
                # index-only counts instead of one OR that must visit the table.
                passed, breached = _Sql(), _Sql()
                passed.args = breached.args = args
                _narrow(passed, scope_of(viewer), self._tracking)
                _narrow(breached, scope_of(viewer), self._tracking)
                at = passed.bind(now)
                passed.where(f"closed_at IS NULL AND {DEADLINE_KEY} < {at}")
                breached.where(f"closed_at IS NULL AND sla_breached_at IS NOT NULL "
                               f"AND {DEADLINE_KEY} >= {at}")  # fmt: skip
                counts.append(
                    f"(SELECT count(*) FROM cases WHERE {passed.conditions()}) + "
                    f"(SELECT count(*) FROM cases WHERE {breached.conditions()})"
                )
                continue
            sql = _Sql()
            sql.args = args  # one numbering for the whole statement
            for case_filter in (scope_of(viewer), queue_filter(queue, viewer, now)):
                _narrow(sql, case_filter, self._tracking)
            counts.append(f"(SELECT count(*) FROM cases WHERE {sql.conditions()})")
        [row] = await self._pool.fetch(f"SELECT {', '.join(counts)}", *args)
        return dict(zip(queues, row.values(), strict=True))
