"""R13: a refund not through 24 h after a passed inspection is escalated, and the
retries go on until the payment provider takes it (exactly once, R21)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.payments import SandboxPaymentProvider
from domain.case import Grade, ScanEvent
from domain.money import Money
from domain.policy_settings import PolicySettings
from domain.sla import SlaClock
from domain.state import CaseStatus, EscalationLevel
from tests.conftest import a_request, eur
from tests.helpers import open_case, scan, state_when
from workflows.return_case import ReturnCase


@dataclass
class UnavailableProvider(SandboxPaymentProvider):
    """A provider that is down until `available` is set (an outage outside our control)."""

    available: bool = False

    async def refund(self, *, idempotency_key: str, case_id: str, amount: Money) -> str:
        if not self.available:
            raise ConnectionError("payment provider unavailable")
        return await super().refund(idempotency_key=idempotency_key, case_id=case_id,
                                    amount=amount)  # fmt: skip


@pytest.fixture
def payments() -> UnavailableProvider:
    return UnavailableProvider()


async def test_a_refund_late_past_its_deadline_is_escalated_and_still_paid_once(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    payments: UnavailableProvider,
) -> None:  # R13, R18, R21
    env = time_skipping_env
    # A short deadline keeps the provider's retries (backing off to a minute) few.
    policy = PolicySettings(refund_deadline=timedelta(minutes=10))
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, a_request(paid_minor=2_000), policy=policy)
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        due = await state_when(handle, lambda s: s.status is CaseStatus.REFUND_DUE)
        assert due.refund_deadline is not None
        assert due.next_deadline == due.refund_deadline
        await env.sleep(timedelta(minutes=9))
        assert (await handle.query(ReturnCase.state)).sla_breaches == []
        await env.sleep(timedelta(minutes=2))
        late = await state_when(handle, lambda s: bool(s.sla_breaches))
        payments.available = True
        result = await handle.result()
    assert [(b.clock, b.rule, b.due_at) for b in late.sla_breaches] == [
        (SlaClock.REFUND, "R13", due.refund_deadline)
    ]
    assert late.sla_breaches[0].breached_at >= due.refund_deadline
    assert late.escalation.level is EscalationLevel.SUPERVISOR
    assert result.status is CaseStatus.REFUNDED
    assert list(payments.refunds.values()) == [eur(2_000)]
