"""R24's batch alarm as an activity: judge every batch, record each new flag once (table
and event), and tell the quality team through the `Notifier`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from pydantic import BaseModel
from temporalio import activity

from activities.analytics_store import AnalyticsStore
from activities.notifications import CustomerMessage, NotificationActivities, Notifier, Template
from activities.policy_file import load_policy_file
from domain.analytics import BatchVerdict, judge_batches

QUALITY_TEAM = "quality-team"
FLAG_MESSAGE_KEY = "batch-flag:"


class BatchAlarmOutcome(BaseModel):
    judged: int
    newly_flagged: list[BatchVerdict]
    announced: int


class AnalyticsActivities:
    def __init__(self, pool: asyncpg.Pool, notifier: Notifier, policy_file: Path) -> None:
        self._store = AnalyticsStore(pool)
        self._messages = NotificationActivities(pool, notifier)
        self._policy_file = policy_file

    @activity.defn(name="run_batch_alarm")
    async def run_batch_alarm(self) -> BatchAlarmOutcome:
        """Idempotent: a flag is stored once, and a message goes out once per flag (the
        notifications outbox), also when a failed run left a flag untold."""
        # Read at each run: a threshold edited in the policy file applies to the next run.
        settings = load_policy_file(self._policy_file).batch_alarm
        verdicts = judge_batches(await self._store.batch_counts(), settings)
        new = await self._store.record_flags(verdicts)
        untold = await self._store.flags_to_announce(FLAG_MESSAGE_KEY)
        for flag in untold:
            await self._messages.notify_customer(_flag_message(flag))
        return BatchAlarmOutcome(judged=len(verdicts), newly_flagged=new, announced=len(untold))


def _flag_message(flag: BatchVerdict) -> CustomerMessage:
    return CustomerMessage(
        idempotency_key=f"{FLAG_MESSAGE_KEY}{flag.sku}:{flag.batch}",
        case_id=f"batch:{flag.sku}:{flag.batch}",
        customer_id=QUALITY_TEAM,
        template=Template.BATCH_FLAGGED,
        params={
            "sku": flag.sku,
            "batch": flag.batch,
            "returns": str(flag.returns),
            "units": str(flag.units),
            "rate": f"{flag.rate:.4f}" if flag.rate is not None else "",
            "baseline_rate": f"{flag.baseline_rate:.4f}" if flag.baseline_rate is not None else "",
            "p_value": f"{flag.p_value:.2e}" if flag.p_value is not None else "",
        },
        due_at=datetime.now(UTC),
    )
