"""R24: after-sales analytics, the pure part: what the shop reports as delivered, return
rates, percentiles, and the batch alarm's test. No I/O; `activities/analytics_store.py` fetches the
counts and stores the answers."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from domain.case import STAFF, SUPERVISORS, UNDELIVERED, BusinessKey, CaseKind, Reason, Role, Strict
from domain.errors import InvalidValue
from domain.ledger import LedgerAction
from domain.rules import Rule
from domain.sla import RULE_OF_CLOCK, SlaClock
from domain.state import MERCHANT_SIDE, CaseStatus
from domain.survey import Satisfaction


def _plausible_day(value: date) -> date:
    if not 2000 <= value.year <= 2100:
        raise ValueError("must be between the years 2000 and 2100")
    return value


Day = Annotated[date, AfterValidator(_plausible_day)]
Units = Annotated[int, Field(ge=0, le=1_000_000_000, strict=True)]
MAX_DELIVERY_ROWS = 1000


class DeliveredUnits(Strict):
    """The units of one SKU and batch delivered to customers on one day (UTC): the
    return rate's denominator. A total, not an increment: sent again, it changes nothing;
    corrected, it replaces the earlier total."""

    sku: BusinessKey
    batch: BusinessKey
    day: Day
    units: Units


class DeliveryReport(Strict):
    rows: Annotated[list[DeliveredUnits], Field(min_length=1, max_length=MAX_DELIVERY_ROWS)]

    @model_validator(mode="after")
    def _one_total_per_day(self) -> DeliveryReport:
        first_row: dict[tuple[str, str, date], int] = {}
        for place, row in enumerate(self.rows):
            key = (row.sku, row.batch, row.day)
            if key in first_row:
                raise InvalidValue(
                    f"the same sku, batch and day as rows.{first_row[key]}; a day's total is "
                    "sent once",
                    field=f"rows.{place}",
                )
            first_row[key] = place
        return self


# What counts as a unit coming back: items sent back to us (returns and exchanges), not
# parcels that never arrived (R3, R4) nor transit damage (a carrier's fault, not a batch's).
RETURNED_KINDS = frozenset({CaseKind.RETURN, CaseKind.EXCHANGE})
RETURNED_REASONS = frozenset(Reason) - UNDELIVERED - {Reason.DAMAGED_IN_TRANSIT}


def return_rate(returned: int, delivered: int) -> float | None:
    """Returned units per delivered unit; None when nothing was delivered (no rate)."""
    if returned < 0 or delivered < 0:
        raise ValueError("counts cannot be negative")
    return returned / delivered if delivered else None


def percentile_of_counts(counts: Mapping[int, int], share: float) -> int | None:
    """The nearest-rank percentile (the smallest value with at least `share` of the values
    at or below it: always a value that occurred; None for no values) of the values
    `counts` holds (value -> how many times it occurred), without writing them out."""
    if not 0 < share <= 1:
        raise ValueError("share must be in (0, 1]")
    if any(n < 0 for n in counts.values()):
        raise ValueError("counts cannot be negative")
    total = sum(counts.values())
    if not total:
        return None
    rank, seen = math.ceil(share * total), 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the counts add up to the total")


def _log_pmf(k: int, n: int, p: float) -> float:
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def _tail(start: int, stop: int, step: int, n: int, p: float) -> float:
    """Sum of the pmf from `start` towards `stop` (exclusive), moving away from the mode,
    where terms only shrink: stops once they no longer change the sum."""
    total = 0.0
    for k in range(start, stop, step):
        term = math.exp(_log_pmf(k, n, p))
        total += term
        if term <= total * 1e-17:
            break
    return total


def binomial_upper_tail(successes: int, trials: int, rate: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, rate): the one-sided p-value of seeing at
    least this many returns if the batch returned at the baseline rate."""
    if trials < 0 or not 0 <= rate <= 1:
        raise ValueError("trials must be >= 0 and rate in [0, 1]")
    if successes <= 0:
        return 1.0
    if successes > trials or rate == 0:
        return 0.0
    if rate == 1:
        return 1.0
    if successes > trials * rate:  # above the mean: the terms shrink upwards
        return min(1.0, _tail(successes, trials + 1, 1, trials, rate))
    # At or below the mean: one minus the lower tail, whose terms shrink downwards.
    return max(0.0, 1.0 - _tail(successes - 1, -1, -1, trials, rate))


class BatchAlarmSettings(BaseModel):
    """The batch alarm's thresholds (policy.toml [batch_alarm])."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The one-sided test's level: the share of batches returning at their SKU's rate that
    # are flagged anyway (false alarms), per batch judged.
    significance: Annotated[float, Field(gt=0, lt=0.5)] = 0.001
    # A batch with fewer delivered units is not judged: tiny batches are all noise.
    min_units: Annotated[int, Field(ge=1)] = 200
    # The SKU's other batches need this many units to stand as the baseline.
    min_baseline_units: Annotated[int, Field(ge=1)] = 1000
    # A batch must also return at least this many times its baseline rate: over a huge
    # batch a trivial difference is significant, and not worth a person's day.
    min_ratio: Annotated[float, Field(ge=1)] = 1.5


class BatchCounts(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    batch: str
    units: Annotated[int, Field(ge=0)]
    returns: Annotated[int, Field(ge=0)]


class BatchVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    sku: str
    batch: str
    units: int
    returns: int
    rate: float | None
    # The SKU's other batches pooled; None when they have too few units to judge against.
    baseline_rate: float | None
    # None: not tested, as the batch could not be flagged (too few units, a baseline too
    # small, or a rate below min_ratio times the baseline).
    p_value: float | None
    flagged: bool


def judge_batches(
    counts: Iterable[BatchCounts], settings: BatchAlarmSettings
) -> list[BatchVerdict]:
    """Each batch against its SKU's other batches: flagged when it has enough units, its
    rate is at least `min_ratio` times the baseline, and the one-sided exact binomial test
    says so at `significance`. A baseline rate of 0 is raised to half a return over the
    baseline's units, so one return in a spotless SKU is not infinitely surprising."""
    by_sku: dict[str, list[BatchCounts]] = defaultdict(list)
    for batch in counts:
        by_sku[batch.sku].append(batch)
    verdicts = []
    for sku_batches in by_sku.values():
        sku_units = sum(b.units for b in sku_batches)
        sku_returns = sum(b.returns for b in sku_batches)
        for batch in sku_batches:
            other_units = sku_units - batch.units
            other_returns = sku_returns - batch.returns
            baseline = None
            if other_units >= settings.min_baseline_units:
                baseline = max(other_returns, 0.5) / other_units
            rate = return_rate(batch.returns, batch.units)
            # The test only where it could flag: enough units, and a rise large enough.
            p_value = None
            if (
                baseline is not None
                and rate is not None
                and batch.units >= settings.min_units
                and rate >= settings.min_ratio * baseline
            ):
                p_value = binomial_upper_tail(batch.returns, batch.units, min(baseline, 1.0))
            flagged = p_value is not None and p_value < settings.significance
            verdicts.append(
                BatchVerdict(
                    sku=batch.sku, batch=batch.batch, units=batch.units,
                    returns=batch.returns, rate=rate, baseline_rate=baseline,
                    p_value=p_value, flagged=flagged,
                )
            )  # fmt: skip
    return verdicts


# --- Reports -------------------------------------------------------------------------


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refused here, naming the field, not deep in SQL.
    if "\x00" in value:
        raise ValueError("may not contain NUL (\\x00) characters")
    return value


# Free-text filters: any value but NUL; one no case has answers empty (not an error).
FilterValue = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_nul)]

# The case's fields the report's rollups are also kept by, one at a time (the schema's
# `report_narrowing`).
NarrowedBy = Literal["category", "channel", "kind", "reason"]
NARROWING_FIELDS: tuple[NarrowedBy, ...] = ("category", "channel", "kind", "reason")


@dataclass(frozen=True)
class Narrowing:
    """Which rows of a rollup a report reads: `by` "all" (`to` empty) for every case, or
    one of NARROWING_FIELDS and the value `to` of it."""

    by: Literal["all"] | NarrowedBy
    to: str


class ReportFilters(BaseModel):
    """What a report covers: cases opened (and units delivered) from `from_day` to `to_day`
    inclusive (UTC days), narrowed by the case's fields. Category narrows delivered units
    to SKUs with a case in that category; channel, kind and reason narrow the returns only
    (delivered units have none)."""

    model_config = ConfigDict(frozen=True)

    from_day: Day | None = None
    to_day: Day | None = None
    category: FilterValue | None = None
    sku: FilterValue | None = None
    batch: FilterValue | None = None
    channel: FilterValue | None = None
    kind: FilterValue | None = None
    reason: FilterValue | None = None

    def rollup_narrowing(self) -> Narrowing | None:
        """How the report's rollups are narrowed to these filters: a date range with none
        or one of the fields they are kept by; None when more narrows the
        report, read off the base tables."""
        fields = self.model_dump(exclude={"from_day", "to_day"}, exclude_none=True)
        if not fields:
            return Narrowing(by="all", to="")
        for field in NARROWING_FIELDS:
            if fields.keys() == {field}:
                return Narrowing(by=field, to=fields[field])
        return None

    @model_validator(mode="after")
    def _range_in_order(self) -> ReportFilters:
        if self.from_day and self.to_day and self.to_day < self.from_day:
            raise InvalidValue("before from; the range would be empty", field="to")
        return self


class ReturnRateRow(BaseModel):
    sku: str
    batch: str | None  # None: the SKU over all its batches
    returned: int
    delivered: int
    rate: float | None


class ReasonRow(BaseModel):
    reason: str
    root_cause: str | None
    cases: int


class ResolveRow(BaseModel):
    kind: str
    reason: str
    closed_cases: int
    p50_hours: float | None
    p90_hours: float | None


class BreachRow(BaseModel):
    """One breached clock: its case, and its carrier claim for a claim's clock."""

    case_id: str
    claim_id: str | None
    started_at: datetime
    due_at: datetime
    ended_at: datetime | None  # None: still not done, past its due time
    # Ended without its step (the case closed, or left the statuses it runs in).
    stopped: bool
    hours: float  # how long the clock ran (to now while running)
    hours_late: float  # past its due time, to its end (or now)


MAX_BREACHES_LISTED = 100


class SlaRow(BaseModel):
    rule: str
    what: str
    deadline_hours: float
    met: int
    breached: int
    share_met: float | None
    breaches: list[BreachRow]


class MoneyRow(BaseModel):
    action: str
    currency: str
    movements: int
    amount_minor: int


class CarrierClaimsRow(BaseModel):
    currency: str
    claims: int
    claimed_minor: int
    recovered_minor: int


class SatisfactionRow(BaseModel):
    dimension: str
    level: str
    answers: int
    week: date | None = None  # None: over the whole range


# R25's levels as scores, for a mean a trend can be drawn from: 4 is very satisfied.
SATISFACTION_SCORES = {
    Satisfaction.VERY_SATISFIED: 4,
    Satisfaction.SATISFIED: 3,
    Satisfaction.DISSATISFIED: 2,
    Satisfaction.VERY_DISSATISFIED: 1,
}


class SatisfactionMean(BaseModel):
    """One dimension's answers in one week (Monday, UTC) and their mean score
    (SATISFACTION_SCORES: 1 very dissatisfied .. 4 very satisfied)."""

    week: date
    dimension: str
    answers: int
    mean_score: float


def weekly_means(trend: Iterable[SatisfactionRow]) -> list[SatisfactionMean]:
    """Each dimension's mean score per week, from the answers per week and level; ordered
    by week, then dimension. Rows without a week (a whole range's) are not a trend."""
    answers: dict[tuple[date, str], int] = defaultdict(int)
    scores: dict[tuple[date, str], int] = defaultdict(int)
    for row in trend:
        if row.week is None:
            raise ValueError("a trend row needs its week")
        key = (row.week, row.dimension)
        answers[key] += row.answers
        scores[key] += row.answers * SATISFACTION_SCORES[Satisfaction(row.level)]
    return [
        SatisfactionMean(week=week, dimension=dimension, answers=answers[week, dimension],
                         mean_score=scores[week, dimension] / answers[week, dimension])
        for week, dimension in sorted(answers)
        if answers[week, dimension]
    ]  # fmt: skip


class Report(BaseModel):
    filters: ReportFilters
    by_sku: list[ReturnRateRow]
    by_batch: list[ReturnRateRow]
    reasons: list[ReasonRow]
    time_to_resolve: list[ResolveRow]
    sla: list[SlaRow]
    money: list[MoneyRow]
    carrier_claims: list[CarrierClaimsRow]
    satisfaction: list[SatisfactionRow]
    satisfaction_trend: list[SatisfactionRow]
    satisfaction_weekly_mean: list[SatisfactionMean]
    flagged_batches: list[BatchVerdict]


def rate_row(sku: str, batch: str | None, returned: int, delivered: int) -> ReturnRateRow:
    return ReturnRateRow(sku=sku, batch=batch, returned=returned, delivered=delivered,
                         rate=return_rate(returned, delivered))  # fmt: skip


def resolve_row(kind: str, reason: str, hours: Mapping[int, int]) -> ResolveRow:
    """`hours`: closed cases per whole hours taken to close (rounded up, `hours_taken`)."""
    return ResolveRow(
        kind=kind, reason=reason, closed_cases=sum(hours.values()),
        p50_hours=percentile_of_counts(hours, 0.5), p90_hours=percentile_of_counts(hours, 0.9),
    )  # fmt: skip


def rates_by_sku_and_batch(
    counts: Iterable[tuple[str, str | None, int, int]],
) -> tuple[list[ReturnRateRow], list[ReturnRateRow]]:
    """Return rates per SKU and per batch from (sku, batch or None, returned, delivered)
    per SKU and batch: a SKU's counts are its batches' and its batchless cases' sums; a
    batch of None is no batch's."""
    per_sku: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_batch = []
    for sku, batch, returned, delivered in sorted(counts, key=lambda c: (c[0], c[1] or "")):
        per_sku[sku][0] += returned
        per_sku[sku][1] += delivered
        if batch is not None:
            by_batch.append(rate_row(sku, batch, returned, delivered))
    by_sku = [rate_row(sku, None, returned, delivered)
              for sku, (returned, delivered) in sorted(per_sku.items())]  # fmt: skip
    return by_sku, by_batch


def sla_row(
    clock: ClockRule, deadline_hours: float, met: int, breached: int, breaches: list[BreachRow]
) -> SlaRow:
    """`breaches` lists the newest of the `breached` (at most MAX_BREACHES_LISTED)."""
    judged = met + breached
    return SlaRow(rule=clock.rule, what=clock.what, deadline_hours=deadline_hours, met=met,
                  breached=breached, share_met=met / judged if judged else None,
                  breaches=breaches)  # fmt: skip


CLOSED = frozenset(s for s in CaseStatus if s.is_closed)
# R14: the update's timer fires at its slot and the workflow writes the event once its
# task has run, a moment later: that is the update sent at its slot, not a late one.
UPDATE_SENDING_GRACE = timedelta(minutes=1)


class DueAt(StrEnum):
    """When a clock is due (sla_clocks.due_at)."""

    AFTER_LENGTH = "after_length"  # its policy length after the start
    AT_CLAIM_FILE_DEADLINE = "at_claim_file_deadline"  # the carrier's date on the claim
    # The slot its ending event was due at (the event's `details.due_at`); while it runs,
    # after its length.
    AT_SLOT_OF_END = "at_slot_of_end"


@dataclass(frozen=True)
class ClockRule:
    """How one SLA clock (`clock`) is read off the ledger's timestamps: it starts on an
    event with a `starts` action and ends on the first later event of the same case (or
    claim) with an `ends` action done by an `ends_roles` role (either left empty: any).
    Met when that came by its due time, breached when it came later or has not come and
    the due time has passed; still running otherwise (not judged).

    A clock also ends without its step (stopped) when the case enters one of `stops_in`
    or, with `while_status`, leaves them: judged only if already past due then, as a
    breach. With `while_status` a clock runs while the case is in one of them, from
    entering (or the previous clock's end). `due`: see DueAt; with the claim's deadline, a
    start action that is also an end ends the clock at once. `sla_clock_rules` keeps the
    same rules in SQL (a test holds the two equal)."""

    what: str
    clock: SlaClock
    starts: frozenset[str]
    ends: frozenset[str] = frozenset()
    ends_roles: frozenset[Role] = frozenset()
    # The carrier claim's own ledger (claim_events) rather than the case's.
    on_claims: bool = False
    while_status: frozenset[str] = frozenset()
    stops_in: frozenset[str] = frozenset()
    due: DueAt = DueAt.AFTER_LENGTH
    # How long after its due time its step still counts as on time.
    grace: timedelta = timedelta(0)
    # The policy setting giving the length, when it is not named as the clock is.
    length_setting: str | None = None

    @property
    def rule(self) -> Rule:
        """The rule whose deadline the clock keeps, as domain/sla.py names it per clock."""
        return RULE_OF_CLOCK[self.clock]

    @property
    def setting(self) -> str:
        return self.length_setting or self.clock.value


_A = LedgerAction
SLA_CLOCKS = (
    ClockRule("a person reviews a merchant-fault case", SlaClock.REVIEW,
              starts=frozenset({_A.REVIEW_STARTED}), ends_roles=STAFF),
    ClockRule("the returned parcel is inspected", SlaClock.INSPECTION,
              starts=frozenset({_A.PARCEL_RECEIVED}),
              ends=frozenset({_A.INSPECTION_PASSED, _A.INSPECTION_FAILED})),
    ClockRule("the refund (or replacement) follows a passed inspection",
              SlaClock.REFUND, starts=frozenset({_A.INSPECTION_PASSED}),
              ends=frozenset({_A.REFUND_ISSUED, _A.REFUND_NOT_DUE, _A.REPLACEMENT_SHIPPED})),
    ClockRule("a supervisor acts on an escalated case", SlaClock.SUPERVISOR,
              starts=frozenset({_A.ESCALATED}),
              ends_roles=frozenset(SUPERVISORS)),
    ClockRule("the carrier answers a filed claim", SlaClock.CARRIER_SILENCE,
              starts=frozenset({_A.CLAIM_FILED}), ends=frozenset({_A.CARRIER_ANSWERED}),
              on_claims=True),
    # From the opening of a case that needs a person (photos asked for, or review) to a
    # person reaching the customer: a decision told, a call booked, a goodwill payment.
    # Staff steps the customer never sees (assigned, a deadline extended, an offer
    # refused, an escalation) are not contact. The call the workflow books at opening is
    # not either: nobody has called. A case closed first (abandoned, refunded after an
    # auto-approval, withdrawn) stops the clock: nobody is left to contact.
    ClockRule("the customer hears from a person (first contact)",
              SlaClock.FIRST_CONTACT,
              starts=frozenset({_A.EVIDENCE_REQUESTED, _A.REVIEW_STARTED}),
              ends=frozenset({_A.APPROVED, _A.REJECTED, _A.CALL_SCHEDULED,
                              _A.COMPENSATION_PAID}),
              ends_roles=STAFF, stops_in=CLOSED),
    # Each day the case waits on the merchant is one clock: from entering a merchant-side
    # status (or the previous update) to the next update, due at the slot the workflow
    # set for it, or to leaving the merchant side.
    ClockRule("a progress update each day the case waits on the merchant",
              SlaClock.FOLLOW_UP, starts=frozenset(),
              ends=frozenset({_A.PROGRESS_UPDATE_SENT}), while_status=MERCHANT_SIDE,
              due=DueAt.AT_SLOT_OF_END, grace=UPDATE_SENDING_GRACE),
    # Due at the carrier's own deadline (carrier_claims.file_deadline, counted from the
    # delivery), not a length from the start; the policy's length is shown for reference.
    ClockRule("the claim is filed within the carrier's deadline",
              SlaClock.CLAIM_FILING,
              starts=frozenset({_A.CLAIM_FILED, _A.CLAIM_DEADLINE_MISSED}),
              ends=frozenset({_A.CLAIM_FILED}), on_claims=True,
              due=DueAt.AT_CLAIM_FILE_DEADLINE, length_setting="carrier_claim_deadline"),
)  # fmt: skip
