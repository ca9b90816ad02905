"""R24's report as CSV: one section a file, one row a line (what a spreadsheet opens)."""

from __future__ import annotations

import csv
import io
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from domain.analytics import (
    BatchVerdict,
    BreachRow,
    CarrierClaimsRow,
    MoneyRow,
    ReasonRow,
    Report,
    ResolveRow,
    ReturnRateRow,
    SatisfactionMean,
    SatisfactionRow,
    SlaRow,
)


class Section(StrEnum):
    BY_SKU = "by_sku"
    BY_BATCH = "by_batch"
    REASONS = "reasons"
    TIME_TO_RESOLVE = "time_to_resolve"
    SLA = "sla"
    SLA_BREACHES = "sla_breaches"
    MONEY = "money"
    CARRIER_CLAIMS = "carrier_claims"
    SATISFACTION = "satisfaction"
    SATISFACTION_TREND = "satisfaction_trend"
    SATISFACTION_WEEKLY_MEAN = "satisfaction_weekly_mean"
    FLAGGED_BATCHES = "flagged_batches"


_ROW_MODEL: dict[Section, type[BaseModel]] = {
    Section.BY_SKU: ReturnRateRow,
    Section.BY_BATCH: ReturnRateRow,
    Section.REASONS: ReasonRow,
    Section.TIME_TO_RESOLVE: ResolveRow,
    Section.SLA: SlaRow,
    Section.SLA_BREACHES: BreachRow,
    Section.MONEY: MoneyRow,
    Section.CARRIER_CLAIMS: CarrierClaimsRow,
    Section.SATISFACTION: SatisfactionRow,
    Section.SATISFACTION_TREND: SatisfactionRow,
    Section.SATISFACTION_WEEKLY_MEAN: SatisfactionMean,
    Section.FLAGGED_BATCHES: BatchVerdict,
}


def _columns(section: Section) -> list[str]:
    columns = [name for name in _ROW_MODEL[section].model_fields if name != "breaches"]
    return ["rule", "what", *columns] if section is Section.SLA_BREACHES else columns


def _rows(report: Report, section: Section) -> list[dict[str, Any]]:
    if section is Section.SLA:
        return [row.model_dump(mode="json", exclude={"breaches"}) for row in report.sla]
    if section is Section.SLA_BREACHES:
        return [
            {"rule": row.rule, "what": row.what, **breach.model_dump(mode="json")}
            for row in report.sla
            for breach in row.breaches
        ]
    rows: list[BaseModel] = getattr(report, section.value)
    return [row.model_dump(mode="json") for row in rows]


def report_csv(report: Report, section: Section) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_columns(section), lineterminator="\n")
    writer.writeheader()
    writer.writerows(_rows(report, section))
    return out.getvalue()
