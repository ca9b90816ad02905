"""The pure rules, without Temporal or a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.case import Grade, ScanEvent, WarehouseScan
from domain.money import CurrencyMismatchError, Money
from domain.policy import (
    changed_mind_refund,
    check_return_window,
    judge_changed_mind_inspection,
    refund_limit,
    ship_back_schedule,
)
from domain.policy_settings import PolicySettings
from domain.state import Disposition
from tests.conftest import a_request

POLICY = PolicySettings()
DELIVERED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def eur(minor: int) -> Money:
    return Money(amount_minor=minor, currency="EUR")


def test_request_at_6_days_23_hours_is_inside_the_window() -> None:  # R1
    check = check_return_window(
        a_request(delivered_at=DELIVERED, requested_after=timedelta(days=6, hours=23)), POLICY
    )
    assert check.accepted
    assert check.deadline == DELIVERED + timedelta(days=7)


def test_request_at_exactly_7_days_is_inside_the_window() -> None:  # R1
    check = check_return_window(
        a_request(delivered_at=DELIVERED, requested_after=timedelta(days=7)), POLICY
    )
    assert check.accepted


def test_request_after_7_days_is_refused_naming_the_missed_deadline() -> None:  # R1, R20
    check = check_return_window(
        a_request(delivered_at=DELIVERED, requested_after=timedelta(days=7, seconds=1)), POLICY
    )
    assert not check.accepted
    assert check.reason is not None
    assert "R1" in check.reason
    assert (DELIVERED + timedelta(days=7)).isoformat() in check.reason


@given(requested_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60)))
def test_window_is_accepted_exactly_up_to_the_deadline(requested_after: timedelta) -> None:  # R1
    check = check_return_window(
        a_request(delivered_at=DELIVERED, requested_after=requested_after), POLICY
    )
    assert check.accepted == (requested_after <= POLICY.return_window)


def test_window_counts_from_delivery_not_from_a_request_before_it() -> None:  # R1
    with pytest.raises(ValidationError, match="requested_at is before delivered_at"):
        a_request(delivered_at=DELIVERED, requested_after=timedelta(hours=-1))


def test_window_follows_the_pinned_policy() -> None:  # R1 (policy)
    fortnight = PolicySettings(version="long", return_window=timedelta(days=14))
    check = check_return_window(
        a_request(delivered_at=DELIVERED, requested_after=timedelta(days=10)), fortnight
    )
    assert check.accepted


def test_ship_back_reminders_on_day_3_and_6_and_deadline_on_day_7() -> None:  # R12
    approved = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
    schedule = ship_back_schedule(approved, POLICY)
    assert schedule.reminders == (approved + timedelta(days=3), approved + timedelta(days=6))
    assert schedule.deadline == approved + timedelta(days=7)


def test_reminders_must_fall_inside_the_ship_back_window() -> None:  # R12 (policy)
    with pytest.raises(ValidationError, match="R12"):
        PolicySettings(ship_back_reminders=(timedelta(days=8),))


def test_resellable_item_passes_and_is_restocked() -> None:  # R5, R27
    verdict = judge_changed_mind_inspection(Grade.RESELLABLE)
    assert verdict.passed
    assert verdict.disposition is Disposition.RESTOCK


@pytest.mark.parametrize("grade", [Grade.REFURBISH, Grade.DAMAGED, Grade.WRONG_ITEM])
def test_other_grades_fail_with_a_reason_and_go_back_to_the_customer(grade: Grade) -> None:
    # R5, R20, R27
    verdict = judge_changed_mind_inspection(grade)
    assert not verdict.passed
    assert verdict.disposition is Disposition.RETURN_TO_CUSTOMER
    assert "R20" in verdict.reason
    assert "sent back" in verdict.reason


def test_changed_mind_refund_is_the_price_without_fee_by_default() -> None:  # R5, R21
    assert changed_mind_refund(eur(5990), POLICY, eur(0)) == eur(5990)


def test_handling_fee_is_rounded_in_the_customers_favour() -> None:  # R5, R21
    fee_policy = PolicySettings(changed_mind_handling_fee_bp=1_000)  # 10 %
    assert changed_mind_refund(eur(999), fee_policy, eur(0)) == eur(900)  # fee 99.9 -> 99


@given(
    paid=st.integers(min_value=0, max_value=10_000_000),
    fee_bp=st.integers(min_value=0, max_value=10_000),
    already=st.integers(min_value=0, max_value=20_000_000),
)
def test_refund_is_never_negative_nor_above_what_is_left(
    paid: int, fee_bp: int, already: int
) -> None:  # R21
    policy = PolicySettings(changed_mind_handling_fee_bp=fee_bp)
    due = changed_mind_refund(eur(paid), policy, eur(already))
    assert 0 <= due.amount_minor <= paid
    assert due.amount_minor + min(already, paid) <= refund_limit(eur(paid)).amount_minor


def test_money_refuses_negative_amounts_and_mixed_currencies() -> None:  # R21
    with pytest.raises(ValidationError, match="amount_minor"):
        Money(amount_minor=-1, currency="EUR")
    with pytest.raises(ValidationError, match="currency"):
        Money(amount_minor=1, currency="euro")
    with pytest.raises(CurrencyMismatchError):
        _ = eur(1) + Money(amount_minor=1, currency="USD")


def test_inspected_scan_needs_a_grade() -> None:  # R26
    with pytest.raises(ValidationError, match="grade is required"):
        WarehouseScan(scan_id="s1", event=ScanEvent.INSPECTED, station="QC", scanned_at=DELIVERED)


def test_dock_scan_carries_no_grade() -> None:  # R26
    with pytest.raises(ValidationError, match="grade belongs to the inspected scan"):
        WarehouseScan(
            scan_id="s1",
            event=ScanEvent.PARCEL_RECEIVED,
            station="DOCK",
            grade=Grade.DAMAGED,
            scanned_at=DELIVERED,
        )


def test_times_without_a_zone_are_refused() -> None:  # design: aware UTC everywhere
    with pytest.raises(ValidationError, match="timezone"):
        WarehouseScan(
            scan_id="s1",
            event=ScanEvent.PARCEL_RECEIVED,
            station="DOCK",
            scanned_at=datetime(2026, 11, 1, 12, 0),  # noqa: DTZ001 - the point of the test
        )


def test_unknown_time_zone_is_refused() -> None:  # R16 needs a real zone
    from domain.case import Customer

    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        Customer(customer_id="c1", time_zone="Mars/Olympus")
