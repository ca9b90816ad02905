"""Money with the customer: refunds exactly once within the case's limit (R13, R21),
and charges of a price difference (R22). A payment the provider declines waits for a
person (`PaymentDesk.payment_declined`): retried under the same key, or settled another
way, so the money moves once either way."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

from activities.notifications import Template
from activities.outside import NoType, outside_no
from activities.payments import (
    PAYMENT_HEARTBEAT_TIMEOUT,
    REFUND_LIMIT_EXCEEDED,
    ChargeOrder,
    PaymentActivities,
    PaymentConfirmation,
    RefundOrder,
    SettledElsewhere,
)
from domain.case import PaymentResolution, PaymentResolutionKind, Role
from domain.ledger import PAID_ACTION, LedgerAction, RefundPurpose
from domain.money import Money
from domain.policy import refund_limit
from domain.rules import Rule
from domain.state import CaseStatus, DeclinedPayment, PaymentKind, RefundReceipt
from workflows.steps.casebook import (
    SYSTEM_ACTOR,
    SYSTEM_ROLE,
    CaseBook,
)
from workflows.steps.outside import INFRASTRUCTURE_CALL_TIMEOUT, call_outside
from workflows.steps.timers import wait_until


class PaymentDesk(Protocol):
    """Where a payment step records, and whom it asks when the provider says no (the
    case's desk)."""

    book: CaseBook

    async def payment_declined(self, declined: DeclinedPayment) -> PaymentResolution:
        """Wait for a person's resolution of `declined` (recorded, status restored)."""
        ...


@dataclass(frozen=True)
class Watchdog:
    due: datetime
    label: str
    overdue: Callable[[], Awaitable[None]]


_REFUND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=[REFUND_LIMIT_EXCEEDED],
)


async def refund(
    desk: PaymentDesk,
    amount: Money,
    *,
    rule: Rule,
    reason: str,
    purpose: RefundPurpose = RefundPurpose.REFUND,
    closes_case: bool = True,
    actor: str | None = None,
    role: Role | None = None,
    watchdog: Watchdog | None = None,
) -> Money:
    """Pay `amount` back to the customer's payment method, exactly once (R21), and say
    what was paid: less than `amount` when the limit caps it, nothing when it is reached.
    With a `watchdog`, a refund still not through at its deadline is reported on (R13)
    while the retries go on."""
    book = desk.book
    state = book.state
    limit = refund_limit(state.request.paid, state.reimbursed_shipping)
    # Decisions validated against the same limit can still add up past it (two offers
    # accepted before either is paid, a compensation before a full refund).
    left = limit.minus_floored_at_zero(state.refunded_total)
    if not amount.amount_minor or not left.amount_minor:
        await _nothing_left(book, limit, closes_case=closes_case, rule=rule, reason=reason)
        return Money(amount_minor=0, currency=amount.currency)
    if not amount <= left:
        reason = f"{reason}; {amount} capped at the {left} left of {limit} (R21)"
        amount = left
    # Derived from workflow data only: the same refund keeps the same key on every retry,
    # replay or worker restart, so the provider and the money table see it once.
    key = f"{state.case_id}:refund:{len(state.refunds) + 1}"

    def pay() -> workflow.ActivityHandle[PaymentConfirmation]:
        return workflow.start_activity_method(
            PaymentActivities.issue_refund,
            RefundOrder(case_id=state.case_id, idempotency_key=key, amount=amount, limit=limit),
            start_to_close_timeout=INFRASTRUCTURE_CALL_TIMEOUT,
            heartbeat_timeout=PAYMENT_HEARTBEAT_TIMEOUT,
            retry_policy=_REFUND_RETRY,
            summary=f"refund {amount} (R21 key {key})",
        )

    paying = pay()
    if watchdog is not None and not await wait_until(paying.done, watchdog.due, watchdog.label):
        await watchdog.overdue()
    confirmation = await _paid_once(desk, PaymentKind.REFUND, key, amount, paying, pay)
    state.refunds.append(
        RefundReceipt(
            idempotency_key=key,
            purpose=purpose,
            amount=confirmation.amount,
            provider_reference=confirmation.provider_reference,
            refunded_at=workflow.now(),
        )
    )
    await book.notify(
        Template.REFUND_ISSUED if closes_case else Template.COMPENSATION_GRANTED,
        amount=str(amount),
    )
    await book.record(
        LedgerAction.REFUND_ISSUED if closes_case else PAID_ACTION[purpose],
        rule=rule,
        reason=reason,
        status=CaseStatus.REFUNDED if closes_case else None,
        details={"amount_minor": amount.amount_minor, "currency": amount.currency, "key": key},
        actor=actor or SYSTEM_ACTOR,
        role=role or SYSTEM_ROLE,
    )
    return confirmation.amount


async def _nothing_left(
    book: CaseBook, limit: Money, *, closes_case: bool, rule: Rule, reason: str
) -> None:
    """R21: the limit is reached; a closing refund closes the case as refunded in full."""
    refunded = book.state.refunded_total
    await book.record(
        LedgerAction.REFUND_NOT_DUE,
        rule=Rule.R21,
        reason=f"{reason}; nothing left to refund: {refunded} of {limit} already refunded",
        details={"refund_for_rule": rule},
        status=CaseStatus.REFUNDED if closes_case else None,
    )


async def charge(desk: PaymentDesk, amount: Money, *, rule: Rule, reason: str) -> None:
    book = desk.book
    state = book.state
    key = f"{state.case_id}:charge:{len(state.charges) + 1}"

    def pay() -> workflow.ActivityHandle[PaymentConfirmation]:
        return workflow.start_activity_method(
            PaymentActivities.charge,
            ChargeOrder(case_id=state.case_id, idempotency_key=key, amount=amount),
            start_to_close_timeout=INFRASTRUCTURE_CALL_TIMEOUT,
            heartbeat_timeout=PAYMENT_HEARTBEAT_TIMEOUT,
            retry_policy=_REFUND_RETRY,
            summary=f"charge {amount} (key {key})",
        )

    confirmation = await _paid_once(desk, PaymentKind.CHARGE, key, amount, pay(), pay)
    state.charges.append(
        RefundReceipt(
            idempotency_key=key,
            purpose=RefundPurpose.PRICE_DIFFERENCE,
            amount=confirmation.amount,
            provider_reference=confirmation.provider_reference,
            refunded_at=workflow.now(),
        )
    )
    await book.record(
        LedgerAction.PRICE_DIFFERENCE_CHARGED,
        rule=rule,
        reason=reason,
        details={"amount_minor": amount.amount_minor, "currency": amount.currency, "key": key},
    )


async def _paid_once(
    desk: PaymentDesk,
    kind: PaymentKind,
    key: str,
    amount: Money,
    paying: Awaitable[PaymentConfirmation],
    pay_again: Callable[[], Awaitable[PaymentConfirmation]],
) -> PaymentConfirmation:
    """The payment's confirmation, once the provider paid it or a person settled it
    another way. Each decline goes to a person (R21); a retry pays under the same key,
    which the provider pays once, so the money moves once whatever the person does."""
    while True:
        try:
            return await paying
        except ActivityError as error:
            declined = outside_no(error, NoType.PAYMENT_DECLINED)
            if declined is None:
                raise
        resolution = await desk.payment_declined(
            DeclinedPayment(
                kind=kind,
                idempotency_key=key,
                amount=amount,
                reason=declined.reason,
                answer=declined.answer,
                status_before=desk.book.state.status,
            )
        )
        if resolution.resolution is PaymentResolutionKind.RETRY:
            paying = pay_again()
            continue
        return await call_outside(
            PaymentActivities.settle_elsewhere,
            SettledElsewhere(idempotency_key=key, reference=resolution.reference or ""),
            summary=f"{kind} {amount} settled another way (R21 key {key})",
        )
