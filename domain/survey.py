"""R25: the satisfaction survey every closed case gets."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.case import MessageId, Strict
from domain.policy_settings import PolicySettings


class Satisfaction(StrEnum):
    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    DISSATISFIED = "dissatisfied"
    VERY_DISSATISFIED = "very_dissatisfied"


class SurveyAnswers(Strict):
    answer_id: MessageId
    attitude: Satisfaction
    expertise: Satisfaction
    timeliness: Satisfaction
    promise_kept: Satisfaction
    comment: str = Field(default="", max_length=2000)


class SurveyRequest(BaseModel):
    case_id: str
    customer_id: str
    time_zone: str
    case_outcome: str
    policy: PolicySettings


class SurveyResult(BaseModel):
    case_id: str
    sent_at: datetime
    answers: SurveyAnswers | None = None
    answered_at: datetime | None = None
    expired_at: datetime | None = None
