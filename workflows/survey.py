"""SatisfactionSurvey (R25): sent when a case closes (not a sample: every case), at an
hour the customer may be messaged (R16); answers are kept, silence is recorded too.
It runs apart from the case, so a closed case does not stay open for it."""

from __future__ import annotations

from temporalio import workflow

from activities.notifications import CustomerMessage, NotificationActivities, Template
from activities.surveys import SurveyActivities
from domain.policy import next_contact_slot
from domain.survey import SurveyAnswers, SurveyRequest, SurveyResult
from workflows.steps.outside import call_outside
from workflows.steps.timers import wait_until


@workflow.defn
class SatisfactionSurvey:
    def __init__(self) -> None:
        self._answers: SurveyAnswers | None = None

    @workflow.run
    async def run(self, request: SurveyRequest) -> SurveyResult:
        sent_at = next_contact_slot(workflow.now(), request.time_zone, request.policy.message_hours)
        await call_outside(
            NotificationActivities.notify_customer,
            CustomerMessage(
                idempotency_key=f"{request.case_id}:survey",
                case_id=request.case_id,
                customer_id=request.customer_id,
                template=Template.SATISFACTION_SURVEY,
                params={"outcome": request.case_outcome},
                due_at=sent_at,
            ),
            summary="R25 send the satisfaction survey",
        )
        result = SurveyResult(case_id=request.case_id, sent_at=sent_at)
        deadline = sent_at + request.policy.survey_window
        if await wait_until(lambda: self._answers is not None, deadline, "R25 survey window"):
            result.answers = self._answers
            result.answered_at = workflow.now()
        else:
            result.expired_at = workflow.now()
        await call_outside(
            SurveyActivities.record,
            result,
            summary="R25 keep the answers" if result.answers else "R25 no answer",
        )
        return result

    @workflow.signal
    def survey_answered(self, answers: SurveyAnswers) -> None:
        if self._answers is None:  # the first answer counts; a resend changes nothing
            self._answers = answers

    @workflow.query
    def answers(self) -> SurveyAnswers | None:
        return self._answers
