"""Record real histories of case runs for the replay test (docs/versioning.md).

`.venv/bin/python -m tests.histories.record` records each scenario whose file does not
exist yet; `--into DIR` records every scenario into DIR instead (to compare a change's
histories, e.g. their event counts, with the recorded ones). Never re-record an existing
file: once the product is released each stands for cases running in production, which
every later build must still replay."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from activities.notifications import RecordingNotifier
from activities.payments import SandboxPaymentProvider
from domain.case import (
    ArbitrationRuling,
    CaseKind,
    CompensationOffer,
    Dispute,
    EscalationRequest,
    EvidenceSubmitted,
    ExchangeItem,
    Grade,
    OpenCaseRequest,
    PaymentResolution,
    PaymentResolutionKind,
    Reason,
    Remedy,
    RemedyChoice,
    ReviewDecision,
    Role,
    RootCause,
    ScanEvent,
    ShippedBack,
    WarehouseScan,
)
from domain.claim import CarrierAnswer, CarrierClaimRequest
from domain.money import Money
from domain.policy_settings import PolicySettings
from domain.state import CaseState, CaseStatus
from infra.case_messages import WORKFLOW_OF_KIND
from infra.database import create_pool, migrate
from infra.devstack import start_embedded_postgres, start_time_skipping_server
from infra.security.data_converter import FIXTURE_RECORDING_DATA_CONVERTER
from tests.conftest import a_request, eventually
from tests.helpers import Handle
from tests.identities import IDENTITIES, TRUSTING_EDGE
from worker import build_worker
from workflows.carrier_claim import CarrierClaim, ClaimRun
from workflows.case_run import CaseRun
from workflows.damage_claim_case import DamageClaimCase
from workflows.exchange_case import ExchangeCase
from workflows.return_case import ReturnCase

HERE = Path(__file__).parent
TASK_QUEUE = "record-histories"
AT = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)


def _scan(scan_id: str, event: ScanEvent, grade: Grade | None = None) -> WarehouseScan:
    return WarehouseScan(scan_id=scan_id, event=event, station="DOCK-1", grade=grade, scanned_at=AT)


async def _ship_and_pass(handle: Handle, grade: Grade = Grade.RESELLABLE) -> None:
    shipped = ShippedBack(event_id="e1", carrier="DHL", tracking_number="T1", shipped_at=AT,
                          postage=Money(amount_minor=690, currency="EUR"))  # fmt: skip
    await handle.signal(ReturnCase.shipped_back, shipped)
    await handle.signal(ReturnCase.warehouse_scan, _scan("dock-1", ScanEvent.PARCEL_RECEIVED))
    await handle.signal(ReturnCase.warehouse_scan, _scan("dock-1", ScanEvent.PARCEL_RECEIVED))
    await handle.signal(ReturnCase.warehouse_scan, _scan("qc-1", ScanEvent.INSPECTED, grade))


async def _nothing(handle: Handle) -> None:
    del handle


async def _rejected_at_inspection(handle: Handle) -> None:
    await handle.signal(
        ReturnCase.warehouse_scan, _scan("qc-2", ScanEvent.INSPECTED, Grade.DAMAGED)
    )


async def _reviewed_escalated_compensated(handle: Handle) -> None:
    await handle.signal(ReturnCase.evidence_submitted,
                        EvidenceSubmitted(event_id="ev-1", photos=["p1.jpg"]))  # fmt: skip
    await handle.execute_update(
        ReturnCase.escalate,
        EscalationRequest(action_id="x-1", actor="agent-ann", role=Role.AGENT, reason="unsure"),
    )
    await handle.execute_update(
        ReturnCase.offer_compensation,
        CompensationOffer(action_id="c-1", actor="sup-sam", role=Role.SUPERVISOR,
                          amount=Money(amount_minor=1_500, currency="EUR"), reason="goodwill"),
    )  # fmt: skip
    await _ship_and_pass(handle, Grade.DAMAGED)


# One provider for every scenario (their keys differ): it declines HIST-23's refund until
# a person has looked at it.
PAYMENTS = SandboxPaymentProvider(declined_orders={"HIST-23"})


async def _refund_declined_then_retried(handle: Handle) -> None:
    """The provider declines the refund (issue 18): the case waits in payment_declined
    until a supervisor retries it, and pays once (R21)."""
    await _ship_and_pass(handle)
    await eventually(
        lambda: handle.query(ReturnCase.state), lambda s: s.status is CaseStatus.PAYMENT_DECLINED
    )
    PAYMENTS.declined_orders.clear()
    await handle.execute_update(
        ReturnCase.resolve_declined_payment,
        PaymentResolution(action_id="p-1", actor="sup-sam", role=Role.SUPERVISOR,
                          resolution=PaymentResolutionKind.RETRY, reason="the card works again"),
    )  # fmt: skip


async def _two_offers_capped(handle: Handle) -> None:
    """Two offers accepted before either is paid: the second is capped at what is left of
    the price (R21), and the merchant-fault refund finds nothing left."""
    await handle.signal(ReturnCase.evidence_submitted,
                        EvidenceSubmitted(event_id="ev-1", photos=["p1.jpg"]))  # fmt: skip
    offers = [
        CompensationOffer(action_id=f"c-{n}", actor="sup-sam", role=Role.SUPERVISOR,
                          amount=Money(amount_minor=4_000, currency="EUR"), reason="goodwill")
        for n in (1, 2)
    ]  # fmt: skip
    await asyncio.gather(
        *(handle.execute_update(ReturnCase.offer_compensation, offer) for offer in offers)
    )
    await _ship_and_pass(handle, Grade.DAMAGED)


async def _racing_decisions_scans_and_offer(handle: Handle) -> None:
    """Issue 10's race: two approvals at once, then at once two passing inspection scans
    and a supervisor's compensation."""
    await handle.signal(ReturnCase.evidence_submitted,
                        EvidenceSubmitted(event_id="ev-1", photos=["p1.jpg"]))  # fmt: skip
    await eventually(
        lambda: handle.query(ReturnCase.state),
        lambda state: state.status is CaseStatus.UNDER_REVIEW,
    )
    approvals = [
        ReviewDecision(action_id=f"d-{n}", actor=f"agent-{n}", role=Role.AGENT, approve=True)
        for n in (1, 2)
    ]
    await asyncio.gather(
        *(handle.execute_update(ReturnCase.decide, approval) for approval in approvals),
        return_exceptions=True,
    )
    offer = CompensationOffer(action_id="c-1", actor="sup-sam", role=Role.SUPERVISOR,
                              amount=Money(amount_minor=1_500, currency="EUR"),
                              reason="goodwill")  # fmt: skip
    passed = (_scan(scan_id, ScanEvent.INSPECTED, Grade.RESELLABLE) for scan_id in ("qc-a", "qc-b"))
    await asyncio.gather(
        *(handle.signal(ReturnCase.warehouse_scan, scan) for scan in passed),
        handle.execute_update(ReturnCase.offer_compensation, offer),
        return_exceptions=True,  # an offer admitted as the case closes is refused
    )


async def _dearer_exchange(handle: Handle) -> None:
    await handle.signal(ExchangeCase.warehouse_scan, _scan("dock-7", ScanEvent.PARCEL_RECEIVED))
    passed = _scan("qc-7", ScanEvent.INSPECTED, Grade.RESELLABLE)
    await handle.signal(ExchangeCase.warehouse_scan, passed)


async def _lost_parcel_replaced(handle: Handle) -> None:
    await eventually(
        lambda: handle.query(DamageClaimCase.state),
        lambda state: state.status is CaseStatus.UNDER_REVIEW,
    )
    await handle.execute_update(
        DamageClaimCase.decide,
        ReviewDecision(action_id="d-8", actor="agent-ann", role=Role.AGENT, approve=True,
                       root_cause=RootCause.ROUTE),
    )  # fmt: skip
    await handle.execute_update(
        DamageClaimCase.choose_remedy, RemedyChoice(choice_id="r-8", remedy=Remedy.REPLACEMENT)
    )


async def _disputed_and_ruled(handle: Handle) -> None:
    await _rejected_at_inspection(handle)
    await handle.signal(ReturnCase.dispute, Dispute(event_id="dsp-9", reason="it was like that"))
    await eventually(
        lambda: handle.query(ReturnCase.state),
        lambda state: state.status is CaseStatus.IN_ARBITRATION,
    )
    await handle.execute_update(
        ReturnCase.apply_ruling,
        ArbitrationRuling(action_id="rule-9", actor="arbiter-1", role=Role.ARBITER,
                          favour_customer=True, reason="transport damage, not the customer"),
    )  # fmt: skip


async def _sent_and_scanned_during_review(handle: Handle) -> None:
    """The customer ships, and the parcel is scanned, before the agent approves (R26)."""
    await handle.signal(ReturnCase.evidence_submitted,
                        EvidenceSubmitted(event_id="ev-11", photos=["p1.jpg"]))  # fmt: skip
    shipped = ShippedBack(event_id="e11", carrier="DHL", tracking_number="T11", shipped_at=AT,
                          postage=Money(amount_minor=690, currency="EUR"))  # fmt: skip
    await handle.signal(ReturnCase.shipped_back, shipped)
    await handle.signal(ReturnCase.warehouse_scan, _scan("dock-11", ScanEvent.PARCEL_RECEIVED))
    await eventually(lambda: handle.query(ReturnCase.state), lambda view: view.messages_held == 2)
    await handle.execute_update(
        ReturnCase.decide,
        ReviewDecision(action_id="d-11", actor="agent-ann", role=Role.AGENT, approve=True),
    )
    await handle.signal(
        ReturnCase.warehouse_scan, _scan("qc-11", ScanEvent.INSPECTED, Grade.RESELLABLE)
    )


async def _wrong_item_exchanged(handle: Handle) -> None:
    """R7: the right item ships at approval; the wrong one comes back, postage paid (R6)."""
    await handle.signal(ExchangeCase.evidence_submitted,
                        EvidenceSubmitted(event_id="ev-18", photos=["p1.jpg"]))  # fmt: skip
    await eventually(
        lambda: handle.query(ExchangeCase.state),
        lambda state: state.status is CaseStatus.UNDER_REVIEW,
    )
    await handle.execute_update(
        ExchangeCase.decide,
        ReviewDecision(action_id="d-18", actor="agent-ann", role=Role.AGENT, approve=True,
                       root_cause=RootCause.PICKING_ERROR),
    )  # fmt: skip
    await _ship_and_pass(handle)


EUR = "EUR"


def _dearer_exchange_request(order_id: str) -> OpenCaseRequest:
    return a_request(
        order_id=order_id,
        kind=CaseKind.EXCHANGE,
        exchange_for=ExchangeItem(sku="SKU-42-XL", price=Money(amount_minor=6_990, currency=EUR)),
    )


def _wrong_item_request(order_id: str) -> OpenCaseRequest:
    return a_request(
        order_id=order_id,
        kind=CaseKind.EXCHANGE,
        reason=Reason.WRONG_ITEM,
        exchange_for=ExchangeItem(sku="SKU-42-BLUE", price=Money(amount_minor=5_990, currency=EUR)),
    )


def _lost_parcel_request(order_id: str) -> OpenCaseRequest:
    return a_request(
        order_id=order_id, kind=CaseKind.DAMAGE_CLAIM, reason=Reason.LOST_IN_TRANSIT, carrier="DHL"
    )


Scenario = tuple[OpenCaseRequest, Callable[[Handle], Awaitable[None]]]
SCENARIOS: dict[str, Scenario] = {
    "return_refunded": (a_request(order_id="HIST-1"), _ship_and_pass),
    "return_rejected": (a_request(order_id="HIST-2"), _rejected_at_inspection),
    "return_refused": (a_request(order_id="HIST-3", requested_after=timedelta(days=9)), _nothing),
    "return_abandoned": (a_request(order_id="HIST-4"), _nothing),
    "return_quality_defect_auto_approved": (
        a_request(order_id="HIST-5", reason=Reason.QUALITY_DEFECT),
        _reviewed_escalated_compensated,
    ),
    "return_not_as_described_no_evidence": (
        a_request(order_id="HIST-6", reason=Reason.NOT_AS_DESCRIBED),
        _nothing,
    ),
    "exchange_dearer_replacement": (
        _dearer_exchange_request("HIST-7"),
        _dearer_exchange,
    ),
    "damage_claim_lost_replaced": (
        _lost_parcel_request("HIST-8"),
        _lost_parcel_replaced,
    ),
    "return_disputed_ruled_for_customer": (a_request(order_id="HIST-9"), _disputed_and_ruled),
    "return_shipped_and_scanned_before_approval": (
        a_request(order_id="HIST-11", reason=Reason.QUALITY_DEFECT),
        _sent_and_scanned_during_review,
    ),
    "exchange_wrong_item": (_wrong_item_request("HIST-18"), _wrong_item_exchanged),
    "return_two_offers_capped": (
        a_request(order_id="HIST-17", reason=Reason.QUALITY_DEFECT),
        _two_offers_capped,
    ),
    "return_racing_decisions_scans_and_offer": (
        a_request(order_id="HIST-20", reason=Reason.QUALITY_DEFECT),
        _racing_decisions_scans_and_offer,
    ),
    # Patch dispute-window-in-the-view (issue 17): R19's window recorded in the ledger.
    "return_rejected_dispute_window_recorded": (
        a_request(order_id="HIST-21"),
        _rejected_at_inspection,
    ),
    "return_disputed_dispute_window_recorded": (
        a_request(order_id="HIST-22"),
        _disputed_and_ruled,
    ),
    "return_refund_declined_then_retried": (
        a_request(order_id="HIST-23"),
        _refund_declined_then_retried,
    ),
}


def _claim_run(order_id: str, **run: Any) -> ClaimRun:
    """A 100.00 claim against DHL for the damage claim of `order_id`, line 1."""
    return ClaimRun(
        request=CarrierClaimRequest(
            claim_id=f"claim-{order_id}", case_id=f"damage_claim-{order_id}-1-r1",
            carrier="DHL", amount=Money(amount_minor=10_000, currency=EUR),
            deadline_counts_from=datetime.now(UTC), policy=PolicySettings(),
        ),
        **run,
    )  # fmt: skip


async def _record_claim(env: WorkflowEnvironment, into: Path) -> None:
    """A carrier claim chased for 90 days, continuing as new, then answered."""
    name = "carrier_claim_90_days"
    if (into / f"{name}.json").exists():
        return
    run = _claim_run("HIST-10", history_events_before_continue=200)
    claim = await env.client.start_workflow(
        CarrierClaim.run, run, id=run.request.claim_id, task_queue=TASK_QUEUE
    )
    first_run = claim.result_run_id
    await env.sleep(timedelta(days=90))
    await claim.signal(
        CarrierClaim.carrier_response,
        CarrierAnswer(response_id="dhl-10", accepted=True,
                        recovered=Money(amount_minor=7_000, currency=EUR)),
    )  # fmt: skip
    await claim.result()
    first = env.client.get_workflow_handle(run.request.claim_id, run_id=first_run)
    history = await first.fetch_history()
    (into / f"{name}.json").write_text(history.to_json())
    _remember_id(into, name, run.request.claim_id)
    print(f"recorded {name}: {len(history.events)} events (first run)")


async def _record_claim_answered_late(env: WorkflowEnvironment, into: Path) -> None:
    """A carrier claim settled, answered again after the close, then its window ends."""
    name = "carrier_claim_answered_after_close"
    if (into / f"{name}.json").exists():
        return
    run = _claim_run("HIST-12")
    claim = await env.client.start_workflow(
        CarrierClaim.run, run, id=run.request.claim_id, task_queue=TASK_QUEUE
    )
    await eventually(
        lambda: claim.query(CarrierClaim.state), lambda state: state.filed_at is not None
    )
    for response_id, minor in (("dhl-12", 7_000), ("dhl-12-revised", 7_500)):
        await claim.signal(
            CarrierClaim.carrier_response,
            CarrierAnswer(response_id=response_id, accepted=True,
                            recovered=Money(amount_minor=minor, currency=EUR)),
        )  # fmt: skip
    await claim.result()
    history = await claim.fetch_history()
    (into / f"{name}.json").write_text(history.to_json())
    _remember_id(into, name, run.request.claim_id)
    print(f"recorded {name}: {len(history.events)} events")


def _remember_id(into: Path, name: str, workflow_id: str) -> None:
    index = into / "workflow_ids.json"
    ids = json.loads(index.read_text()) if index.exists() else {}
    ids[name] = workflow_id
    index.write_text(json.dumps(ids, indent=2, sort_keys=True) + "\n")


async def main(into: Path) -> None:
    missing = {name: s for name, s in SCENARIOS.items() if not (into / f"{name}.json").exists()}
    with tempfile.TemporaryDirectory() as tmp:
        pool = await create_pool(start_embedded_postgres(Path(tmp) / "pg", delete_on_exit=True))
        await migrate(pool)
        for name, (request, drive) in missing.items():
            # A server per case: a child that outlives its case (the R25 survey) stops the
            # time-skipping clock for the next one (design.md, pitfalls).
            env = await start_time_skipping_server(
                FIXTURE_RECORDING_DATA_CONVERTER, interceptors=[TRUSTING_EDGE]
            )
            worker = build_worker(
                env.client, pool=pool, task_queue=TASK_QUEUE, payments=PAYMENTS,
                notifier=RecordingNotifier(), grants=IDENTITIES.verifier,
            )  # fmt: skip
            async with worker:
                handle = await env.client.start_workflow(
                    WORKFLOW_OF_KIND[request.kind].__name__, CaseRun(request=request),
                    id=request.case_id, task_queue=TASK_QUEUE, result_type=CaseState,
                )  # fmt: skip
                await drive(handle)
                await handle.result()
                history = await handle.fetch_history()
                (into / f"{name}.json").write_text(history.to_json())
                _remember_id(into, name, request.case_id)
                print(f"recorded {name}: {len(history.events)} events")
            await env.shutdown()
        # A server of its own: its clock must not wait on the cases' leftover children.
        env = await start_time_skipping_server(
            FIXTURE_RECORDING_DATA_CONVERTER, interceptors=[TRUSTING_EDGE]
        )
        claim_worker = build_worker(
            env.client, pool=pool, task_queue=TASK_QUEUE, payments=SandboxPaymentProvider(),
            notifier=RecordingNotifier(), grants=IDENTITIES.verifier,
        )  # fmt: skip
        async with claim_worker:
            await _record_claim(env, into)
            await _record_claim_answered_late(env, into)
        await env.shutdown()
        await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--into", type=Path, default=HERE, help="where to record")
    target = parser.parse_args().into
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(target))
