"""Send a parcel to the customer (replacement, right item, missing part), once."""

from activities.warehouse import ShipmentOrder, WarehouseActivities
from domain.ledger import ShipmentPurpose
from workflows.steps.casebook import CaseBook
from workflows.steps.outside import call_outside


async def send_to_customer(
    book: CaseBook, *, sku: str, quantity: int, purpose: ShipmentPurpose
) -> str:
    state = book.state
    key = f"{state.case_id}:ship:{len(state.shipments) + 1}"
    reference = await call_outside(
        WarehouseActivities.ship,
        ShipmentOrder(
            idempotency_key=key, case_id=state.case_id, sku=sku, quantity=quantity, purpose=purpose
        ),
        summary=f"ship {quantity} x {sku} ({purpose})",
    )
    state.shipments.append(reference)
    return reference
