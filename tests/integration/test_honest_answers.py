"""Honest answers (issue 10): an Update answers with what it did. A decision its
validator admitted and the case could then not apply is refused with the reason (the
API's 409), never answered with the case as if it had been applied."""

from __future__ import annotations

import asyncio
import warnings
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.workflow import UnfinishedUpdateHandlersWarning

from activities.payments import SandboxPaymentProvider
from activities.warehouse import SandboxWarehouse
from api.errors import ApiErrorItem, item_of
from domain.case import (
    Assignment,
    CallRequest,
    CompensationOffer,
    Complaint,
    Dispute,
    EscalationRequest,
    Grade,
    MissingPart,
    PartRemedy,
    Reason,
    ReviewDecision,
    Role,
    ScanEvent,
)
from domain.ledger import LedgerAction
from domain.money import Money
from domain.refusal import RefusalKind
from domain.state import CaseStatus, EscalationLevel
from infra.case_errors import refused_decision
from tests.conftest import eur
from tests.helpers import events, scan, sent_together, shipped, state_when, under_review
from tests.integration.test_disputes_and_surveys import rejected_at_inspection
from workflows.case_inbox import NOT_APPLIED
from workflows.return_case import ReturnCase

CASES = 6


@dataclass
class HeldPayments(SandboxPaymentProvider):
    """The sandbox provider, holding each payment until the test lets it through."""

    asked: asyncio.Event = field(default_factory=asyncio.Event)
    let_through: asyncio.Event = field(default_factory=asyncio.Event)

    async def _pay(self, kind: str, idempotency_key: str, amount: Money) -> str:
        self.asked.set()
        await self.let_through.wait()
        return await super()._pay(kind, idempotency_key, amount)


@pytest.fixture
def payments() -> HeldPayments:
    free = HeldPayments()
    free.let_through.set()
    return free


@dataclass
class HeldWarehouse(SandboxWarehouse):
    """The sandbox warehouse, holding each shipment until the test lets it through."""

    asked: asyncio.Event = field(default_factory=asyncio.Event)
    let_through: asyncio.Event = field(default_factory=asyncio.Event)

    async def ship(self, *, idempotency_key: str, sku: str, quantity: int) -> str:
        self.asked.set()
        await self.let_through.wait()
        return await super().ship(idempotency_key=idempotency_key, sku=sku, quantity=quantity)


@pytest.fixture
def warehouse() -> HeldWarehouse:
    free = HeldWarehouse()
    free.let_through.set()
    return free


def _approval(n: int) -> ReviewDecision:
    return ReviewDecision(action_id=f"d-{n}", actor=f"agent-{n}", role=Role.AGENT, approve=True)


async def test_of_two_approvals_sent_together_one_applies_and_the_other_is_refused(  # R10
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:
    # Sent together, both approvals often pass their validator before either is applied;
    # the second then changes nothing and must say so.
    async with running_worker(time_skipping_env.client):
        for n in range(CASES):
            handle = await under_review(
                time_skipping_env, task_queue, order_id=f"O-two-approvals-{task_queue}-{n}"
            )
            applied, refused = await sent_together(
                handle, ReturnCase.decide, [_approval(a) for a in (1, 2)]
            )
            assert len(applied) == 1, refused
            assert len(refused) == 1, applied
            assert applied[0].status is CaseStatus.AWAITING_SHIP_BACK
            # The validator's refusal, or the case's reason after admitting it.
            assert "awaiting_ship_back" in str(refused[0].cause)
            ledger = await events(pool, handle.id)
            approvals = [e for e in ledger if e["action"] == LedgerAction.APPROVED]
            assert len(approvals) == 1


def _arbitration_offer() -> CompensationOffer:
    return CompensationOffer(action_id="a-1", actor="sup-sam", role=Role.SUPERVISOR,
                             amount=eur(1_000), reason="goodwill")  # fmt: skip


async def test_an_offer_during_arbitration_is_refused_with_r19_typed(  # R19
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:
    # The case waits for the arbiter (R19): an offer would change money, so it changes
    # nothing and is answered so (the API's 409 naming R19), not with the unchanged case.
    async with running_worker(time_skipping_env.client):
        handle = await rejected_at_inspection(time_skipping_env, task_queue)
        await handle.signal(ReturnCase.dispute, Dispute(event_id="dsp-1", reason="unfair"))
        await state_when(handle, lambda s: s.status is CaseStatus.IN_ARBITRATION)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ReturnCase.offer_compensation, _arbitration_offer())
        after = await handle.query(ReturnCase.state)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == NOT_APPLIED
    assert list(cause.details) == [{"rule": "R19", "kind": RefusalKind.IN_ARBITRATION.value}]
    assert "arbitration" in cause.message
    assert after.status is CaseStatus.IN_ARBITRATION
    assert after.refunds == []
    ledger = await events(pool, handle.id)
    [ignored] = [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    assert ignored["rule_id"] == "R19"
    assert ignored["details"]["kind"] == RefusalKind.IN_ARBITRATION.value


async def test_a_retried_refused_offer_is_refused_again_and_pays_nothing(  # R19, R17
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:
    # A client retries the same action (same action id, a new Update) after a timeout:
    # the case answers with the first outcome, a refusal, not with a 200 and nothing done.
    async with running_worker(time_skipping_env.client):
        handle = await rejected_at_inspection(time_skipping_env, task_queue)
        await handle.signal(ReturnCase.dispute, Dispute(event_id="dsp-1", reason="unfair"))
        await state_when(handle, lambda s: s.status is CaseStatus.IN_ARBITRATION)
        refusals = []
        for _ in range(2):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(ReturnCase.offer_compensation, _arbitration_offer())
            refusals.append(refused.value.cause)
        after = await handle.query(ReturnCase.state)
    first, retry = refusals
    assert isinstance(first, ApplicationError)
    assert isinstance(retry, ApplicationError)
    assert (retry.type, retry.message, list(retry.details)) == (
        first.type, first.message, list(first.details)
    )  # fmt: skip
    assert retry.type == NOT_APPLIED
    assert after.refunds == []
    ledger = await events(pool, handle.id)
    assert len([e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]) == 1


@pytest.mark.parametrize(
    ("update", "action"),
    [
        (
            ReturnCase.escalate,
            EscalationRequest(action_id="a-1", actor="agent-ann", role=Role.AGENT,
                              reason="the customer is upset"),
        ),
        (
            ReturnCase.request_call,
            CallRequest(action_id="a-1", actor="agent-ann", role=Role.AGENT,
                        purpose="explain the arbitration"),
        ),
        (
            ReturnCase.assign,
            Assignment(action_id="a-1", actor="sup-sam", role=Role.SUPERVISOR, agent="agent-bo"),
        ),
    ],
    ids=["escalate", "request_call", "assign"],
)  # fmt: skip
async def test_an_action_changing_no_money_or_status_applies_in_arbitration(  # R19, R18, R16
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    update: Any,
    action: Any,
) -> None:
    # While the arbiter decides, the ladder, calls and assignment go on; the answer is
    # the case with the action applied, and the ledger has its step.
    async with running_worker(time_skipping_env.client):
        handle = await rejected_at_inspection(time_skipping_env, task_queue)
        await handle.signal(ReturnCase.dispute, Dispute(event_id="dsp-1", reason="unfair"))
        before = await state_when(handle, lambda s: s.status is CaseStatus.IN_ARBITRATION)
        answer = await handle.execute_update(update, action)
    assert answer.status is CaseStatus.IN_ARBITRATION
    assert answer.refunds == []
    ledger = await events(pool, handle.id)
    assert not [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    match action:
        case EscalationRequest():
            assert answer.escalation.level is EscalationLevel.MANAGER
        case CallRequest():
            assert answer.calls_scheduled == before.calls_scheduled + 1
        case Assignment():
            assert answer.assigned_agent == "agent-bo"


async def test_a_major_complaint_during_arbitration_goes_to_the_manager(  # R18, R19
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await rejected_at_inspection(time_skipping_env, task_queue)
        await handle.signal(ReturnCase.dispute, Dispute(event_id="dsp-1", reason="unfair"))
        await state_when(handle, lambda s: s.escalation.level is EscalationLevel.SUPERVISOR)
        await handle.signal(
            ReturnCase.complaint, Complaint(event_id="c-1", summary="rude", major=True)
        )
        after = await state_when(handle, lambda s: s.escalation.level is EscalationLevel.MANAGER)
    assert after.status is CaseStatus.IN_ARBITRATION
    ledger = await events(pool, handle.id)
    escalations = [e["details"] for e in ledger if e["action"] == LedgerAction.ESCALATED]
    assert escalations[-1] == {"level": "manager", "complaint": "rude"}
    assert not [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]


async def test_calls_sent_together_past_the_r16_cap_are_refused_and_not_scheduled(  # R16
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:
    # The opening's first-contact call (R10) is one of the three; four requests admitted
    # together: two are scheduled, the other two are refused, none is recorded as made.
    requests = [CallRequest(action_id=f"c-{i}", actor="agent-ann", role=Role.AGENT,
                            purpose="explain") for i in range(4)]  # fmt: skip
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        applied, failed = await sent_together(handle, ReturnCase.request_call, requests)
        after = await handle.query(ReturnCase.state)
    refused = [f.cause for f in failed]
    assert len(applied) == 2, refused
    assert len(refused) == 2, applied
    # The validator's refusal, or the case's after admitting it: both name R16.
    assert all(isinstance(r, ApplicationError) and "R16" in r.message for r in refused)
    assert after.calls_scheduled == 3
    ledger = await events(pool, handle.id)
    assert len([e for e in ledger if e["action"] == LedgerAction.CALL_SCHEDULED]) == 2
    typed = [r for r in refused if isinstance(r, ApplicationError) and r.type == NOT_APPLIED]
    assert all(list(r.details) == [{"rule": "R16", "kind": "call_limit_reached"}] for r in typed)


async def test_escalations_sent_together_past_the_manager_are_refused(  # R18
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:
    # None -> supervisor -> manager: of three requests admitted together, the third
    # cannot climb and is refused with R18; the ledger has two escalations.
    requests = [EscalationRequest(action_id=f"e-{i}", actor="agent-ann", role=Role.AGENT,
                                  reason="upset") for i in range(3)]  # fmt: skip
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        applied, failed = await sent_together(handle, ReturnCase.escalate, requests)
        after = await handle.query(ReturnCase.state)
    refused = [f.cause for f in failed]
    assert len(applied) == 2, refused
    assert [r.message for r in refused if isinstance(r, ApplicationError)] == [
        "escalation: the case is already at the manager level (R18)"
    ]
    assert after.escalation.level is EscalationLevel.MANAGER
    ledger = await events(pool, handle.id)
    assert len([e for e in ledger if e["action"] == LedgerAction.ESCALATED]) == 2


async def test_the_escalation_ladder_climbs_during_arbitration(  # R18, R19
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:
    # The dispute sends the case to a supervisor (R18); silent for 24 hours, it goes to
    # the manager level while the case still waits for the arbiter.
    async with running_worker(time_skipping_env.client):
        handle = await rejected_at_inspection(time_skipping_env, task_queue)
        await handle.signal(ReturnCase.dispute, Dispute(event_id="dsp-1", reason="unfair"))
        escalated = await state_when(
            handle, lambda s: s.escalation.level is EscalationLevel.SUPERVISOR
        )
        await time_skipping_env.sleep(timedelta(hours=23))
        before = await handle.query(ReturnCase.state)
        await time_skipping_env.sleep(timedelta(hours=2))
        after = await state_when(handle, lambda s: s.escalation.level is EscalationLevel.MANAGER)
    assert escalated.status is CaseStatus.IN_ARBITRATION
    assert before.escalation.level is EscalationLevel.SUPERVISOR
    assert after.escalation.level is EscalationLevel.MANAGER
    assert after.status is CaseStatus.IN_ARBITRATION


OFFERS = 6


async def test_offers_sent_together_answer_what_each_paid_and_refuse_what_paid_nothing(  # R17, R21
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:
    # Six offers of 30.00 on an 80.00 case, sent together: most pass their validator
    # before any is paid; then two pay in full, one is capped at the 20.00 left, and the
    # rest find nothing left. Each answer says what its offer did.
    asked = eur(3_000)
    not_applied = capped = 0
    async with running_worker(time_skipping_env.client):
        for n in range(CASES):
            handle = await under_review(
                time_skipping_env, task_queue, paid_minor=8_000,
                order_id=f"O-six-offers-{task_queue}-{n}",
            )  # fmt: skip
            offers = [
                CompensationOffer(action_id=f"c-{o}", actor="sup-sam", role=Role.SUPERVISOR,
                                  amount=asked, reason="goodwill")
                for o in range(OFFERS)
            ]  # fmt: skip
            applied, refused = await sent_together(handle, ReturnCase.offer_compensation, offers)
            # An applied offer's answer is the case right after it: its payment is the last.
            paid = [view.refunds[-1] for view in applied]
            assert sorted(len(view.refunds) for view in applied) == list(range(1, len(applied) + 1))
            assert all(p.purpose == "compensation" and p.amount.amount_minor > 0 for p in paid)
            assert all(p.amount <= asked for p in paid)
            moved = await pool.fetchval(
                "SELECT sum(amount_minor) FROM money_movements WHERE case_id = $1", handle.id
            )
            assert sum(p.amount.amount_minor for p in paid) == moved <= 8_000
            capped += sum(1 for p in paid if p.amount != asked)
            for answer in refused:
                cause = answer.cause
                assert isinstance(cause, ApplicationError)
                assert cause.message.startswith("R21"), cause.message
                if cause.type == NOT_APPLIED:
                    assert "nothing left to refund" in cause.message
                    not_applied += 1
            ledger = await events(pool, handle.id)
            not_due = [e for e in ledger if e["action"] == LedgerAction.REFUND_NOT_DUE]
            assert len(not_due) == sum(
                1 for a in refused if isinstance(a.cause, ApplicationError)
                and a.cause.type == NOT_APPLIED
            )  # fmt: skip
            # One rule per step: R21's limit paid nothing; the offer's own rule is a detail.
            assert all(
                (e["rule_id"], e["details"]) == ("R21", {"refund_for_rule": "R17"}) for e in not_due
            ), not_due
    # Offers admitted together and then capped or refused: the paths this test is for.
    assert not_applied > 0
    assert capped > 0


async def test_an_offer_admitted_as_the_case_closes_is_answered_before_the_case_ends(  # R21
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    payments: HeldPayments,
) -> None:
    # The offer passes its validator while the closing refund is being paid; its turn
    # comes once the case is refunded and closed. The case records it and answers its
    # caller before the run completes, instead of ending with the handler unfinished.
    payments.let_through.clear()
    offer = CompensationOffer(action_id="c-late", actor="sup-sam", role=Role.SUPERVISOR,
                              amount=eur(1_000), reason="goodwill")  # fmt: skip
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue, paid_minor=8_000)
        await handle.execute_update(ReturnCase.decide, _approval(1))
        await handle.signal(ReturnCase.shipped_back, shipped())
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        await asyncio.wait_for(payments.asked.wait(), timeout=30)
        admitted = await handle.start_update(
            ReturnCase.offer_compensation, offer, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            payments.let_through.set()
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await asyncio.wait_for(admitted.result(), timeout=30)
            closed = await asyncio.wait_for(handle.result(), timeout=30)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == NOT_APPLIED
    assert "already closed (refunded)" in cause.message
    assert closed.status is CaseStatus.REFUNDED
    assert closed.refunded_total == eur(8_000)
    ledger = await events(pool, handle.id)
    ignored = [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    assert [e["details"]["message"]["action_id"] for e in ignored] == ["c-late"]
    assert [w for w in warned if issubclass(w.category, UnfinishedUpdateHandlersWarning)] == []


async def test_a_rejection_admitted_while_the_auto_approval_runs_is_refused(  # R10, R11
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    warehouse: HeldWarehouse,
) -> None:
    # The review deadline passes: R11 approves a missing part and ships it. While the
    # shipment is under way the case is still under review, so an agent's rejection
    # passes its validator; its turn comes after the approval, and it is refused.
    warehouse.let_through.clear()
    part = MissingPart(sku="SKU-42-STRAP", value=eur(1_500), remedy=PartRemedy.SHIP)
    rejection = ReviewDecision(action_id="d-late", actor="agent-ann", role=Role.AGENT,
                               approve=False, reason="the strap is in the box")  # fmt: skip
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await under_review(env, task_queue, reason=Reason.MISSING_PARTS, missing_part=part)
        review = await handle.query(ReturnCase.state)
        assert review.review_deadline is not None
        await env.sleep(
            review.review_deadline - await env.get_current_time() + timedelta(seconds=1)
        )
        await asyncio.wait_for(warehouse.asked.wait(), timeout=30)
        admitted = await handle.start_update(
            ReturnCase.decide, rejection, wait_for_stage=WorkflowUpdateStage.ACCEPTED
        )
        warehouse.let_through.set()
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await asyncio.wait_for(admitted.result(), timeout=30)
        closed = await asyncio.wait_for(handle.result(), timeout=30)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == NOT_APPLIED
    assert "replaced" in cause.message
    assert closed.status is CaseStatus.REPLACED
    assert closed.auto_approved
    ledger = await events(pool, handle.id)
    assert "rejected" not in [e["action"] for e in ledger]
    ignored = [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    assert [e["details"]["message"]["action_id"] for e in ignored] == ["d-late"]


def test_a_refusal_reaches_the_api_with_its_typed_rule_not_one_read_from_prose() -> None:  # R19
    # The text names no rule: the 409 names R19 from the refusal's details alone.
    failure = ApplicationError(
        "nothing to do while the case is in_arbitration",
        {"rule": "R19", "kind": RefusalKind.IN_ARBITRATION.value},
        type=NOT_APPLIED,
    )
    refused = refused_decision(WorkflowUpdateFailedError(failure))
    assert refused.rule == "R19"
    assert item_of(refused) == ApiErrorItem(
        field=None, rule="R19", message="nothing to do while the case is in_arbitration"
    )
    # A failure with no typed refusal names no rule, whatever its words hold.
    validator = refused_decision(
        WorkflowUpdateFailedError(ApplicationError("status: the case is refunded (closed)"))
    )
    assert (str(validator), validator.rule) == ("status: the case is refunded (closed)", None)
