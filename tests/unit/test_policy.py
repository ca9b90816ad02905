"""The pure rules, without Temporal or a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.case import CaseKind, Grade, Reason, Role, ScanEvent, WarehouseScan
from domain.money import CurrencyMismatchError, Money
from domain.policy import (
    agent_limit_refusal,
    changed_mind_refund,
    check_return_window,
    compensation_refusal,
    escalation_target,
    judge_changed_mind_inspection,
    judge_merchant_fault_inspection,
    merchant_pays_return_shipping,
    needs_evidence,
    needs_review,
    next_contact_slot,
    price_difference,
    refund_limit,
    ship_back_schedule,
    unapplied_scan_refusal,
)
from domain.policy_settings import PolicySettings, shared_policy
from domain.refusal import RefusalKind
from domain.state import CaseState, Disposition, EscalationLevel
from tests.conftest import a_request, eur

POLICY = PolicySettings()
DELIVERED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


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

    with pytest.raises(ValidationError, match="not a known IANA time zone"):
        Customer(customer_id="c1", time_zone="Mars/Olympus")


def test_message_at_night_waits_for_the_morning() -> None:  # R16
    due = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai
    slot = next_contact_slot(due, "Asia/Shanghai", POLICY.message_hours)
    assert slot == datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # 08:00 Shanghai


def test_message_inside_the_hours_goes_at_once() -> None:  # R16
    due = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
    assert next_contact_slot(due, "Asia/Shanghai", POLICY.call_hours) == due


def test_early_morning_call_waits_for_ten_the_same_day() -> None:  # R16
    due = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)  # 07:00 in Berlin
    slot = next_contact_slot(due, "Europe/Berlin", POLICY.call_hours)
    assert slot == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # 10:00 Berlin


def test_contact_slot_keeps_local_hours_across_a_dst_change() -> None:  # R16
    # Berlin leaves summer time on 2026-10-25: 10:00 local is 08:00 UTC before, 09:00 after.
    due = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)  # 22:00 Berlin, Saturday
    slot = next_contact_slot(due, "Europe/Berlin", POLICY.call_hours)
    assert slot == datetime(2026, 10, 25, 9, 0, tzinfo=UTC)


@given(
    due=st.datetimes(
        min_value=datetime(2026, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(2028, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    zone=st.sampled_from(["Asia/Shanghai", "Europe/Berlin", "America/New_York", "UTC"]),
)
def test_contact_slot_is_never_early_and_always_inside_hours(due: datetime, zone: str) -> None:
    # R16
    start, end = POLICY.call_hours
    slot = next_contact_slot(due, zone, POLICY.call_hours)
    assert slot >= due
    assert start <= slot.astimezone(ZoneInfo(zone)).time() < end
    assert slot - due < timedelta(days=1)


def test_review_is_needed_except_for_a_change_of_mind() -> None:  # R5, R10
    assert not needs_review(CaseKind.RETURN, Reason.CHANGED_MIND)
    assert needs_review(CaseKind.RETURN, Reason.QUALITY_DEFECT)


def test_merchant_fault_needs_evidence_and_pays_shipping() -> None:  # R6
    for reason in (Reason.QUALITY_DEFECT, Reason.NOT_AS_DESCRIBED, Reason.WRONG_ITEM):
        assert needs_evidence(reason)
        assert merchant_pays_return_shipping(reason)
    assert not needs_evidence(Reason.CHANGED_MIND)
    assert not merchant_pays_return_shipping(Reason.CHANGED_MIND)


def test_agent_limit_and_refund_cap() -> None:  # R17, R21
    limit = eur(10_000)
    assert compensation_refusal(Role.AGENT, eur(5_000), eur(0), limit, POLICY) is None
    refusal = compensation_refusal(Role.AGENT, eur(5_001), eur(0), limit, POLICY)
    assert refusal is not None
    assert (refusal.rule, refusal.kind) == ("R17", RefusalKind.ABOVE_AGENT_LIMIT)
    assert refusal.text.startswith("R17")
    assert refusal == agent_limit_refusal(Role.AGENT, eur(5_001), POLICY)
    assert compensation_refusal(Role.SUPERVISOR, eur(9_000), eur(0), limit, POLICY) is None
    capped = compensation_refusal(Role.SUPERVISOR, eur(9_000), eur(1_001), limit, POLICY)
    assert capped is not None
    assert (capped.rule, capped.kind) == ("R21", RefusalKind.ABOVE_REFUND_LIMIT)
    assert capped.text.startswith("R21")
    customer = compensation_refusal(Role.CUSTOMER, eur(1), eur(0), limit, POLICY)
    assert customer is not None
    assert (customer.rule, customer.kind) == ("R17", RefusalKind.NOT_STAFF)


def test_a_scan_that_changes_nothing_says_why_by_kind() -> None:  # R26
    def refused(event: ScanEvent, received: str | None, inspected: str | None) -> RefusalKind:
        refusal = unapplied_scan_refusal(
            event, "refunded (closed)", received_scan_id=received, inspection_scan_id=inspected
        )
        assert refusal.rule == "R26"
        return refusal.kind

    dock, inspected = ScanEvent.PARCEL_RECEIVED, ScanEvent.INSPECTED
    assert refused(dock, "i-1", "i-1") is RefusalKind.DOCK_SCAN_AFTER_INSPECTION_RECEIPT
    assert refused(dock, "d-1", "i-1") is RefusalKind.ALREADY_RECEIVED_AND_INSPECTED
    assert refused(dock, "d-1", None) is RefusalKind.ALREADY_RECEIVED
    assert refused(inspected, "d-1", "i-1") is RefusalKind.ALREADY_INSPECTED
    assert refused(dock, None, None) is RefusalKind.NO_PARCEL_EXPECTED


def test_escalation_ladder() -> None:  # R18
    assert escalation_target(EscalationLevel.NONE) is EscalationLevel.SUPERVISOR
    assert escalation_target(EscalationLevel.SUPERVISOR) is EscalationLevel.MANAGER
    assert escalation_target(EscalationLevel.NONE, major=True) is EscalationLevel.MANAGER


def test_merchant_fault_inspection_routes_the_item() -> None:  # R6, R27
    assert (
        judge_merchant_fault_inspection(Grade.DAMAGED).disposition is Disposition.RETURN_TO_VENDOR
    )
    assert judge_merchant_fault_inspection(Grade.REFURBISH).disposition is Disposition.REPAIR
    assert judge_merchant_fault_inspection(Grade.RESELLABLE).disposition is Disposition.RESTOCK
    assert not judge_merchant_fault_inspection(Grade.WRONG_ITEM).passed


def test_far_off_dates_are_refused() -> None:  # bad input: a typo, not a case
    with pytest.raises(ValidationError, match="between the years 2000 and 2100"):
        a_request(delivered_at=datetime(2150, 1, 1, tzinfo=UTC))


minor_units = st.integers(min_value=0, max_value=10_000_000)


@given(
    paid=minor_units,
    shipping=minor_units,
    grants=st.lists(
        st.tuples(st.sampled_from([Role.AGENT, Role.SUPERVISOR, Role.MANAGER]), minor_units),
        max_size=12,
    ),
)
def test_granted_compensations_never_refund_above_what_was_paid(
    paid: int, shipping: int, grants: list[tuple[Role, int]]
) -> None:  # R17, R21
    limit = refund_limit(eur(paid), eur(shipping))
    refunded = eur(0)
    for role, amount in grants:
        if compensation_refusal(role, eur(amount), refunded, limit, PolicySettings()) is None:
            refunded = refunded + eur(amount)
            assert not (
                role is Role.AGENT and amount > PolicySettings().agent_compensation_limit_minor
            )
    assert 0 <= refunded.amount_minor <= paid + shipping


@given(paid=minor_units, price=minor_units)
def test_a_price_difference_is_charged_or_refunded_never_both_never_negative(
    paid: int, price: int
) -> None:  # R22
    difference = price_difference(eur(paid), eur(price))
    charge, refund = difference.to_charge.amount_minor, difference.to_refund.amount_minor
    assert charge >= 0
    assert refund >= 0
    assert charge == 0 or refund == 0
    assert paid + charge - refund == price
    assert refund <= paid


@given(
    approved_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
    window_days=st.integers(min_value=1, max_value=60),
)
def test_ship_back_reminders_come_before_the_deadline_that_the_window_sets(
    approved_after: timedelta, window_days: int
) -> None:  # R12
    policy = PolicySettings(
        ship_back_window=timedelta(days=window_days),
        ship_back_reminders=(timedelta(days=window_days) / 3, timedelta(days=window_days) / 2),
    )
    approved = datetime(2026, 1, 1, tzinfo=UTC) + approved_after
    schedule = ship_back_schedule(approved, policy)
    assert schedule.deadline - approved == timedelta(days=window_days)
    assert all(approved < reminder < schedule.deadline for reminder in schedule.reminders)
    assert list(schedule.reminders) == sorted(schedule.reminders)


def test_cases_decoded_under_one_policy_share_one_instance_of_it() -> None:
    """A worker caching thousands of cases holds each distinct policy once; a case's
    payload and what it does are the same as with its own copy."""
    state = CaseState(case_id="c1", request=a_request(), policy=PolicySettings(),
                      opened_at=DELIVERED)  # fmt: skip
    payload = state.model_dump_json()
    first, second = (CaseState.model_validate_json(payload) for _ in range(2))
    assert first.policy is second.policy
    assert first == state
    assert first.model_dump_json() == payload
    other = PolicySettings(review_deadline=timedelta(hours=12))
    assert shared_policy(other.model_copy()) is shared_policy(other)
    assert shared_policy(other) is not first.policy
