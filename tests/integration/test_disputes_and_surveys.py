"""After the decision: disputes to platform arbitration (R19) and the satisfaction survey
every closed case gets (R25), on the time-skipping server."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from domain.case import ArbitrationRuling, Dispute, Grade, Role, ScanEvent
from domain.money import Money
from domain.policy_settings import PolicySettings
from domain.state import CaseStatus, EscalationLevel
from domain.survey import Satisfaction, SurveyAnswers, SurveyRequest
from tests.conftest import a_request, eur, eventually
from tests.helpers import Handle, open_case, scan, settled_state_when, state_when
from workflows.case_run import CaseRun
from workflows.return_case import ReturnCase
from workflows.survey import SatisfactionSurvey


def ruling(*, favour_customer: bool, refund: Money | None = None, role: Role = Role.ARBITER
           ) -> ArbitrationRuling:  # fmt: skip
    return ArbitrationRuling(
        action_id="rule-1", actor="platform-arbiter-7", role=role,
        favour_customer=favour_customer, refund=refund, reason="photos show a factory defect",
    )  # fmt: skip


async def rejected_at_inspection(env: WorkflowEnvironment, task_queue: str) -> Handle:
    handle = await open_case(env, task_queue, a_request(paid_minor=5_000))
    await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
    await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.DAMAGED))
    await state_when(handle, lambda s: s.dispute_deadline is not None)
    return handle


async def test_a_disputed_rejection_goes_to_arbitration_and_the_ruling_is_applied(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R19, R18
    async with running_worker(time_skipping_env.client):
        handle = await rejected_at_inspection(time_skipping_env, task_queue)
        await handle.signal(
            ReturnCase.dispute, Dispute(event_id="dsp-1", reason="the damage was already there")
        )
        arbitrating = await state_when(
            handle, lambda s: s.escalation.level is not EscalationLevel.NONE
        )
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                ReturnCase.apply_ruling, ruling(favour_customer=True, role=Role.SUPERVISOR)
            )
        await handle.execute_update(
            ReturnCase.apply_ruling, ruling(favour_customer=True, refund=eur(3_000))
        )
        result = await handle.result()
    assert arbitrating.status is CaseStatus.IN_ARBITRATION
    assert arbitrating.escalation.level is EscalationLevel.SUPERVISOR
    assert "arbiter" in str(refused.value.cause)
    assert result.status is CaseStatus.REFUNDED
    assert result.refunded_total == eur(3_000)
    assert result.ruling is not None


async def test_a_ruling_for_the_merchant_keeps_the_rejection(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R19
    async with running_worker(time_skipping_env.client):
        handle = await rejected_at_inspection(time_skipping_env, task_queue)
        await handle.signal(ReturnCase.dispute, Dispute(event_id="dsp-1", reason="unfair"))
        await state_when(handle, lambda s: s.status is CaseStatus.IN_ARBITRATION)
        await handle.execute_update(ReturnCase.apply_ruling, ruling(favour_customer=False))
        result = await handle.result()
    assert result.status is CaseStatus.REJECTED
    assert result.refunds == []


async def test_without_a_dispute_the_rejection_stands_after_the_window(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R19
    async with running_worker(time_skipping_env.client):
        handle = await rejected_at_inspection(time_skipping_env, task_queue)
        result = await handle.result()
    assert result.status is CaseStatus.REJECTED
    assert result.dispute is None


async def test_a_case_continued_as_new_in_arbitration_resumes_there_and_applies_the_ruling(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R19, R18 across runs (continue-as-new)
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await open_case(
            env, task_queue, a_request(paid_minor=5_000), history_events_before_continue=10
        )
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.DAMAGED)
        )
        # Queried only between workflow tasks: the time-skipping server loses a query sent
        # as a run continues as new (tests/helpers.py, settled_state).
        rejected = await settled_state_when(handle, lambda s: s.dispute_deadline is not None)
        await handle.signal(ReturnCase.dispute, Dispute(event_id="dsp-1", reason="unfair"))
        await settled_state_when(handle, lambda s: s.status is CaseStatus.IN_ARBITRATION)
        # R18: the supervisor the dispute called stays silent; the ladder climbs in the
        # run the case continued as.
        await env.sleep(timedelta(hours=25))
        climbed = await settled_state_when(
            handle, lambda s: s.escalation.level is EscalationLevel.MANAGER
        )
        await handle.execute_update(ReturnCase.apply_ruling, ruling(favour_customer=True))
        result = await handle.result()
        latest = env.client.get_workflow_handle(result.case_id)
        last_run = await latest.fetch_history()
    started = last_run.events[0].workflow_execution_started_event_attributes
    [carried] = await env.client.data_converter.decode(started.input.payloads, [CaseRun])
    assert isinstance(carried, CaseRun)
    assert carried.carried_state is not None, "the case never continued as new"
    assert carried.carried_state.status is CaseStatus.IN_ARBITRATION
    # The window's deadline is absolute: carried, not restarted by the new run.
    assert carried.carried_state.dispute_deadline == rejected.dispute_deadline
    assert climbed.status is CaseStatus.IN_ARBITRATION
    assert result.status is CaseStatus.REFUNDED
    assert result.refunded_total == eur(5_000)


async def test_every_closed_case_gets_a_survey_and_its_answers_are_kept(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R25
    env = time_skipping_env
    async with running_worker(env.client):
        handle = await open_case(env, task_queue, a_request())
        await handle.signal(
            ReturnCase.warehouse_scan, scan(ScanEvent.INSPECTED, grade=Grade.RESELLABLE)
        )
        closed = await handle.result()
        assert closed.survey_id is not None
        survey = env.client.get_workflow_handle_for(SatisfactionSurvey.run, closed.survey_id)
        answers = SurveyAnswers(
            answer_id="ans-1", attitude=Satisfaction.VERY_SATISFIED,
            expertise=Satisfaction.SATISFIED, timeliness=Satisfaction.DISSATISFIED,
            promise_kept=Satisfaction.SATISFIED, comment="slow refund",
        )  # fmt: skip
        await eventually(lambda: survey.describe(), lambda d: d is not None)
        await survey.signal(SatisfactionSurvey.survey_answered, answers)
        result = await survey.result()
    assert result.answers == answers
    row = await pool.fetchrow("SELECT * FROM surveys WHERE case_id = $1", closed.case_id)
    assert row is not None
    assert (row["attitude"], row["timeliness"], row["expired_at"]) == (
        "very_satisfied", "dissatisfied", None,
    )  # fmt: skip


async def test_an_unanswered_survey_is_recorded_as_expired(
    time_skipping_env: WorkflowEnvironment,
    running_worker: Any,
    task_queue: str,
    pool: asyncpg.Pool,
) -> None:  # R25
    env = time_skipping_env
    case_id = f"return-SURVEY-{uuid.uuid4().hex[:8]}-1-r1"
    request = SurveyRequest(
        case_id=case_id, customer_id="cust-7", time_zone="Asia/Shanghai",
        case_outcome="refunded", policy=PolicySettings(),
    )  # fmt: skip
    async with running_worker(env.client):
        survey = await env.client.start_workflow(
            SatisfactionSurvey.run, request, id=f"survey-{case_id}", task_queue=task_queue
        )
        result = await survey.result()
    assert result.answers is None
    assert result.expired_at is not None
    assert result.expired_at - result.sent_at >= timedelta(days=7)
    row = await pool.fetchrow(
        "SELECT answered_at, expired_at FROM surveys WHERE case_id = $1", case_id
    )
    assert row is not None
    assert row["answered_at"] is None
    assert row["expired_at"] is not None
