"""R24's reporting adapter: all of analytics' SQL. Delivered units in, counts out; the
rates, percentiles and the alarm's test are domain/analytics.py's."""

from __future__ import annotations

import csv
from datetime import date

import asyncpg
from pydantic import BaseModel, ValidationError

from domain.analytics import (
    RETURNED_KINDS,
    RETURNED_REASONS,
    BatchCounts,
    BatchVerdict,
    DeliveredUnits,
)


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
        """The flagged verdicts not flagged before (each batch is flagged once, whatever
        how often the alarm runs); returns those newly stored."""
        flagged = [v for v in verdicts if v.flagged]
        if not flagged:
            return []
        stored = await self._pool.fetch(
            """INSERT INTO batch_flags (sku, batch, returns, units, baseline_rate, p_value)
               SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
                                    $5::float8[], $6::float8[])
               ON CONFLICT (sku, batch) DO NOTHING
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
