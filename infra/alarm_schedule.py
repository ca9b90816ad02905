"""R24: the batch alarm's Temporal Schedule. Registering it is set-up work (`make run`,
`starter.py setup`, the compose set-up job), idempotent: an existing schedule is left as
it is (an operator may have paused it or changed its time in the UI). A worker only looks
for it, and warns when it is missing: the cases never wait on the analytics job."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)
from temporalio.service import RPCError, RPCStatusCode

from domain.workflow_ids import WorkflowKind
from workflows.batch_alarm import BATCH_ALARM_WORKFLOW

# Its runs' ids start so: they carry no personal data and are sealed with the master key,
# not a data key of their own (infra/security/codec.py scope_of).
BATCH_ALARM_SCHEDULE_ID = WorkflowKind.BATCH_ALARM.prefix
# 05:00 UTC: yesterday's deliveries reported, before the quality team's day in Europe.
BATCH_ALARM_HOUR_UTC = 5


def batch_alarm_schedule(task_queue: str, workflow_id: str) -> Schedule:
    return Schedule(
        # No arguments: nothing for the codec to seal when the schedule is created.
        action=ScheduleActionStartWorkflow(
            BATCH_ALARM_WORKFLOW, id=workflow_id, task_queue=task_queue
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(BATCH_ALARM_HOUR_UTC)],
                    minute=[ScheduleRange(0)],
                    second=[ScheduleRange(0)],
                )
            ]
        ),
        # A run still going when the next is due: the next is skipped, not queued.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_batch_alarm_schedule(
    client: Client, task_queue: str, *, schedule_id: str = BATCH_ALARM_SCHEDULE_ID
) -> bool:
    """Create the daily schedule unless it exists; returns whether it was created. Its
    id (and so its runs' ids) must be of the batch alarm's kind."""
    if not schedule_id.startswith(WorkflowKind.BATCH_ALARM.prefix):
        raise ValueError(f"schedule_id: must start with {WorkflowKind.BATCH_ALARM.prefix!r}")
    try:
        await client.create_schedule(
            schedule_id, batch_alarm_schedule(task_queue, workflow_id=schedule_id)
        )
    except ScheduleAlreadyRunningError:
        return False
    return True


# What a server answers when it cannot tell (no schedules, or not for this identity).
_CANNOT_TELL = {
    RPCStatusCode.UNIMPLEMENTED: "this Temporal server has no schedules",
    RPCStatusCode.PERMISSION_DENIED: "this worker's identity may not read schedules",
}


async def batch_alarm_schedule_missing(
    client: Client, *, schedule_id: str = BATCH_ALARM_SCHEDULE_ID
) -> str | None:
    """Why the batch alarm will not run on this server (the words a log line says), or
    None when its schedule is there."""
    try:
        await client.get_schedule_handle(schedule_id).describe()
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return f"schedule {schedule_id} is not registered (run `starter.py setup`)"
        if error.status in _CANNOT_TELL:
            return f"{_CANNOT_TELL[error.status]} ({error.message})"
        raise
    return None
