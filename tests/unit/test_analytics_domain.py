"""R24's pure part (domain/analytics.py), without PostgreSQL: rates, percentiles, the
exact binomial tail, and the batch alarm's thresholds, boundaries and error rates."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.batch_alarm import simulate
from domain.analytics import (
    BatchAlarmSettings,
    BatchCounts,
    BatchVerdict,
    SatisfactionRow,
    binomial_upper_tail,
    judge_batches,
    percentile_of_counts,
    return_rate,
    weekly_means,
)

SETTINGS = BatchAlarmSettings(significance=0.001, min_units=200, min_baseline_units=1000,
                              min_ratio=1.5)  # fmt: skip
# The SKU's other batches: 10,000 units, 300 returned, a 3% baseline.
BASELINE = [BatchCounts(sku="S", batch=f"OK{n}", units=2000, returns=60) for n in range(5)]


def exact_upper_tail(k: int, n: int, p: Fraction) -> Fraction:
    return sum((math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)), Fraction(0))


@given(
    n=st.integers(min_value=0, max_value=80),
    k=st.integers(min_value=-2, max_value=82),
    p=st.fractions(min_value=0, max_value=1, max_denominator=1000),
)
def test_r24_the_binomial_tail_is_the_exact_sum(n: int, k: int, p: Fraction) -> None:
    expected = float(exact_upper_tail(max(k, 0), n, p)) if k <= n else 0.0
    assert binomial_upper_tail(k, n, float(p)) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_r24_the_binomial_tail_of_a_large_batch_is_fast_and_tiny_far_above_the_mean() -> None:
    # 1,000,000 units at 3%: 31,000 returns is 5.8 standard deviations above the mean.
    p_value = binomial_upper_tail(31_000, 1_000_000, 0.03)
    assert 0 < p_value < 1e-8
    assert binomial_upper_tail(30_000, 1_000_000, 0.03) == pytest.approx(0.5, abs=0.01)


@given(st.lists(st.integers(min_value=0, max_value=50)), st.floats(min_value=0.01, max_value=1))
def test_r24_a_percentile_is_a_value_with_its_share_at_or_below_it(
    values: list[int], share: float
) -> None:
    found = percentile_of_counts(Counter(values), share)
    if not values:
        assert found is None
        return
    assert found in values
    rank = math.ceil(share * len(values))
    assert sum(v <= found for v in values) >= rank
    assert sum(v < found for v in values) < rank


def test_r24_p50_and_p90_of_known_durations() -> None:
    hours = Counter(range(1, 11))  # 1..10
    assert (percentile_of_counts(hours, 0.5), percentile_of_counts(hours, 0.9)) == (5, 9)
    assert percentile_of_counts({3: 0}, 0.5) is None
    with pytest.raises(ValueError, match="negative"):
        percentile_of_counts({3: -1}, 0.5)


def nearest_rank(values: list[int], share: float) -> int:
    return sorted(values)[math.ceil(share * len(values)) - 1]


def whole_hours(microseconds: int) -> int:
    """Migration 014's report_hours: a duration (PostgreSQL keeps microseconds) in whole
    hours, rounded up."""
    return -(-microseconds // HOUR)


HOUR = 3600 * 10**6
DURATIONS = st.integers(min_value=0, max_value=10_000 * HOUR)


@given(st.lists(DURATIONS, min_size=1), st.sampled_from([0.5, 0.9]))
def test_r24_time_to_resolve_in_whole_hours_is_the_exact_percentile_rounded_up(
    microseconds: list[int], share: float
) -> None:
    """The rollups keep whole hours rounded up: p50 and p90 from them are the exact
    percentiles rounded up to the hour, never lower and less than an hour higher."""
    exact = Fraction(nearest_rank(microseconds, share), HOUR)
    found = percentile_of_counts(Counter(whole_hours(m) for m in microseconds), share)
    assert found == math.ceil(exact)
    assert 0 <= found - exact < 1


@given(DURATIONS, st.integers(min_value=0, max_value=9999))
def test_r24_a_whole_hour_deadline_is_met_exactly_when_the_rounded_up_hours_are_within_it(
    microseconds: int, deadline_hours: int
) -> None:
    """Why SLA compliance from the rollups' whole hours is exact for a deadline in whole
    hours (the policy's are: 24 h, 48 h, 30 days)."""
    assert (whole_hours(microseconds) <= deadline_hours) == (microseconds <= deadline_hours * HOUR)


def test_r24_a_return_rate_needs_delivered_units() -> None:
    assert return_rate(3, 200) == 0.015
    assert return_rate(0, 0) is None
    with pytest.raises(ValueError, match="negative"):
        return_rate(-1, 10)


def verdict_of(batch: BatchCounts, settings: BatchAlarmSettings = SETTINGS) -> BatchVerdict:
    [found] = [v for v in judge_batches([*BASELINE, batch], settings) if v.batch == batch.batch]
    return found


def smallest_significant_returns(units: int, baseline: float) -> int:
    return next(
        k
        for k in range(units + 1)
        if binomial_upper_tail(k, units, baseline) < SETTINGS.significance
    )


def test_r24_significance_boundary_one_return_below_is_not_flagged_at_it_is() -> None:
    k = smallest_significant_returns(1000, 0.03)
    below = verdict_of(BatchCounts(sku="S", batch="NEW", units=1000, returns=k - 1))
    at = verdict_of(BatchCounts(sku="S", batch="NEW", units=1000, returns=k))
    assert below.p_value is not None
    assert below.p_value >= SETTINGS.significance
    assert (below.flagged, at.flagged) == (False, True)
    assert at.baseline_rate == pytest.approx(0.03)


def test_r24_min_units_boundary_a_tiny_batch_is_not_flagged_on_noise() -> None:
    # Every unit of the batch returned: overwhelming, but below min_units it is not judged.
    tiny = verdict_of(BatchCounts(sku="S", batch="NEW", units=199, returns=199))
    enough = verdict_of(BatchCounts(sku="S", batch="NEW", units=200, returns=20))
    assert (tiny.flagged, enough.flagged) == (False, True)


def test_r24_min_ratio_boundary_a_huge_batch_is_not_flagged_for_a_trivial_rise() -> None:
    # 100,000 units: 1.49x the baseline is highly significant, yet below min_ratio.
    just_below = verdict_of(BatchCounts(sku="S", batch="NEW", units=100_000, returns=4_470))
    at_ratio = verdict_of(BatchCounts(sku="S", batch="NEW", units=100_000, returns=4_500))
    assert binomial_upper_tail(4_470, 100_000, 0.03) < 1e-20
    assert just_below.p_value is None  # not tested: it could not be flagged
    assert (just_below.flagged, at_ratio.flagged) == (False, True)


def test_r24_a_sku_without_enough_other_units_has_no_baseline_and_no_flag() -> None:
    alone = [BatchCounts(sku="T", batch="A", units=999, returns=0),
             BatchCounts(sku="T", batch="B", units=5000, returns=2500)]  # fmt: skip
    verdicts = {v.batch: v for v in judge_batches(alone, SETTINGS)}
    assert verdicts["B"].baseline_rate is None
    assert not verdicts["B"].flagged
    assert verdicts["A"].baseline_rate == pytest.approx(0.5)  # B stands as A's baseline


def test_r24_a_spotless_sku_is_not_infinitely_surprised_by_one_return() -> None:
    spotless = [BatchCounts(sku="U", batch=f"B{n}", units=2000, returns=0) for n in range(5)]
    verdicts = judge_batches([*spotless, BatchCounts(sku="U", batch="NEW", units=2000, returns=1)],
                             SETTINGS)  # fmt: skip
    assert not any(v.flagged for v in verdicts)


def test_r24_false_alarms_stay_within_the_stated_rate_on_10000_normal_batches() -> None:
    figures = simulate(1.0, SETTINGS)
    assert figures.normal_batches == 10_000
    # The level is 1 per 1,000 batches judged; measured 0.7 (seed 24).
    assert figures.false_alarms_per_1000 <= 1.0


@pytest.mark.parametrize(("jump", "at_least"), [(2.0, 0.90), (3.0, 0.99)])
def test_r24_a_jump_in_one_batch_is_detected(jump: float, at_least: float) -> None:
    figures = simulate(jump, SETTINGS)
    assert figures.jumped_batches == 1000
    assert figures.detection_rate >= at_least
    assert figures.false_alarms_per_1000 <= 1.0


MONDAY, NEXT_MONDAY = date(2026, 11, 2), date(2026, 11, 9)


def test_r25_the_weekly_mean_score_per_dimension_weights_each_level_by_its_answers() -> None:
    trend = [
        SatisfactionRow(week=MONDAY, dimension="attitude", level="very_satisfied", answers=3),
        SatisfactionRow(week=MONDAY, dimension="attitude", level="very_dissatisfied", answers=1),
        SatisfactionRow(week=MONDAY, dimension="timeliness", level="dissatisfied", answers=2),
        SatisfactionRow(week=NEXT_MONDAY, dimension="attitude", level="satisfied", answers=4),
        SatisfactionRow(week=NEXT_MONDAY, dimension="expertise", level="satisfied", answers=0),
    ]
    means = weekly_means(reversed(trend))
    assert [(m.week, m.dimension, m.answers, m.mean_score) for m in means] == [
        (MONDAY, "attitude", 4, (3 * 4 + 1) / 4),
        (MONDAY, "timeliness", 2, 2.0),
        (NEXT_MONDAY, "attitude", 4, 3.0),  # a dimension nobody answered has no mean
    ]
    assert weekly_means([]) == []
    with pytest.raises(ValueError, match="week"):
        weekly_means([SatisfactionRow(dimension="attitude", level="satisfied", answers=1)])
