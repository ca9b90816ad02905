"""Receipt and inspection (R13, R26, R27): the parcel is at the dock; the warehouse
inspects it within the R13 deadline (a breach escalates, R18) and grades it, which
decides whether the money or the replacement is due, and where the item goes."""

from __future__ import annotations

from domain.case import ShippedBack, WarehouseScan
from domain.sla import SlaClock
from domain.state import CaseState, CaseStatus
from workflows.case_desk import CaseDesk, Due, Woke
from workflows.phases import parcel_back
from workflows.steps.escalation import sla_breached


async def inspection(desk: CaseDesk) -> None:
    """Run while the received item awaits its inspection; a pass leads to the refund or
    the exchange due, a failure rejects the case (R20).

    Waits in awaiting_inspection for: the inspection scan, a late shipping notice, the
    R13 deadline. Applies: refund_due or exchange_due (R13), rejected (R20), an
    escalation when the deadline passes (R18)."""
    state = desk.state
    while state.status is CaseStatus.AWAITING_INSPECTION:
        turn = await desk.next((WarehouseScan, ShippedBack), lambda: _due(state))
        match turn:
            case Woke.DEADLINE if state.inspection_deadline is not None:
                await sla_breached(desk.book, SlaClock.INSPECTION, state.inspection_deadline)
            case WarehouseScan() | ShippedBack():
                await parcel_back.take(desk, turn)


def _due(state: CaseState) -> Due | None:
    if state.inspection_deadline is None or state.breached(SlaClock.INSPECTION):
        return None
    return Due(state.inspection_deadline, "R13 inspection deadline")
