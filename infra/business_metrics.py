"""The business figures on /metrics, read from the PostgreSQL read model at scrape time.

Counted where the facts already are (the read model the ledger steps keep), never by
counters in workflow code: a workflow replays, and must stay deterministic. A scrape reads
a handful of aggregates over indexed tables; the answer is kept for `max_age_s` so that
several Prometheus servers (or a dashboard refreshing) cost one read."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from infra.outages import DATABASE_DOWN

DEFAULT_MAX_AGE_S = 15.0
READ_TIMEOUT_S = 5.0
log = logging.getLogger("aftersales.business_metrics")

_OPENED = "SELECT kind, count(*) AS n FROM cases GROUP BY kind"
_CLOSED = (
    "SELECT kind, status, count(*) AS n FROM cases WHERE closed_at IS NOT NULL "
    "GROUP BY kind, status"
)
_OPEN = "SELECT status, count(*) AS n FROM cases WHERE closed_at IS NULL GROUP BY status"
_MONEY = (
    "SELECT kind, currency, sum(amount_minor) AS n FROM money_movements "
    "WHERE status = 'succeeded' GROUP BY kind, currency"
)
# A clock is late once its recorded due time passed before it ended (or, still running,
# before now); clocks stopped by the case's closing are not counted. Every clock is named,
# with 0 until one is late, so a dashboard shows each rule from the start.
_LATE = (
    "SELECT r.clock, count(c.clock) FILTER (WHERE c.due_at IS NOT NULL AND NOT c.stopped "
    "AND coalesce(c.ended_at, now()) > c.due_at) AS n "
    "FROM sla_clock_rules r LEFT JOIN sla_clocks c ON c.clock = r.clock GROUP BY r.clock"
)
_FLAGS = "SELECT count(*) FROM batch_flags"


@dataclass
class _Snapshot:
    opened: list[asyncpg.Record] = field(default_factory=list)
    closed: list[asyncpg.Record] = field(default_factory=list)
    open_now: list[asyncpg.Record] = field(default_factory=list)
    money: list[asyncpg.Record] = field(default_factory=list)
    late: list[asyncpg.Record] = field(default_factory=list)
    batch_flags: int = 0


class BusinessFigures(Collector):
    """Register it, then `await refresh()` before each exposition."""

    def __init__(self, pool: asyncpg.Pool, *, max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        self._pool = pool
        self._max_age_s = max_age_s
        self._read_at = -max_age_s
        self._snapshot = _Snapshot()

    async def refresh(self) -> None:
        """Read the figures again once they are older than `max_age_s`. PostgreSQL down:
        the last figures stay (the scrape still serves the HTTP metrics, and /readyz
        says what is wrong)."""
        if time.monotonic() - self._read_at < self._max_age_s:
            return
        try:
            self._snapshot = await asyncio.wait_for(self._read(), READ_TIMEOUT_S)
        except (*DATABASE_DOWN, asyncpg.InterfaceError, TimeoutError) as error:
            log.warning("business figures not read: %s", type(error).__name__)
            return
        self._read_at = time.monotonic()

    async def _read(self) -> _Snapshot:
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            return _Snapshot(
                opened=await conn.fetch(_OPENED),
                closed=await conn.fetch(_CLOSED),
                open_now=await conn.fetch(_OPEN),
                money=await conn.fetch(_MONEY),
                late=await conn.fetch(_LATE),
                batch_flags=await conn.fetchval(_FLAGS),
            )

    def collect(self) -> Iterator[Metric]:
        s = self._snapshot
        opened = CounterMetricFamily(
            "aftersales_cases_opened", "Cases opened, by kind.", labels=["kind"]
        )
        for row in s.opened:
            opened.add_metric([row["kind"]], row["n"])
        closed = CounterMetricFamily(
            "aftersales_cases_closed",
            "Cases closed, by kind and outcome (the final status).",
            labels=["kind", "outcome"],
        )
        for row in s.closed:
            closed.add_metric([row["kind"], row["status"]], row["n"])
        open_now = GaugeMetricFamily(
            "aftersales_cases_open", "Cases open now, by status.", labels=["status"]
        )
        for row in s.open_now:
            open_now.add_metric([row["status"]], row["n"])
        money = CounterMetricFamily(
            "aftersales_money_moved_minor",
            "Money moved (settled), in minor units, by kind and currency (R21).",
            labels=["kind", "currency"],
        )
        for row in s.money:
            money.add_metric([row["kind"], row["currency"].strip()], row["n"])
        late = GaugeMetricFamily(
            "aftersales_sla_breaches",
            "SLA clocks past their due time, by clock (R24).",
            labels=["clock"],
        )
        for row in s.late:
            late.add_metric([row["clock"]], row["n"])
        flags = CounterMetricFamily("aftersales_batch_flags", "Batches the R24 alarm flagged.")
        flags.add_metric([], s.batch_flags)
        yield from (opened, closed, open_now, money, late, flags)
