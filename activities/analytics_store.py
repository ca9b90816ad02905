"""R24's reporting adapter: all of analytics' SQL. Delivered units in, counts out; the
rates, percentiles and the alarm's test are domain/analytics.py's."""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date, datetime, timedelta

import asyncpg
from pydantic import BaseModel, ValidationError

from domain.analytics import (
    MAX_BREACHES_LISTED,
    NARROWING_FIELDS,
    RETURNED_KINDS,
    RETURNED_REASONS,
    SLA_CLOCKS,
    BatchCounts,
    BatchVerdict,
    BreachRow,
    CarrierClaimsRow,
    ClockRule,
    DeliveredUnits,
    MoneyRow,
    Narrowing,
    ReasonRow,
    Report,
    ReportFilters,
    ResolveRow,
    ReturnRateRow,
    SatisfactionRow,
    SlaRow,
    rates_by_sku_and_batch,
    resolve_row,
    return_rate,
    sla_row,
    weekly_means,
)
from domain.policy_settings import PolicySettings


class DeliveryOutcome(BaseModel):
    """`received` rows; `changed` of them were new or corrected totals (0 on a retry)."""

    received: int
    changed: int


class RefusedRow(BaseModel):
    """A CSV row refused: its line in the file (the header is line 1), the row as it was,
    and what is wrong, field by field."""

    line: int
    row: str
    errors: str


DELIVERY_CSV_COLUMNS = ("sku", "batch", "day", "units")


def read_delivery_csv(text: str) -> tuple[list[DeliveredUnits], list[RefusedRow]]:
    """The rows of a CSV with the header `sku,batch,day,units` (day as YYYY-MM-DD, UTC):
    the good ones, and each bad one naming its line and field. A second total for the same
    sku, batch and day is refused, naming the line of the first."""
    lines = text.splitlines()
    reader = csv.reader(lines)
    header = next(reader, [])
    if tuple(h.strip() for h in header) != DELIVERY_CSV_COLUMNS:
        raise ValueError(f"line 1: the header must be {','.join(DELIVERY_CSV_COLUMNS)}")
    good: list[DeliveredUnits] = []
    refused: list[RefusedRow] = []
    first_line: dict[tuple[str, str, date], int] = {}
    for values in reader:
        line = reader.line_num
        raw = lines[line - 1]
        if not values:
            continue
        if len(values) != len(DELIVERY_CSV_COLUMNS):
            refused.append(RefusedRow(line=line, row=raw, errors=f"{len(values)} columns, not 4"))
            continue
        fields: dict[str, object] = dict(
            zip(DELIVERY_CSV_COLUMNS, (v.strip() for v in values), strict=True)
        )
        try:
            row = DeliveredUnits.model_validate(fields | {"units": _integer(values[3].strip())})
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
            )
            refused.append(RefusedRow(line=line, row=raw, errors=problems))
            continue
        key = (row.sku, row.batch, row.day)
        if key in first_line:
            refused.append(
                RefusedRow(line=line, row=raw,
                           errors=f"the same sku, batch and day as line {first_line[key]}")
            )  # fmt: skip
            continue
        first_line[key] = line
        good.append(row)
    return good, refused


def _integer(text: str) -> int | str:
    """CSV holds text; a whole number becomes one, anything else stays text and the
    model's check names what is wrong with it."""
    try:
        return int(text)
    except ValueError:
        return text


# Each section is a scan and an aggregate, planned in milliseconds: compiling it (JIT) cost
# more than it saved, up to a tenth of a second a query at scale. Plans are made for the
# values at hand, never generic (a prepared statement's sixth run may switch to one, made
# for no filter value in particular; docs/analytics.md, Scale).
REPORT_SNAPSHOT_SETTINGS = "SET LOCAL jit = off; SET LOCAL plan_cache_mode = force_custom_plan"


class AnalyticsStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record_deliveries(self, rows: list[DeliveredUnits]) -> DeliveryOutcome:
        """Each (sku, batch, day) total stored once, in one statement: the same total again
        changes nothing, another replaces it (a correction)."""
        changed = await self._pool.fetch(
            """INSERT INTO delivered_units (sku, batch, day, units)
               SELECT * FROM unnest($1::text[], $2::text[], $3::date[], $4::bigint[])
               ON CONFLICT (sku, batch, day) DO UPDATE
                   SET units = EXCLUDED.units, reported_at = now()
                   WHERE delivered_units.units <> EXCLUDED.units
               RETURNING 1""",
            [r.sku for r in rows],
            [r.batch for r in rows],
            [r.day for r in rows],
            [r.units for r in rows],
        )
        return DeliveryOutcome(received=len(rows), changed=len(changed))

    async def report(
        self, filters: ReportFilters, policy: PolicySettings, as_of: datetime
    ) -> Report:
        """Every section of the R24 report over `filters`, SLA deadlines as `policy` sets
        them (the policy file's defaults: a case pinned under other numbers is judged by
        today's), what is still running at `as_of` not judged."""
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            await conn.execute(REPORT_SNAPSHOT_SETTINGS)
            read = ReportReader(conn, filters, rollups=filters.rollup_narrowing() is not None)
            trend = await read.satisfaction(weekly=True)
            by_sku, by_batch = await read.return_rates()
            return Report(
                filters=filters,
                by_sku=by_sku,
                by_batch=by_batch,
                reasons=await read.reasons(),
                time_to_resolve=await read.time_to_resolve(),
                sla=[
                    await read.sla(clock, getattr(policy, clock.setting), as_of)
                    for clock in SLA_CLOCKS
                ],
                money=await read.money(),
                carrier_claims=await read.carrier_claims(),
                satisfaction=await read.satisfaction(weekly=False),
                satisfaction_trend=trend,
                satisfaction_weekly_mean=weekly_means(trend),
                flagged_batches=await read.flagged_batches(),
            )

    async def batch_counts(self) -> list[BatchCounts]:
        """Every batch with delivered units: its units and its returned units (cases that
        name it, of the kinds and reasons that send an item back)."""
        # All time: the monthly rollups hold it whole.
        rows = await self._pool.fetch(
            """WITH delivered AS (
                   SELECT sku, batch, sum(units)::bigint AS units
                   FROM report_delivered_monthly GROUP BY sku, batch),
               returned AS (
                   SELECT sku, batch, sum(units)::bigint AS returns
                   FROM report_units_monthly
                   WHERE narrowed_by = 'all' AND batch IS NOT NULL AND kind = ANY($1::text[])
                         AND reason = ANY($2::text[])
                   GROUP BY sku, batch)
               SELECT d.sku, d.batch, d.units, coalesce(r.returns, 0) AS returns
               FROM delivered d LEFT JOIN returned r USING (sku, batch)""",
            sorted(RETURNED_KINDS),
            sorted(RETURNED_REASONS),
        )
        return [BatchCounts(**dict(row)) for row in rows]

    async def record_flags(self, verdicts: list[BatchVerdict]) -> list[BatchVerdict]:
        """The flagged verdicts not flagged before, each stored once with its event in one
        statement (a batch is flagged once, whatever how often the alarm runs); returns
        those newly stored."""
        flagged = [v for v in verdicts if v.flagged]
        if not flagged:
            return []
        stored = await self._pool.fetch(
            """WITH new AS (
                   INSERT INTO batch_flags (sku, batch, returns, units, baseline_rate, p_value)
                   SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
                                        $5::float8[], $6::float8[])
                   ON CONFLICT (sku, batch) DO NOTHING
                   RETURNING *)
               INSERT INTO batch_events (action, sku, batch, details)
               SELECT 'batch_flagged', sku, batch,
                      jsonb_build_object('returns', returns, 'units', units,
                                         'baseline_rate', baseline_rate, 'p_value', p_value)
               FROM new
               RETURNING sku, batch""",
            [v.sku for v in flagged],
            [v.batch for v in flagged],
            [v.returns for v in flagged],
            [v.units for v in flagged],
            [v.baseline_rate for v in flagged],
            [v.p_value for v in flagged],
        )
        new = {(row["sku"], row["batch"]) for row in stored}
        return [v for v in flagged if (v.sku, v.batch) in new]

    async def flags_to_announce(self, key_prefix: str) -> list[BatchVerdict]:
        """Flags whose message (idempotency key `key_prefix` + sku:batch) was not sent:
        a flag recorded by a run that failed before telling anyone is told by the next."""
        rows = await self._pool.fetch(
            """SELECT sku, batch, units, returns, baseline_rate, p_value FROM batch_flags f
               WHERE NOT EXISTS (SELECT 1 FROM notifications n
                                 WHERE n.idempotency_key = $1 || f.sku || ':' || f.batch
                                       AND n.sent_at IS NOT NULL)
               ORDER BY flagged_at, sku, batch""",
            key_prefix,
        )
        return [
            BatchVerdict(**dict(r), rate=return_rate(r["returns"], r["units"]), flagged=True)
            for r in rows
        ]


def _filtered(filters: ReportFilters, params: list[object], *, deliveries: bool = False) -> str:
    """The WHERE clause of `filters` over cases `c` (or delivered units `d`), its values
    appended to `params`; column names are ours, values are parameters."""

    def arg(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    clauses = []
    if deliveries:
        if filters.from_day:
            clauses.append(f"d.day >= {arg(filters.from_day)}")
        if filters.to_day:
            clauses.append(f"d.day <= {arg(filters.to_day)}")
        for name in ("sku", "batch"):
            if (value := getattr(filters, name)) is not None:
                clauses.append(f"d.{name} = {arg(value)}")
        if filters.category is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM cases x WHERE x.sku = d.sku "
                f"AND x.category = {arg(filters.category)})"
            )
        return " AND ".join(clauses) or "true"
    if filters.from_day:
        start = f"{arg(filters.from_day)}::date::timestamp AT TIME ZONE 'UTC'"
        clauses.append(f"c.opened_at >= {start}")
    if filters.to_day:
        end = f"({arg(filters.to_day)}::date + 1)::timestamp AT TIME ZONE 'UTC'"
        clauses.append(f"c.opened_at < {end}")
    for name in ("category", "sku", "batch", "channel", "kind", "reason"):
        if (value := getattr(filters, name)) is not None:
            clauses.append(f"c.{name} = {arg(value)}")
    return " AND ".join(clauses) or "true"


def _days(column: str, first: date | None, last: date | None, params: list[object]) -> str:
    """`column` (a date) from `first` to `last` inclusive, either open; values appended to
    `params`."""
    clauses = []
    if first is not None:
        params.append(first)
        clauses.append(f"{column} >= ${len(params)}")
    if last is not None:
        params.append(last)
        clauses.append(f"{column} <= ${len(params)}")
    return " AND ".join(clauses) or "true"


def _by_whole_periods(
    first: date | None, last: date | None, period_of: Callable[[date], tuple[date, date]]
) -> tuple[tuple[date | None, date | None], list[tuple[date, date]]]:
    """`first`..`last` (inclusive days, either open) as the whole periods (weeks, months)
    inside it, from the start of the first to the start of the one after the last (none
    when the first is not before it), and the days left at either end as (first, last)
    ranges: together each day of the range once. `period_of` gives the first day of a
    day's period and of the next."""
    one_day = timedelta(days=1)
    whole_from = None
    if first is not None:
        start, following = period_of(first)
        whole_from = first if start == first else following
    whole_until = period_of(last + one_day)[0] if last is not None else None
    edges = []
    if first is not None and whole_from is not None and first < whole_from:
        edges.append((first, min(whole_from - one_day, last or whole_from)))
    if last is not None and whole_until is not None:
        start = max(whole_until, whole_from) if whole_from is not None else whole_until
        if start <= last:
            edges.append((start, last))
    return (whole_from, whole_until), edges


def _week_of(day: date) -> tuple[date, date]:
    monday = day - timedelta(days=day.weekday())
    return monday, monday + timedelta(days=7)


def _month_of(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def _in_periods(column: str, periods: tuple[date | None, date | None], params: list[object]) -> str:
    """`column` (a period's first day) within `_by_whole_periods`' whole periods."""
    clauses = []
    if periods[0] is not None:
        params.append(periods[0])
        clauses.append(f"{column} >= ${len(params)}")
    if periods[1] is not None:
        params.append(periods[1])
        clauses.append(f"{column} < ${len(params)}")
    return " AND ".join(clauses) or "true"


def _opened(first: date, last: date, params: list[object]) -> str:
    """Cases `c` opened from `first` to `last` (UTC days, inclusive)."""
    params.extend([first, last + timedelta(days=1)])
    start, end = len(params) - 1, len(params)
    return (f"c.opened_at >= ${start}::date::timestamp AT TIME ZONE 'UTC' "
            f"AND c.opened_at < ${end}::date::timestamp AT TIME ZONE 'UTC'")  # fmt: skip


class ReportReader:
    """The report's queries, one connection, one snapshot (REPEATABLE READ): every
    section counts the same cases. With `rollups` (the filters name a date range and at
    most one of the fields the rollups are narrowed by), the sections read the report
    rollups (`report_*`) rather than the cases, ledgers and clocks; they answer the same
    (tests/integration/test_analytics_rollups.py)."""

    def __init__(
        self,
        conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
        filters: ReportFilters,
        *,
        rollups: bool,
    ) -> None:
        narrowing = filters.rollup_narrowing()
        if rollups and narrowing is None:
            raise ValueError(
                "the rollups answer a date range narrowed by at most one of "
                + ", ".join(NARROWING_FIELDS)
            )
        self._conn = conn
        self._filters = filters
        self._rollups = rollups
        self._narrowing = narrowing or Narrowing(by="all", to="")

    def _narrowed(self, params: list[object]) -> str:
        """A rollup's rows kept for the report's narrowing."""
        params.extend([self._narrowing.by, self._narrowing.to])
        return f"narrowed_by = ${len(params) - 1} AND narrowed_to = ${len(params)}"

    def _rollup_days(self, column: str, params: list[object]) -> str:
        """A per-day rollup's rows for the report's range and narrowing."""
        narrowed = self._narrowed(params)
        return (
            f"{narrowed} AND {_days(column, self._filters.from_day, self._filters.to_day, params)}"
        )

    def _opened_narrowed(self, first: date, last: date, params: list[object]) -> str:
        """Cases `c` opened from `first` to `last` with the report's narrowing: a range's
        partial weeks or months, read off the cases."""
        opened = _opened(first, last, params)
        if self._narrowing.by == "all":
            return opened
        params.append(self._narrowing.to)
        return f"{opened} AND c.{self._narrowing.by} = ${len(params)}"

    def _delivered_skus(self, params: list[object]) -> str:
        """Delivered units `d` of SKUs the report's category holds (any SKU otherwise): as
        the base query's, a SKU with a case in that category, from the units rollup."""
        if self._narrowing.by != "category":
            return "true"
        params.append(self._narrowing.to)
        return f"""d.sku IN (SELECT sku FROM report_units_monthly
                             WHERE narrowed_by = 'category' AND narrowed_to = ${len(params)}
                                   AND units > 0)"""

    async def return_rates(self) -> tuple[list[ReturnRateRow], list[ReturnRateRow]]:
        """Per SKU and per batch, from one pass over the cases and the delivered units (or
        their monthly rollups, and the range's partial months at either end)."""
        params: list[object] = [sorted(RETURNED_KINDS), sorted(RETURNED_REASONS)]
        returned_cases = "SELECT c.sku, c.batch, c.quantity AS units FROM cases c WHERE " + (
            "c.kind = ANY($1::text[]) AND c.reason = ANY($2::text[])"
        )
        delivered_days = "SELECT d.sku, d.batch, d.units FROM delivered_units d WHERE "
        if self._rollups:
            months, edges = _by_whole_periods(
                self._filters.from_day, self._filters.to_day, _month_of
            )
            returned = [
                f"""SELECT sku, batch, units FROM report_units_monthly
                            WHERE kind = ANY($1::text[]) AND reason = ANY($2::text[])
                                  AND {self._narrowed(params)}
                                  AND {_in_periods("month", months, params)}"""
            ]
            delivered = [
                f"""SELECT sku, batch, units FROM report_delivered_monthly d
                             WHERE {_in_periods("month", months, params)}
                                   AND {self._delivered_skus(params)}"""
            ]
            for first, last in edges:
                returned.append(
                    f"{returned_cases} AND {self._opened_narrowed(first, last, params)}"
                )
                delivered.append(
                    f"{delivered_days} {_days('d.day', first, last, params)}"
                    f" AND {self._delivered_skus(params)}"
                )
        else:
            returned = [f"{returned_cases} AND {_filtered(self._filters, params)}"]
            delivered = [delivered_days + _filtered(self._filters, params, deliveries=True)]
        rows = await self._conn.fetch(
            f"""WITH returned AS (
                    SELECT sku, batch, sum(units)::bigint AS returned
                    FROM ({" UNION ALL ".join(returned)}) x
                    GROUP BY sku, batch HAVING sum(units) > 0),
                delivered AS (
                    SELECT sku, batch, sum(units)::bigint AS delivered
                    FROM ({" UNION ALL ".join(delivered)}) x GROUP BY sku, batch)
                SELECT sku, batch, coalesce(returned, 0) AS returned,
                       coalesce(delivered, 0) AS delivered
                FROM returned FULL JOIN delivered USING (sku, batch)""",
            *params,
        )
        return rates_by_sku_and_batch(
            (r["sku"], r["batch"], r["returned"], r["delivered"]) for r in rows
        )

    async def reasons(self) -> list[ReasonRow]:
        params: list[object] = []
        if self._rollups:
            source = f"""SELECT reason, root_cause, cases FROM report_reasons_daily
                         WHERE {self._rollup_days("day", params)}"""
        else:
            source = f"""SELECT c.reason, c.root_cause, 1 AS cases FROM cases c
                         WHERE {_filtered(self._filters, params)}"""
        rows = await self._conn.fetch(
            f"""SELECT reason, root_cause, sum(cases)::bigint AS cases FROM ({source}) x
                GROUP BY reason, root_cause HAVING sum(cases) > 0
                ORDER BY cases DESC, reason, root_cause NULLS FIRST""",
            *params,
        )
        return [ReasonRow(**dict(r)) for r in rows]

    async def time_to_resolve(self) -> list[ResolveRow]:
        """p50 and p90 in whole hours rounded up (the schema's report_hours): the
        rollups keep no finer durations, and the cases are read the same way."""
        params: list[object] = []
        closed = """SELECT c.kind, c.reason, report_hours(c.closed_at - c.opened_at) AS hours,
                           1 AS cases
                    FROM cases c WHERE c.closed_at IS NOT NULL"""
        if self._rollups:
            # Whole weeks from the weekly rollup; the range's partial weeks at either end
            # (up to six days each) from the cases opened on them.
            weeks, edges = _by_whole_periods(self._filters.from_day, self._filters.to_day, _week_of)
            parts = [
                f"""SELECT kind, reason, hours, cases FROM report_resolve_weekly
                    WHERE {self._narrowed(params)} AND {_in_periods("week", weeks, params)}"""
            ]
            parts += [
                f"{closed} AND {self._opened_narrowed(first, last, params)}"
                for first, last in edges
            ]
            source = " UNION ALL ".join(parts)
        else:
            source = f"{closed} AND {_filtered(self._filters, params)}"
        rows = await self._conn.fetch(
            f"""SELECT kind, reason, hours, sum(cases)::bigint AS cases FROM ({source}) x
                GROUP BY kind, reason, hours HAVING sum(cases) > 0""",
            *params,
        )
        histograms: dict[tuple[str, str], dict[int, int]] = {}
        for r in rows:
            histograms.setdefault((r["kind"], r["reason"]), {})[r["hours"]] = r["cases"]
        return [resolve_row(kind, reason, hours)
                for (kind, reason), hours in sorted(histograms.items())]  # fmt: skip

    async def sla(self, clock: ClockRule, deadline: timedelta, as_of: datetime) -> SlaRow:
        hours = deadline.total_seconds() / 3600
        # The rollup keeps whole hours: exact against a length of whole hours only.
        if self._rollups and hours.is_integer():
            met, breached = await self._sla_counts(clock, deadline, int(hours), as_of)
        else:
            met, breached = await self._sla_counts_searched(clock, deadline, as_of)
        breaches = await self._newest_breaches(clock, deadline, as_of) if breached else []
        return sla_row(clock, hours, met, breached, breaches)

    def _clocks(
        self, clock: ClockRule, deadline: timedelta, as_of: datetime, params: list[object]
    ) -> str:
        """The clock's rows as `s`, each with its case as `c` (and its claim as
        `claim_id`), narrowed by the filters, and as `j` its due time (`due_at`) and
        whether it is late (`late`): past its due time and grace at its end, or now while
        it runs. Due at its stored due time, else its length after the start."""
        if clock.on_claims:
            scope = (
                "JOIN carrier_claims cc ON cc.claim_id = s.id "
                "JOIN cases c ON c.case_id = cc.case_id"
            )
            claim = "s.id"
        else:
            scope = "JOIN cases c ON c.case_id = s.id"
            claim = "NULL"

        def arg(value: object) -> str:
            params.append(value)
            return f"${len(params)}"

        length, grace, now = arg(deadline), arg(clock.grace), arg(as_of)
        named = arg(clock.clock.value)
        return f"""sla_clocks s {scope},
                   LATERAL (SELECT {claim} AS claim_id, due_at,
                                   coalesce(s.ended_at, {now}) > due_at + {grace}::interval
                                       AS late
                            FROM (SELECT coalesce(s.due_at, s.started_at + {length}::interval)
                                             AS due_at) d) j
                   WHERE s.clock = {named} AND {_filtered(self._filters, params)}"""

    async def _sla_counts_searched(
        self, clock: ClockRule, deadline: timedelta, as_of: datetime
    ) -> tuple[int, int]:
        # Each clock as the ledger triggers keep it (`sla_clocks`), its end already
        # found: one that ended by its step is judged; one still running or stopped
        # without its step only once late, as a breach.
        params: list[object] = []
        row = await self._conn.fetchrow(
            f"""SELECT count(*) FILTER (WHERE s.ended_at IS NOT NULL AND NOT s.stopped
                                              AND NOT j.late) AS met,
                       count(*) FILTER (WHERE j.late) AS breached
                FROM {self._clocks(clock, deadline, as_of, params)}""",
            *params,
        )
        assert row is not None
        return row["met"], row["breached"]

    async def _sla_counts(
        self, clock: ClockRule, deadline: timedelta, hours: int, as_of: datetime
    ) -> tuple[int, int]:
        # Ended clocks as `report_sla_daily` keeps them: late as judged when they ended, or
        # by whole hours taken beyond the grace against the length's.
        params: list[object] = [hours, clock.clock.value]
        ended = await self._conn.fetchrow(
            f"""SELECT coalesce(sum(clocks) FILTER (WHERE NOT stopped
                                                       AND NOT coalesce(late, hours > $1)),
                                0)::bigint AS met,
                       coalesce(sum(clocks) FILTER (WHERE coalesce(late, hours > $1)),
                                0)::bigint AS breached
                FROM report_sla_daily
                WHERE clock = $2 AND {self._rollup_days("day", params)}""",
            *params,
        )
        # Still running and late: breached already, and not in the rollup.
        params = []
        overdue = await self._conn.fetchval(
            f"""SELECT count(*) FROM {self._clocks(clock, deadline, as_of, params)}
                      AND s.ended_at IS NULL AND j.late""",
            *params,
        )
        assert ended is not None
        return ended["met"], ended["breached"] + overdue

    async def _newest_breaches(
        self, clock: ClockRule, deadline: timedelta, as_of: datetime
    ) -> list[BreachRow]:
        params: list[object] = []
        rows = await self._conn.fetch(
            f"""SELECT c.case_id, j.claim_id, s.started_at, s.ended_at, s.stopped, j.due_at
                FROM {self._clocks(clock, deadline, as_of, params)} AND j.late
                ORDER BY s.started_at DESC, s.id LIMIT {MAX_BREACHES_LISTED}""",
            *params,
        )
        breaches = []
        for r in rows:
            end = r["ended_at"] or as_of
            breaches.append(
                BreachRow(
                    case_id=r["case_id"], claim_id=r["claim_id"],
                    started_at=r["started_at"], due_at=r["due_at"], ended_at=r["ended_at"],
                    stopped=r["stopped"],
                    hours=(end - r["started_at"]).total_seconds() / 3600,
                    hours_late=(end - r["due_at"]).total_seconds() / 3600,
                )
            )  # fmt: skip
        return breaches

    async def money(self) -> list[MoneyRow]:
        params: list[object] = []
        if self._rollups:
            source = f"""SELECT action, currency, movements, amount_minor
                         FROM report_money_daily WHERE {self._rollup_days("day", params)}"""
        else:
            source = f"""SELECT e.action, e.details ->> 'currency' AS currency, 1 AS movements,
                                (e.details ->> 'amount_minor')::bigint AS amount_minor
                         FROM case_events e JOIN cases c ON c.case_id = e.case_id
                         WHERE {_filtered(self._filters, params)}
                               AND e.details ? 'amount_minor'"""
        rows = await self._conn.fetch(
            f"""SELECT action, currency, sum(movements)::bigint AS movements,
                       sum(amount_minor)::bigint AS amount_minor FROM ({source}) x
                GROUP BY 1, 2 HAVING sum(movements) > 0 ORDER BY 1, 2""",
            *params,
        )
        return [MoneyRow(**dict(r)) for r in rows]

    async def carrier_claims(self) -> list[CarrierClaimsRow]:
        params: list[object] = []
        rows = await self._conn.fetch(
            f"""SELECT cc.currency, count(*) AS claims,
                       sum(cc.claimed_minor)::bigint AS claimed_minor,
                       sum(cc.recovered_minor)::bigint AS recovered_minor
                FROM carrier_claims cc JOIN cases c ON c.case_id = cc.case_id
                WHERE {_filtered(self._filters, params)} GROUP BY 1 ORDER BY 1""",
            *params,
        )
        return [CarrierClaimsRow(**dict(r)) for r in rows]

    async def satisfaction(self, *, weekly: bool) -> list[SatisfactionRow]:
        params: list[object] = []
        if self._rollups:
            source = f"""SELECT week, dimension, level, answers FROM report_satisfaction_daily
                         WHERE {self._rollup_days("day", params)}"""
        else:
            source = f"""SELECT report_week(s.answered_at) AS week, a.dimension, a.level,
                                1 AS answers
                         FROM surveys s JOIN cases c ON c.case_id = s.case_id,
                              LATERAL (VALUES ('attitude', s.attitude),
                                              ('expertise', s.expertise),
                                              ('timeliness', s.timeliness),
                                              ('promise_kept', s.promise_kept))
                                  AS a(dimension, level)
                         WHERE {_filtered(self._filters, params)}
                               AND s.answered_at IS NOT NULL"""
        rows = await self._conn.fetch(
            f"""SELECT {"week" if weekly else "NULL::date"} AS week, dimension, level,
                       sum(answers)::bigint AS answers FROM ({source}) x
                GROUP BY 1, 2, 3 HAVING sum(answers) > 0 ORDER BY 1, 2, 3""",
            *params,
        )
        return [SatisfactionRow(**dict(r)) for r in rows]

    async def flagged_batches(self) -> list[BatchVerdict]:
        params: list[object] = []
        clauses = []
        for name in ("sku", "batch"):
            if (value := getattr(self._filters, name)) is not None:
                params.append(value)
                clauses.append(f"f.{name} = ${len(params)}")
        rows = await self._conn.fetch(
            f"""SELECT sku, batch, units, returns, baseline_rate, p_value FROM batch_flags f
                WHERE {" AND ".join(clauses) or "true"} ORDER BY flagged_at DESC, sku, batch""",
            *params,
        )
        return [
            BatchVerdict(**dict(r), rate=return_rate(r["returns"], r["units"]), flagged=True)
            for r in rows
        ]
