"""An outside system's no, end to end through the workflows over stand-in activities
(docs/outside/): a declined payment waits for a person, who retries it or records it
settled another way, and the money moves once (R21); a refused shipment (R7, R8, R9,
R22), intercept (R4) or message, and a rejected carrier claim (R15), each take their
recorded path. None of them is retried."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from domain.case import (
    CaseKind,
    CompensationOffer,
    EvidenceSubmitted,
    ExchangeItem,
    Grade,
    InterceptRequested,
    MissingPart,
    OpenCaseRequest,
    PartRemedy,
    PaymentResolution,
    PaymentResolutionKind,
    Reason,
    Remedy,
    RemedyChoice,
    ReviewDecision,
    Role,
    RootCause,
    ScanEvent,
)
from domain.claim import ClaimStatus
from domain.ledger import LedgerAction as A
from domain.refusal import OutsideAnswer
from domain.state import CaseStatus
from tests.conftest import a_request, eur, eventually
from tests.helpers import Handle, open_case, scan, state_when, under_review
from tests.workflows.standins import StandIns
from tests.workflows.test_carrier_claim import start_claim
from workflows.damage_claim_case import DamageClaimCase
from workflows.exchange_case import ExchangeCase
from workflows.return_case import ReturnCase


def resolution(
    kind: PaymentResolutionKind, role: Role = Role.SUPERVISOR, reference: str | None = None
) -> PaymentResolution:
    return PaymentResolution(
        action_id=f"p-{uuid.uuid4().hex[:6]}", actor="sue", role=role, resolution=kind,
        reason="the customer updated the card on file", reference=reference,
    )  # fmt: skip


async def inspected_return(
    env: WorkflowEnvironment, task_queue: str, request: OpenCaseRequest
) -> Handle:
    """A changed-mind return whose refund is due now (R5, R13)."""
    handle = await open_case(env, task_queue, request)
    await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
    await handle.signal(
        ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
    )
    return handle


@pytest.mark.parametrize("answer", [OutsideAnswer.REFUSED, OutsideAnswer.UNKNOWN])
async def test_r21_a_declined_refund_waits_for_a_person_and_a_retry_pays_once(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    standins: StandIns,
    answer: OutsideAnswer,
) -> None:
    env = time_skipping_env
    request = a_request(paid_minor=4_000)
    case_id = request.case_id
    (standins.declining if answer is OutsideAnswer.REFUSED else standins.unknown_answers).add(
        case_id
    )
    async with running_worker(env.client):
        handle = await inspected_return(env, task_queue, request)
        waiting = await state_when(handle, lambda s: s.status is CaseStatus.PAYMENT_DECLINED)
        # Days pass: nothing retries a declined payment by itself.
        await env.sleep(timedelta(days=3))
        still = await handle.query(ReturnCase.state)
        standins.declining.clear()
        standins.unknown_answers.clear()
        answered = await handle.execute_update(
            ReturnCase.resolve_declined_payment, resolution(PaymentResolutionKind.RETRY)
        )
        result = await handle.result()

    assert waiting.declined_payment is not None
    assert waiting.declined_payment.answer is answer
    assert waiting.declined_payment.idempotency_key == f"{case_id}:refund:1"
    expected_reason = "insufficient funds" if answer is OutsideAnswer.REFUSED else "HTTP 418"
    assert expected_reason in waiting.declined_payment.reason
    assert waiting.waiting_for.startswith("a person")
    assert still.status is CaseStatus.PAYMENT_DECLINED
    assert standins.declined == [f"{case_id}:refund:1"]  # asked once, never retried alone
    assert answered.status is CaseStatus.REFUNDED
    assert result.status is CaseStatus.REFUNDED
    assert standins.refunded(case_id) == 4_000
    assert [r.provider_reference for r in result.refunds] == [f"standin-refund-{case_id}:refund:1"]
    actions = standins.actions(case_id)
    assert actions[-3:] == [A.PAYMENT_DECLINED, A.PAYMENT_RETRIED, A.REFUND_ISSUED]
    declined = next(s for s in standins.steps(case_id) if s.action is A.PAYMENT_DECLINED)
    assert declined.details["answer"] == answer.value
    assert declined.case.status == CaseStatus.PAYMENT_DECLINED
    retried = next(s for s in standins.steps(case_id) if s.action is A.PAYMENT_RETRIED)
    assert (retried.actor, retried.role) == ("sue", "supervisor")


async def test_r21_a_declined_refund_settled_elsewhere_closes_the_case_without_the_provider(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    env = time_skipping_env
    request = a_request(paid_minor=4_000)
    case_id = request.case_id
    standins.declining.add(case_id)
    async with running_worker(env.client):
        handle = await inspected_return(env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.PAYMENT_DECLINED)
        settled = resolution(PaymentResolutionKind.SETTLED_ELSEWHERE, reference="SEPA-0042")
        await handle.execute_update(ReturnCase.resolve_declined_payment, settled)
        result = await handle.result()

    assert result.status is CaseStatus.REFUNDED
    assert [(r.amount, r.provider_reference) for r in result.refunds] == [
        (eur(4_000), "elsewhere:SEPA-0042")
    ]
    assert standins.refunded(case_id) == 4_000  # one movement, recorded once
    settled_step = next(
        s for s in standins.steps(case_id) if s.action is A.PAYMENT_SETTLED_ELSEWHERE
    )
    assert settled_step.details["reference"] == "SEPA-0042"


async def test_r17_r21_a_resolution_is_refused_without_a_declined_payment_or_staff(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    env = time_skipping_env
    declined = a_request(paid_minor=4_000, request_id="r2")
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, a_request())
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
        with pytest.raises(WorkflowUpdateFailedError) as not_now:
            await handle.execute_update(
                ReturnCase.resolve_declined_payment, resolution(PaymentResolutionKind.RETRY)
            )
        await handle.terminate()
    standins.declining.add(declined.case_id)
    async with running_worker(env.client):
        other = await inspected_return(env, task_queue, declined)
        await state_when(other, lambda s: s.status is CaseStatus.PAYMENT_DECLINED)
        with pytest.raises(WorkflowUpdateFailedError) as customer:
            await other.execute_update(
                ReturnCase.resolve_declined_payment,
                resolution(PaymentResolutionKind.RETRY, role=Role.CUSTOMER),
            )
        assert (await other.query(ReturnCase.state)).status is CaseStatus.PAYMENT_DECLINED
        await other.terminate()
    assert "no declined payment waits" in str(not_now.value.cause)
    assert "R21" in str(not_now.value.cause)
    assert "customer may not send resolve_declined_payment" in str(customer.value.cause)


async def test_r21_a_declined_compensation_waits_and_other_money_waits_with_it(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:  # R17, R21
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue)
        case_id = (await handle.query(ReturnCase.state)).case_id
        standins.declining.add(case_id)
        offer = {"actor": "sue", "role": Role.SUPERVISOR, "reason": "sorry for the wait"}
        paid_view = await handle.execute_update(
            ReturnCase.offer_compensation,
            CompensationOffer(action_id="c-1", amount=eur(500), **offer),
        )
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(
                ReturnCase.offer_compensation,
                CompensationOffer(action_id="c-2", amount=eur(300), **offer),
            )
        standins.declining.clear()
        back = await handle.execute_update(
            ReturnCase.resolve_declined_payment, resolution(PaymentResolutionKind.RETRY)
        )
        await handle.terminate()
    assert paid_view.status is CaseStatus.PAYMENT_DECLINED
    assert back.status is CaseStatus.UNDER_REVIEW  # the status it was in comes back
    assert standins.refunded(case_id) == 500


async def test_r9_a_part_the_warehouse_cannot_send_is_refunded_instead(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    standins.refused_skus.add("SKU-42-STRAP")
    part = MissingPart(sku="SKU-42-STRAP", value=eur(1_500), remedy=PartRemedy.SHIP)
    async with running_worker(time_skipping_env.client):
        handle = await under_review(
            time_skipping_env, task_queue, reason=Reason.MISSING_PARTS, missing_part=part
        )
        await handle.execute_update(
            ReturnCase.decide,
            ReviewDecision(action_id="d-1", actor="agent-ann", role=Role.AGENT, approve=True),
        )
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert standins.refunded(result.case_id) == 1_500
    assert standins.shipments == {}
    refused = next(s for s in standins.steps(result.case_id) if s.action is A.SHIPMENT_REFUSED)
    assert refused.rule_id == "R9"
    assert "no stock of SKU-42-STRAP" in (refused.reason or "")


async def test_r7_r22_a_refused_replacement_asks_for_consent_to_a_refund(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    # In stock by the warehouse's list, yet it will not send it: the right item at
    # approval (R7) and the replacement at settlement (R22) are both refused.
    standins.refused_skus.add("SKU-43-L")
    request = a_request(
        kind=CaseKind.EXCHANGE, reason=Reason.WRONG_ITEM,
        exchange_for=ExchangeItem(sku="SKU-43-L", price=eur(5_990)),
    )  # fmt: skip
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_EVIDENCE)
        await handle.signal(
            ExchangeCase.evidence_submitted, EvidenceSubmitted(event_id="e-1", photos=["a.jpg"])
        )
        await state_when(handle, lambda s: s.status is CaseStatus.UNDER_REVIEW)
        await handle.execute_update(
            ExchangeCase.decide,
            ReviewDecision(
                action_id="d-1", actor="agent-ann", role=Role.AGENT, approve=True,
                root_cause=RootCause.PICKING_ERROR,
            ),
        )  # fmt: skip
        await handle.signal(ExchangeCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ExchangeCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        asked = await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_REFUND_CONSENT)
        await handle.terminate()
    refused = [s.rule_id for s in standins.steps(asked.case_id) if s.action is A.SHIPMENT_REFUSED]
    assert refused == ["R7", "R22"]
    assert standins.shipments == {}
    assert asked.shipments == []


async def test_r8_a_replacement_the_warehouse_cannot_send_is_refunded_in_full(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request(
        kind=CaseKind.DAMAGE_CLAIM, reason=Reason.DAMAGED_IN_TRANSIT, carrier="DHL",
        paid_minor=10_000, delivered_at=datetime.now(UTC) - timedelta(days=1),
        requested_after=timedelta(days=1),
    )  # fmt: skip
    standins.refused_skus.add(request.sku)
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_EVIDENCE)
        await handle.signal(
            DamageClaimCase.evidence_submitted, EvidenceSubmitted(event_id="e-1", photos=["b.jpg"])
        )
        await state_when(handle, lambda s: s.status is CaseStatus.UNDER_REVIEW)
        await handle.execute_update(
            DamageClaimCase.decide,
            ReviewDecision(
                action_id="d-1", actor="agent-ann", role=Role.AGENT, approve=True,
                root_cause=RootCause.PACKAGING,
            ),
        )  # fmt: skip
        await handle.execute_update(
            DamageClaimCase.choose_remedy, RemedyChoice(choice_id="r-1", remedy=Remedy.REPLACEMENT)
        )
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert standins.refunded(result.case_id) == 10_000
    assert A.SHIPMENT_REFUSED in standins.actions(result.case_id)


async def test_r4_an_intercept_the_carrier_refuses_keeps_the_case_waiting_for_delivery(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    standins.refusing_intercepts.add("SF")
    request = a_request(
        delivered_at=datetime.now(UTC) + timedelta(days=2), requested_after=timedelta(days=-2),
        carrier="SF", reason=Reason.NOT_RECEIVED,
    )  # fmt: skip
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_DELIVERY)
        await handle.signal(ReturnCase.intercept_requested, InterceptRequested(event_id="i-1"))
        steps = await eventually(
            lambda: _steps(standins, request.case_id),
            lambda actions: A.INTERCEPT_REFUSED in actions,
        )
        state = await handle.query(ReturnCase.state)
        await handle.terminate()
    assert state.status is CaseStatus.AWAITING_DELIVERY
    assert standins.intercepted == []
    assert steps[-1] is A.INTERCEPT_REFUSED


async def _steps(standins: StandIns, case_id: str) -> list[A]:
    return standins.actions(case_id)


async def test_a_message_the_service_refuses_is_recorded_and_the_case_goes_on(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:  # R12
    request = a_request()
    standins.unreachable_customers.add(request.customer.customer_id)
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        state = await handle.result()  # told nothing, it never ships back: abandoned (R12)
    assert state.status is CaseStatus.ABANDONED
    assert standins.messages == {}
    undelivered = [s for s in standins.steps(state.case_id) if s.action is A.MESSAGE_NOT_DELIVERED]
    assert len(undelivered) >= 3  # acknowledged, ship-back instructions, reminders
    assert all("no reachable address" in (s.reason or "") for s in undelivered)
    assert undelivered[0].details == {
        "key": f"{state.case_id}:case_acknowledged:1",
        "answer": "refused",
    }


async def test_r15_a_claim_the_carrier_rejects_is_closed_declined_with_its_reason(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    standins.rejecting_carriers.add("DHL")
    async with running_worker(time_skipping_env.client):
        claim = await start_claim(time_skipping_env, task_queue, delivered_days_ago=2)
        state = await claim.result()
    assert state.status is ClaimStatus.DECLINED
    assert state.filed_at is None
    assert standins.claims_filed == {}
    claim_id = state.request.claim_id
    assert standins.claim_actions(claim_id) == [A.CLAIM_REJECTED]
    entry = standins.claim_ledger[claim_id][1]
    assert "not liable" in (entry.reason or "")


async def test_r22_r21_a_declined_charge_settled_elsewhere_completes_the_exchange(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, standins: StandIns
) -> None:
    request = a_request(
        kind=CaseKind.EXCHANGE, paid_minor=5_990,
        exchange_for=ExchangeItem(sku="SKU-43-L", price=eur(6_990)),
    )  # fmt: skip
    standins.declining.add(request.case_id)
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, request)
        await handle.signal(ExchangeCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ExchangeCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        waiting = await state_when(handle, lambda s: s.status is CaseStatus.PAYMENT_DECLINED)
        await handle.execute_update(
            ExchangeCase.resolve_declined_payment,
            resolution(PaymentResolutionKind.SETTLED_ELSEWHERE, reference="card-terminal-77"),
        )
        result = await handle.result()
    assert waiting.declined_payment is not None
    assert waiting.declined_payment.kind == "charge"
    assert waiting.declined_payment.status_before is CaseStatus.EXCHANGE_DUE
    assert result.status is CaseStatus.EXCHANGED
    assert [c.provider_reference for c in result.charges] == ["elsewhere:card-terminal-77"]
    assert standins.charged(request.case_id) == 1_000
    assert len(standins.shipments) == 1
