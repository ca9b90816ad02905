"""R24's batch alarm as a Temporal Schedule on the dev server, with the real worker and
PostgreSQL: registered idempotently, each flag recorded once (table and event) and told
to the quality team once through the Notifier."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from activities.analytics import (
    FLAG_MESSAGE_KEY,
    QUALITY_TEAM,
    AnalyticsActivities,
    BatchAlarmOutcome,
)
from activities.notifications import RecordingNotifier, Template
from domain.ledger import ACTIONS, Ledger, LedgerAction, checked_details
from infra.alarm_schedule import BATCH_ALARM_HOUR_UTC, ensure_batch_alarm_schedule
from infra.settings import DEFAULT_POLICY_FILE
from tests.conftest import eventually
from tests.integration.test_analytics_reports import a_case, delivered
from workflows.batch_alarm import BATCH_ALARM_WORKFLOW


async def a_sku_with_a_bad_batch(pool: asyncpg.Pool) -> str:
    """Five batches returning 3%, one returning 10% (flagged), and a tiny batch returning
    two in three (below min_units: not judged)."""
    sku = f"SKU-{uuid.uuid4().hex[:8]}"
    for number in range(5):
        await delivered(pool, sku, f"OK{number}", 2000)
        await a_case(pool, sku, batch=f"OK{number}", quantity=60)
    await delivered(pool, sku, "BAD", 1000)
    await a_case(pool, sku, batch="BAD", quantity=100)
    await delivered(pool, sku, "TINY", 150)
    await a_case(pool, sku, batch="TINY", quantity=100)
    return sku


async def flags_of(pool: asyncpg.Pool, sku: str) -> Sequence[asyncpg.Record]:
    return await pool.fetch("SELECT batch FROM batch_flags WHERE sku = $1", sku)


def told(notifier: RecordingNotifier, sku: str) -> list[str]:
    return [m.params["batch"] for m in notifier.delivered
            if m.template is Template.BATCH_FLAGGED and m.params["sku"] == sku]  # fmt: skip


async def test_r24_the_daily_schedule_flags_a_bad_batch_once_and_tells_the_quality_team_once(
    dev_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    task_queue: str,
    running_worker: Any,
    notifier: RecordingNotifier,
) -> None:
    sku = await a_sku_with_a_bad_batch(pool)
    client = dev_env.client
    schedule_id = f"batch-alarm-{task_queue}"
    created = await ensure_batch_alarm_schedule(client, task_queue, schedule_id=schedule_id)
    again = await ensure_batch_alarm_schedule(client, task_queue, schedule_id=schedule_id)
    assert (created, again) == (True, False)
    schedule = client.get_schedule_handle(schedule_id)
    try:
        described = await schedule.describe()
        [calendar] = described.schedule.spec.calendars
        assert [r.start for r in calendar.hour] == [BATCH_ALARM_HOUR_UTC]  # daily, 05:00 UTC
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert action.workflow == "BatchAlarm"

        async with running_worker(client):
            await schedule.trigger()
            await eventually(lambda: flags_of(pool, sku), lambda found: len(found) == 1)
            await eventually(lambda: _async(told(notifier, sku)), lambda batches: batches != [])
            # A second run, as tomorrow's: nothing new, nobody told again.
            outcome = await client.execute_workflow(
                BATCH_ALARM_WORKFLOW, id=f"batch-alarm-test-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue, result_type=BatchAlarmOutcome,
            )  # fmt: skip
    finally:
        await schedule.delete()

    assert [v.batch for v in outcome.newly_flagged if v.sku == sku] == []
    # No personal data: no data key of its own (infra/security/codec.py), so a worker with another
    # key ring still registers the schedule and runs it.
    scopes = await pool.fetchval("SELECT count(*) FROM data_keys WHERE scope LIKE 'batch-alarm%'")
    assert scopes == 0
    assert [r["batch"] for r in await flags_of(pool, sku)] == ["BAD"]
    events = await pool.fetch("SELECT action, batch, details FROM batch_events WHERE sku = $1", sku)
    assert [(e["action"], e["batch"]) for e in events] == [("batch_flagged", "BAD")]
    assert events[0]["details"]["returns"] == 100
    # R23: the alarm's ledger speaks the one vocabulary (docs/ledger.md).
    assert ACTIONS[LedgerAction(events[0]["action"])].ledger is Ledger.BATCH
    details = dict(events[0]["details"])
    assert checked_details(LedgerAction.BATCH_FLAGGED, details) == details
    assert told(notifier, sku) == ["BAD"]
    [message] = [m for m in notifier.delivered if m.params.get("sku") == sku]
    assert message.customer_id == QUALITY_TEAM
    assert message.params["rate"] == "0.1000"
    # The SKU's other batches pooled, the tiny one too: (5 x 60 + 100) / (5 x 2000 + 150).
    assert message.params["baseline_rate"] == f"{400 / 10_150:.4f}"


async def _async(value: list[str]) -> list[str]:
    return value


async def test_r24_a_flag_recorded_by_a_run_that_failed_before_telling_is_told_by_the_next(
    pool: asyncpg.Pool,
) -> None:
    sku = await a_sku_with_a_bad_batch(pool)
    # As if the last run stored the flag and stopped before its message went out.
    await pool.execute(
        """INSERT INTO batch_flags (sku, batch, returns, units, baseline_rate, p_value)
           VALUES ($1, 'BAD', 100, 1000, 0.03, 1e-20)""",
        sku,
    )
    notifier = RecordingNotifier()
    alarm = AnalyticsActivities(pool, notifier, DEFAULT_POLICY_FILE)
    first = await alarm.run_batch_alarm()
    second = await alarm.run_batch_alarm()
    assert [v.batch for v in first.newly_flagged if v.sku == sku] == []  # stored already
    assert told(notifier, sku) == ["BAD"]  # told once, by the first run
    assert [v for v in second.newly_flagged if v.sku == sku] == []
    assert await pool.fetchval(
        "SELECT sent_at IS NOT NULL FROM notifications WHERE idempotency_key = $1",
        f"{FLAG_MESSAGE_KEY}{sku}:BAD",
    )
