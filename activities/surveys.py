"""R25: survey answers into PostgreSQL (one row per case, written once)."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from domain.survey import SurveyResult


class SurveyActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="record_survey")
    async def record(self, result: SurveyResult) -> None:
        answers = result.answers
        await self._pool.execute(
            """INSERT INTO surveys (case_id, sent_at, answered_at, expired_at, attitude,
                                    expertise, timeliness, promise_kept, comment)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (case_id) DO NOTHING""",
            result.case_id,
            result.sent_at,
            result.answered_at,
            result.expired_at,
            answers.attitude.value if answers else None,
            answers.expertise.value if answers else None,
            answers.timeliness.value if answers else None,
            answers.promise_kept.value if answers else None,
            answers.comment if answers else None,
        )
