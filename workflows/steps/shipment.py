"""Send a parcel to the customer (replacement, right item, missing part), once."""

from temporalio import workflow

from activities.warehouse import ShipmentOrder, WarehouseActivities
from workflows.steps.casebook import INFRASTRUCTURE_CALL_TIMEOUT, INFRASTRUCTURE_RETRY, CaseBook


async def send_to_customer(book: CaseBook, *, sku: str, quantity: int, purpose: str) -> str:
    state = book.state
    key = f"{state.case_id}:ship:{len(state.shipments) + 1}"
    reference = await workflow.execute_activity_method(
        WarehouseActivities.ship,
        ShipmentOrder(
            idempotency_key=key, case_id=state.case_id, sku=sku, quantity=quantity, purpose=purpose
        ),
        start_to_close_timeout=INFRASTRUCTURE_CALL_TIMEOUT,
        retry_policy=INFRASTRUCTURE_RETRY,
        summary=f"ship {quantity} x {sku} ({purpose})",
    )
    state.shipments.append(reference)
    return reference
