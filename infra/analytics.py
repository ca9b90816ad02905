"""R24's reporting adapter: all of analytics' SQL. Delivered units in, counts out; the
rates, percentiles and the alarm's test are domain/analytics.py's."""

from __future__ import annotations

import csv
from datetime import date, datetime, timedelta

import asyncpg
from pydantic import BaseModel, ValidationError

from domain.analytics import (
    MAX_BREACHES_LISTED,
    RETURNED_KINDS,
    RETURNED_REASONS,
    SLA_CLOCKS,
    BatchCounts,
    BatchVerdict,
    CarrierClaimsRow,
    DeliveredUnits,
    MoneyRow,
    ReasonRow,
    Report,
    ReportFilters,
    ResolveRow,
    ReturnRateRow,
    SatisfactionRow,
    SlaBreach,
    SlaClock,
    SlaRow,
    rate_row,
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
            # Each section is a scan and an aggregate, planned in milliseconds: compiling
            # it (JIT) cost more than it saved, up to a tenth of a second a query at scale.
            await conn.execute("SET LOCAL jit = off")
            read = ReportReader(conn, filters)
            trend = await read.satisfaction(weekly=True)
            return Report(
                filters=filters,
                by_sku=await read.return_rates(by_batch=False),
                by_batch=await read.return_rates(by_batch=True),
                reasons=await read.reasons(),
                time_to_resolve=await read.time_to_resolve(),
                sla=[
                    await read.sla(clock, getattr(policy, clock.deadline), as_of)
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
        rows = await self._pool.fetch(
            """WITH delivered AS (
                   SELECT sku, batch, sum(units)::bigint AS units
                   FROM delivered_units GROUP BY sku, batch),
               returned AS (
                   SELECT sku, batch, sum(quantity)::bigint AS returns
                   FROM cases
                   WHERE batch IS NOT NULL AND kind = ANY($1::text[])
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


class ReportReader:
    """The report's queries, one connection, one snapshot (REPEATABLE READ): every
    section counts the same cases."""

    def __init__(
        self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], filters: ReportFilters
    ) -> None:
        self._conn = conn
        self._filters = filters

    async def return_rates(self, *, by_batch: bool) -> list[ReturnRateRow]:
        params: list[object] = [sorted(RETURNED_KINDS), sorted(RETURNED_REASONS)]
        cases = _filtered(self._filters, params)
        delivered = _filtered(self._filters, params, deliveries=True)
        keys = "sku, batch" if by_batch else "sku"
        rows = await self._conn.fetch(
            f"""WITH returned AS (
                    SELECT {keys}, sum(c.quantity)::bigint AS returned FROM cases c
                    WHERE {cases} AND c.kind = ANY($1::text[]) AND c.reason = ANY($2::text[])
                          {"AND c.batch IS NOT NULL" if by_batch else ""}
                    GROUP BY {keys}),
                delivered AS (
                    SELECT {keys}, sum(d.units)::bigint AS delivered FROM delivered_units d
                    WHERE {delivered} GROUP BY {keys})
                SELECT {keys}, coalesce(returned, 0) AS returned,
                       coalesce(delivered, 0) AS delivered
                FROM returned FULL JOIN delivered USING ({keys}) ORDER BY {keys}""",
            *params,
        )
        return [
            rate_row(r["sku"], r["batch"] if by_batch else None, r["returned"], r["delivered"])
            for r in rows
        ]

    async def reasons(self) -> list[ReasonRow]:
        params: list[object] = []
        rows = await self._conn.fetch(
            f"""SELECT c.reason, c.root_cause, count(*) AS cases FROM cases c
                WHERE {_filtered(self._filters, params)}
                GROUP BY c.reason, c.root_cause ORDER BY cases DESC, c.reason""",
            *params,
        )
        return [ReasonRow(**dict(r)) for r in rows]

    async def time_to_resolve(self) -> list[ResolveRow]:
        params: list[object] = []
        rows = await self._conn.fetch(
            f"""SELECT c.kind, c.reason,
                       array_agg(extract(epoch FROM c.closed_at - c.opened_at) / 3600) AS hours
                FROM cases c
                WHERE {_filtered(self._filters, params)} AND c.closed_at IS NOT NULL
                GROUP BY c.kind, c.reason ORDER BY c.kind, c.reason""",
            *params,
        )
        return [resolve_row(r["kind"], r["reason"], [float(h) for h in r["hours"]]) for r in rows]

    async def sla(self, clock: SlaClock, deadline: timedelta, as_of: datetime) -> SlaRow:
        params: list[object] = []

        def arg(value: object) -> str:
            params.append(value)
            return f"${len(params)}"

        limit, now = f"{arg(deadline)}::interval", arg(as_of)
        if clock.on_claims:
            scope = (
                "JOIN carrier_claims cc ON cc.claim_id = s.id "
                "JOIN cases c ON c.case_id = cc.case_id"
            )
        else:
            scope = "JOIN cases c ON c.case_id = s.id"
        # Each clock as the ledger triggers keep it (migration 012), not searched for in
        # the events: one row per started clock, its end already found.
        judged = f"""
            SELECT s.id, s.started_at, s.ended_at,
                   coalesce(s.ended_at, {now}) - s.started_at > {limit} AS breached
            FROM sla_clocks s {scope}
            WHERE s.clock = {arg(clock.deadline)} AND {_filtered(self._filters, params)}
                  AND (s.ended_at IS NOT NULL OR {now} - s.started_at > {limit})"""
        # One pass: the counts over every judged clock (window counts, taken before the
        # LIMIT), and the newest breaches first.
        listed = await self._conn.fetch(
            f"""SELECT id, started_at, ended_at, breached,
                       count(*) FILTER (WHERE NOT breached) OVER () AS met_total,
                       count(*) FILTER (WHERE breached) OVER () AS breached_total
                FROM ({judged}) j
                ORDER BY breached DESC, started_at DESC LIMIT {MAX_BREACHES_LISTED}""",
            *params,
        )
        met = listed[0]["met_total"] if listed else 0
        breached = listed[0]["breached_total"] if listed else 0
        breaches = [
            SlaBreach(
                case_id=r["id"], started_at=r["started_at"], ended_at=r["ended_at"],
                hours=((r["ended_at"] or as_of) - r["started_at"]).total_seconds() / 3600,
            )
            for r in listed
            if r["breached"]
        ]  # fmt: skip
        hours = deadline.total_seconds() / 3600
        return sla_row(clock, hours, met, breached, breaches)

    async def money(self) -> list[MoneyRow]:
        params: list[object] = []
        rows = await self._conn.fetch(
            f"""SELECT e.action, e.details ->> 'currency' AS currency, count(*) AS movements,
                       sum((e.details ->> 'amount_minor')::bigint)::bigint AS amount_minor
                FROM case_events e JOIN cases c ON c.case_id = e.case_id
                WHERE {_filtered(self._filters, params)} AND e.details ? 'amount_minor'
                GROUP BY 1, 2 ORDER BY 1, 2""",
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
        week = (
            "date_trunc('week', s.answered_at AT TIME ZONE 'UTC')::date" if weekly else "NULL::date"
        )
        rows = await self._conn.fetch(
            f"""SELECT {week} AS week, a.dimension, a.level, count(*) AS answers
                FROM surveys s JOIN cases c ON c.case_id = s.case_id,
                     LATERAL (VALUES ('attitude', s.attitude), ('expertise', s.expertise),
                                     ('timeliness', s.timeliness),
                                     ('promise_kept', s.promise_kept)) AS a(dimension, level)
                WHERE {_filtered(self._filters, params)} AND s.answered_at IS NOT NULL
                GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
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
