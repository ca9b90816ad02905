"""Send a parcel to the customer (replacement, right item, missing part), once; or the
warehouse's no, recorded on the case for the caller to take its path (R3, R7, R8, R9, R22)."""

from activities.outside import NoType, OutsideNo
from activities.warehouse import ShipmentOrder, WarehouseActivities
from domain.ledger import LedgerAction, ShipmentPurpose
from domain.rules import Rule
from workflows.steps.casebook import CaseBook
from workflows.steps.outside import call_or_no


async def send_to_customer(
    book: CaseBook, *, sku: str, quantity: int, purpose: ShipmentPurpose, rule: Rule
) -> str | OutsideNo:
    """The shipment's reference, or the warehouse's no (recorded as `shipment_refused`
    under `rule`: the caller says what the case does instead)."""
    state = book.state
    key = f"{state.case_id}:ship:{len(state.shipments) + 1}"
    sent = await call_or_no(
        WarehouseActivities.ship,
        ShipmentOrder(
            idempotency_key=key, case_id=state.case_id, sku=sku, quantity=quantity, purpose=purpose
        ),
        summary=f"ship {quantity} x {sku} ({purpose})",
        refused=NoType.SHIPMENT_REFUSED,
    )
    if isinstance(sent, OutsideNo):
        await book.record(
            LedgerAction.SHIPMENT_REFUSED,
            rule=rule,
            reason=f"the warehouse did not send {quantity} x {sku} ({purpose}): {sent.reason}",
            details={"key": key, "answer": sent.answer},
        )
        return sent
    state.shipments.append(sent)
    return sent
