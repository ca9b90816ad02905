"""R7: the merchant shipped the wrong item: an apology coupon, and the root cause on
record (returns and exchanges alike, at approval)."""

from __future__ import annotations

from activities.notifications import Template
from domain.ledger import LedgerAction
from domain.money import Money
from domain.rules import Rule
from workflows.case_desk import CaseDesk


async def apologise_for_wrong_item(desk: CaseDesk) -> None:
    state = desk.state
    coupon = Money(
        amount_minor=state.policy.wrong_item_coupon_minor,
        currency=state.request.paid.currency,
    )
    await desk.book.notify(Template.APOLOGY_COUPON, amount=str(coupon))
    cause = state.root_cause.value if state.root_cause else "to be tagged (auto-approved)"
    await desk.book.record(
        LedgerAction.APOLOGY_COUPON_ISSUED,
        rule=Rule.R7,
        reason=f"coupon of {coupon} for shipping the wrong item; root cause {cause}",
        details={"coupon_minor": coupon.amount_minor, "root_cause": cause},
    )
