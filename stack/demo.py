"""`make run`'s demo: an operator's day in every queue the desk shows (README, "The demo").

Anchored to the first run's time (.data/demo-anchor) and idempotent: every run builds the
very same requests, so the cases are opened once and later runs resume with them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta

import asyncpg
from pydantic import ValidationError
from temporalio.client import Client

from api.errors import from_validation, one_line
from domain.analytics import DeliveredUnits
from domain.case import (
    UNDELIVERED,
    CaseKind,
    Channel,
    CompensationOffer,
    Customer,
    Dispute,
    EvidenceSubmitted,
    ExchangeItem,
    Grade,
    OpenCaseRequest,
    Reason,
    Role,
    ScanEvent,
    ShippedBack,
    WarehouseScan,
)
from domain.money import Money
from domain.state import CaseStatus
from infra.alarm_schedule import BATCH_ALARM_SCHEDULE_ID
from infra.case_errors import RefusedDecisionError, UnknownCaseError
from infra.gateway import CaseGateway
from infra.security.identity import Caller
from infra.settings import DATA_DIR
from workflows.case_handlers import CaseHandlers


def _demo_request(
    number: int,
    *,
    delivered_days_ago: float,
    now: datetime,
    kind: CaseKind = CaseKind.RETURN,
    reason: Reason = Reason.CHANGED_MIND,
    exchange_for: ExchangeItem | None = None,
) -> OpenCaseRequest:
    delivered = now - timedelta(days=delivered_days_ago)
    in_transit = reason in UNDELIVERED
    return OpenCaseRequest(
        order_id=f"DEMO-{1000 + number}",
        line_id="1",
        request_id=f"demo-{number}",
        kind=kind,
        reason=reason,
        carrier="DHL",
        exchange_for=exchange_for,
        channel=list(Channel)[number % len(Channel)],
        sku=f"SKU-{200 + number}",
        category="apparel",
        paid=Money(amount_minor=4990 + 1000 * number, currency="EUR"),
        delivered_at=None if in_transit else delivered,
        expected_delivery_at=delivered if in_transit else None,
        requested_at=now,
        customer=Customer(customer_id=f"cust-{number}", time_zone="Europe/Berlin"),
    )


def _demo_anchor() -> datetime:
    """The first run's time: later runs build the very same demo requests (R2 idempotency)."""
    anchor_file = DATA_DIR / "demo-anchor"
    if not anchor_file.exists():
        anchor_file.write_text(datetime.now(UTC).isoformat())
    return datetime.fromisoformat(anchor_file.read_text().strip())


async def open_demo_cases(gateway: CaseGateway) -> None:
    """One case in each interesting state; opened once, then left as they are."""
    now = _demo_anchor()
    await gateway.open_case(_demo_request(1, delivered_days_ago=2, now=now))
    await gateway.open_case(_demo_request(2, delivered_days_ago=9, now=now))  # R1 refused
    in_transit = await gateway.open_case(_demo_request(3, delivered_days_ago=1, now=now))
    refunded = await gateway.open_case(_demo_request(4, delivered_days_ago=3, now=now))
    rejected = await gateway.open_case(_demo_request(5, delivered_days_ago=5, now=now))
    # A defect waiting for photos (R6), an exchange, and a parcel lost in transit (R8).
    await gateway.open_case(
        _demo_request(6, delivered_days_ago=1, now=now, reason=Reason.QUALITY_DEFECT)
    )
    larger = ExchangeItem(sku="SKU-207-L", price=Money(amount_minor=11_990, currency="EUR"))
    await gateway.open_case(
        _demo_request(7, delivered_days_ago=2, now=now, kind=CaseKind.EXCHANGE,
                      exchange_for=larger)
    )  # fmt: skip
    await gateway.open_case(
        _demo_request(8, delivered_days_ago=0, now=now, kind=CaseKind.DAMAGE_CLAIM,
                      reason=Reason.LOST_IN_TRANSIT)
    )  # fmt: skip
    for opened in (in_transit, refunded, rejected):
        if opened.created:
            await gateway.shipped_back(
                opened.view.case_id,
                ShippedBack(
                    event_id=f"{opened.view.case_id}-shipped",
                    carrier="DHL",
                    tracking_number=f"JD{opened.view.order_id}",
                    shipped_at=now,
                ),
            )
    for opened, grade in ((refunded, Grade.RESELLABLE), (rejected, Grade.DAMAGED)):
        if not opened.created:
            continue
        case_id = opened.view.case_id
        for event in (ScanEvent.PARCEL_RECEIVED, ScanEvent.INSPECTED):
            await gateway.scan(
                case_id,
                WarehouseScan(
                    scan_id=f"{case_id}-{event.value}",
                    event=event,
                    station="DOCK-1" if event is ScanEvent.PARCEL_RECEIVED else "QC-2",
                    grade=grade if event is ScanEvent.INSPECTED else None,
                    scanned_at=now,
                ),
            )


async def _until(gateway: CaseGateway, case_id: str, status: CaseStatus) -> None:
    """The demo's next step needs the case there (a dispute only counts once rejected)."""
    for _ in range(300):
        if (await gateway.status(case_id, fresh=True)).status is status:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"demo: {case_id} did not reach {status.value}")


async def open_demo_queues(gateway: CaseGateway) -> None:
    """An operator's day: a case in each queue the desk shows that the cases above do not
    fill, an unmatched scan and a refused input. Opened once, like the cases above."""
    now = _demo_anchor()
    agent = Caller(actor="agent-ann", role=Role.AGENT)
    # Under review (R10) and escalated (R17, R18): photos in; on the second, agent Ann
    # offers 90.00, above an agent's limit: refused, and the case goes to a supervisor.
    for number, offer in ((9, None), (10, Money(amount_minor=9_000, currency="EUR"))):
        opened = await gateway.open_case(
            _demo_request(number, delivered_days_ago=2, now=now, reason=Reason.QUALITY_DEFECT)
        )
        if not opened.created:
            continue
        case_id = opened.view.case_id
        photos = EvidenceSubmitted(event_id=f"{case_id}-photos",
                                   photos=[f"https://photos.example/{case_id}/1.jpg"])  # fmt: skip
        await gateway.tell(case_id, CaseHandlers.evidence_submitted, photos)
        if offer is not None:
            await _until(gateway, case_id, CaseStatus.UNDER_REVIEW)
            goodwill = CompensationOffer(action_id=f"{case_id}-offer", actor=agent.actor,
                                         role=agent.role, amount=offer,
                                         reason="scratched on arrival: goodwill")  # fmt: skip
            with contextlib.suppress(RefusedDecisionError):  # R17: the refusal is the point
                await gateway.decide(case_id, CaseHandlers.offer_compensation, goodwill, agent)
    # Late (R4): a parcel that should have arrived two days ago; the breach escalates.
    await gateway.open_case(
        _demo_request(11, delivered_days_ago=2, now=now, reason=Reason.NOT_RECEIVED)
    )
    # In arbitration (R19): rejected at inspection, then disputed by the customer.
    disputed = await gateway.open_case(_demo_request(12, delivered_days_ago=4, now=now))
    if disputed.created:
        case_id = disputed.view.case_id
        await gateway.shipped_back(case_id, ShippedBack(
            event_id=f"{case_id}-shipped", carrier="DHL", tracking_number="JDDEMO-1012",
            shipped_at=now,
        ))  # fmt: skip
        for event in (ScanEvent.PARCEL_RECEIVED, ScanEvent.INSPECTED):
            await gateway.scan(case_id, WarehouseScan(
                scan_id=f"{case_id}-{event.value}", event=event, station="DOCK-1",
                grade=Grade.DAMAGED if event is ScanEvent.INSPECTED else None, scanned_at=now,
            ))  # fmt: skip
        await _until(gateway, case_id, CaseStatus.REJECTED)
        await gateway.tell(case_id, CaseHandlers.dispute, Dispute(
            event_id=f"{case_id}-dispute", reason="the scratch was there when it arrived",
        ))  # fmt: skip
    # R26: a parcel at the dock whose label matches no case, kept for a person.
    with contextlib.suppress(UnknownCaseError):
        await gateway.scan(DEMO_UNMATCHED_BARCODE, WarehouseScan(
            scan_id="demo-unmatched-scan", event=ScanEvent.PARCEL_RECEIVED, station="DOCK-1",
            scanned_at=now,
        ))  # fmt: skip
    await _refused_input(gateway, now)


# A label no case has: the demo's unmatched scan (R26).
DEMO_UNMATCHED_BARCODE = "return-DEMO-1999-1-r1"


async def _refused_input(gateway: CaseGateway, now: datetime) -> None:
    """A shop's request the API would refuse (a currency that does not exist), kept with
    the reasons the API gives, once."""
    if await gateway.has_refused_input(source=DEMO_SOURCE):
        return
    body = _demo_request(13, delivered_days_ago=1, now=now).model_dump(mode="json")
    body["paid"]["currency"] = "EURO"
    payload = json.dumps(body)
    try:
        OpenCaseRequest.model_validate_json(payload)
    except ValidationError as refused:
        errors = one_line(from_validation(refused.errors()))
    else:
        raise RuntimeError("demo: the refused input was accepted")
    await gateway.record_refused_input(
        source=DEMO_SOURCE, operation="POST /cases", payload=payload, errors=errors
    )


# Where the demo's refused input says it came from: `make run`, not a shop.
DEMO_SOURCE = "demo"


# R24's demo: one SKU in four production batches; LOT-B7 comes back four times as often
# as the others, so the batch alarm flags it (GET /reports/page shows it).
DEMO_SKU = "SKU-300"
DEMO_BATCHES = {"LOT-A1": (2000, 60), "LOT-A2": (2000, 50), "LOT-A3": (2000, 70),
                "LOT-B7": (500, 60)}  # fmt: skip


async def open_demo_batches(gateway: CaseGateway, pool: asyncpg.Pool, client: Client) -> None:
    """Delivered units per batch, one return of many units per batch, then one run of the
    batch alarm (its schedule's, triggered now rather than at 05:00) once the returns are
    in the read model. Idempotent, like the demo cases."""
    now = _demo_anchor()
    await gateway.analytics.record_deliveries(
        [DeliveredUnits(sku=DEMO_SKU, batch=batch, day=(now - timedelta(days=10)).date(),
                        units=units) for batch, (units, _) in DEMO_BATCHES.items()]
    )  # fmt: skip
    case_ids = []
    for number, (batch, (_, returned)) in enumerate(DEMO_BATCHES.items(), start=20):
        request = _demo_request(number, delivered_days_ago=3, now=now,
                                reason=Reason.QUALITY_DEFECT)  # fmt: skip
        request = request.model_copy(update={"sku": DEMO_SKU, "batch": batch, "quantity": returned})
        await gateway.open_case(request)
        case_ids.append(request.case_id)
    for _ in range(300):
        if await pool.fetchval(
            "SELECT count(*) FROM cases WHERE case_id = ANY($1)", case_ids
        ) == len(case_ids):
            break
        await asyncio.sleep(0.1)
    await client.get_schedule_handle(BATCH_ALARM_SCHEDULE_ID).trigger()
