"""R24: the batch alarm, started daily by a Temporal Schedule (infra/alarm_schedule.py).
One activity does the work; the workflow gives it retries, a history per run and a place
in the UI's Schedules page."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from activities.analytics import AnalyticsActivities, BatchAlarmOutcome

# Started by name (no typed handle): passing BatchAlarm.run to the client makes mypy
# resolve its typed overloads wrongly for every other workflow in the same run.
BATCH_ALARM_WORKFLOW = "BatchAlarm"


@workflow.defn(name=BATCH_ALARM_WORKFLOW)
class BatchAlarm:
    @workflow.run
    async def run(self) -> BatchAlarmOutcome:
        return await workflow.execute_activity_method(
            AnalyticsActivities.run_batch_alarm,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
        )
