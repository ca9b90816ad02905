"""ReturnCase on the time-skipping server, with the real activities and PostgreSQL:
days pass in milliseconds, never in sleeps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from activities.notifications import RecordingNotifier, Template
from activities.payments import SandboxPaymentProvider
from domain.case import Grade, ScanEvent
from domain.ledger import LedgerAction
from domain.state import CaseStatus, Disposition
from tests.conftest import a_request
from tests.helpers import events, open_case, scan, shipped, state_when
from workflows.return_case import ReturnCase


async def test_request_after_7_days_is_refused_and_recorded(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    notifier: RecordingNotifier,
) -> None:  # R1, R20, R23
    request = a_request(requested_after=timedelta(days=7, minutes=1))
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        result = await handle.result()
    assert request.delivered_at is not None
    deadline = (request.delivered_at + timedelta(days=7)).isoformat()
    assert result.status is CaseStatus.REFUSED
    assert result.decision_reason is not None
    assert deadline in result.decision_reason
    row = await pool.fetchrow(
        "SELECT status, decision_reason FROM cases WHERE case_id = $1", request.case_id
    )
    assert row is not None
    assert row["status"] == "refused"
    assert deadline in row["decision_reason"]
    ledger = await events(pool, request.case_id)
    assert [(e["action"], e["rule_id"]) for e in ledger] == [
        ("case_opened", "R2"),
        ("request_refused", "R1"),
    ]
    # The R25 survey is the survey workflow's message, sent apart from the case.
    case_messages = [
        m.template for m in notifier.delivered if m.template is not Template.SATISFACTION_SURVEY
    ]
    assert case_messages == [Template.CASE_REFUSED]


async def test_reminders_on_day_3_and_6_then_abandoned_on_day_7(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    payments: SandboxPaymentProvider,
) -> None:  # R12
    env = time_skipping_env
    request = a_request()
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, request)
        opened = await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
        approved_at = opened.approved_at
        assert approved_at is not None

        await env.sleep(timedelta(days=2, hours=23, minutes=59))
        assert (await handle.query(ReturnCase.state)).reminders_sent == []

        await env.sleep(timedelta(minutes=2))  # day 3 passes
        day3 = await state_when(handle, lambda s: len(s.reminders_sent) == 1)
        assert [r.due_at for r in day3.reminders_sent] == [approved_at + timedelta(days=3)]
        assert day3.reminders_sent[0].sent_at - day3.reminders_sent[0].due_at < timedelta(minutes=1)

        await env.sleep(timedelta(days=3))  # day 6 passes
        day6 = await state_when(handle, lambda s: len(s.reminders_sent) == 2)
        assert day6.reminders_sent[1].due_at == approved_at + timedelta(days=6)
        assert day6.status is CaseStatus.AWAITING_SHIP_BACK

        await env.sleep(timedelta(hours=23, minutes=58))  # one minute before day 7
        assert (await handle.query(ReturnCase.state)).status is CaseStatus.AWAITING_SHIP_BACK

        result = await handle.result()
    assert result.status is CaseStatus.ABANDONED
    assert result.closed_at is not None
    assert (
        timedelta(0) <= result.closed_at - (approved_at + timedelta(days=7)) < timedelta(minutes=1)
    )
    assert result.refunds == []
    assert payments.calls == []
    actions = [e["action"] for e in await events(pool, request.case_id)]
    assert actions == [
        "case_opened",
        "approved",
        "ship_back_reminder_sent",
        "ship_back_reminder_sent",
        "abandoned",
    ]
    reminders = await pool.fetchval(
        "SELECT count(*) FROM notifications WHERE case_id = $1 AND template = $2",
        request.case_id,
        Template.SHIP_BACK_REMINDER.value,
    )
    assert reminders == 2


async def test_passed_inspection_refunds_exactly_once(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    payments: SandboxPaymentProvider,
) -> None:  # R13, R21
    request = a_request(paid_minor=12_345)
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await handle.signal(ReturnCase.shipped_back, shipped())
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert result.refunded_total.amount_minor == 12_345
    assert len(payments.calls) == 1
    rows = await pool.fetch(
        "SELECT amount_minor, status FROM money_movements WHERE case_id = $1", request.case_id
    )
    assert [(r["amount_minor"], r["status"]) for r in rows] == [(12_345, "succeeded")]
    assert result.inspection is not None
    assert result.inspection.disposition is Disposition.RESTOCK  # R27


async def test_duplicate_scans_change_nothing(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    payments: SandboxPaymentProvider,
) -> None:  # R26, R21
    request = a_request()
    dock = scan(ScanEvent.PARCEL_RECEIVED, scan_id="dock-1")
    graded = scan(ScanEvent.INSPECTED, scan_id="qc-1", grade=Grade.RESELLABLE)
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        for message in (dock, dock, graded, graded, dock):
            await handle.signal(ReturnCase.warehouse_scan, message)
        result = await handle.result()
    actions = [e["action"] for e in await events(pool, request.case_id)]
    assert actions == [
        "case_opened",
        "approved",
        "parcel_received",
        "inspection_passed",
        "refund_issued",
    ]
    assert list(result.seen_messages) == ["dock-1", "qc-1"]
    assert len(payments.calls) == 1


async def test_failed_inspection_rejects_with_reason_and_refunds_nothing(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    notifier: RecordingNotifier,
    payments: SandboxPaymentProvider,
) -> None:  # R5, R20, R27
    request = a_request()
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.DAMAGED)
        )
        result = await handle.result()
    assert result.status is CaseStatus.REJECTED
    assert result.decision_reason is not None
    assert "damaged" in result.decision_reason
    assert payments.calls == []
    *_, failed_step, window_opened, window_closed = await events(pool, request.case_id)
    assert (failed_step["action"], failed_step["rule_id"]) == ("inspection_failed", "R20")
    assert failed_step["details"]["disposition"] == Disposition.RETURN_TO_CUSTOMER.value
    # R19: then the dispute window, opened and passed undisputed.
    assert [window_opened["action"], window_closed["action"]] == [
        LedgerAction.DISPUTE_WINDOW_OPENED, LedgerAction.DISPUTE_WINDOW_CLOSED
    ]  # fmt: skip
    failed = [m for m in notifier.delivered if m.template is Template.INSPECTION_FAILED]
    assert failed[0].params["reason"] == result.decision_reason


async def test_inspection_before_dock_scan_counts_as_receipt(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:  # R26
    request = a_request()
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await handle.signal(
            ReturnCase.warehouse_scan,
            scan(ScanEvent.INSPECTED, scan_id="qc-early", grade=Grade.RESELLABLE),
        )
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED, scan_id="dock-late")
        )
        result = await handle.result()
    assert result.status is CaseStatus.REFUNDED
    assert result.received_scan_id == "qc-early"
    ledger = await events(pool, request.case_id)
    applied = [e["action"] for e in ledger if e["action"] != LedgerAction.MESSAGE_IGNORED]
    assert applied[2:] == ["parcel_received", "inspection_passed", "refund_issued"]
    # The late dock scan is not applied, but it is not dropped either.
    ignored = [e["reason"] for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    assert len(ignored) == 1
    assert "dock-late" in ignored[0]


async def test_second_inspection_with_another_scan_id_is_recorded_not_applied(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R26
    request = a_request()
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, request)
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.DAMAGED)
        )
        await handle.signal(
            ReturnCase.warehouse_scan,
            scan(ScanEvent.INSPECTED, scan_id="qc-regrade", grade=Grade.RESELLABLE),
        )
        result = await handle.result()
    assert result.status is CaseStatus.REJECTED
    ledger = await events(pool, request.case_id)
    ignored = [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    assert len(ignored) == 1
    assert "qc-regrade" in ignored[0]["reason"]


async def test_continue_as_new_carries_the_whole_case(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
    payments: SandboxPaymentProvider,
) -> None:  # long-lived cases; R21, R23 across runs
    env = time_skipping_env
    request = a_request()
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, request, history_events_before_continue=10)
        await state_when(handle, lambda s: s.status is CaseStatus.AWAITING_SHIP_BACK)
        await env.sleep(timedelta(days=3, hours=1))
        await state_when(handle, lambda s: len(s.reminders_sent) == 1)
        await handle.signal(ReturnCase.shipped_back, shipped())
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        first_run = await handle.describe()
        result = await handle.result()
        first_history = await env.client.get_workflow_handle(
            request.case_id, run_id=first_run.run_id
        ).fetch_history()
    assert first_history.events[-1].HasField(
        "workflow_execution_continued_as_new_event_attributes"
    ), "the case should have continued as new"
    assert result.status is CaseStatus.REFUNDED
    assert len(result.reminders_sent) == 1
    assert len(payments.calls) == 1
    seqs = [e["seq"] for e in await events(pool, request.case_id)]
    assert seqs == list(range(1, len(seqs) + 1))
