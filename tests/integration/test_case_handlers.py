"""The validators' refusals (workflows/case_handlers.py), typed for the caller: each names
its rule and kind in the Update's failure (the API's 409 takes the rule from there, never
from the words), and None only where no rule of domain.md refuses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.case import (
    ArbitrationRuling,
    Assignment,
    CallRequest,
    CompensationOffer,
    Deadline,
    DeadlineExtension,
    EscalationRequest,
    Reason,
    Role,
)
from domain.money import Money
from domain.refusal import RefusalKind
from infra.case_errors import refused_decision
from tests.helpers import as_role, under_review
from tests.integration.test_api import request_json
from tests.integration.test_disputes_and_surveys import rejected_at_inspection
from workflows.case_handlers import REFUSED
from workflows.return_case import ReturnCase

_K = RefusalKind


def _refusal(error: WorkflowUpdateFailedError) -> tuple[str | None, str]:
    cause = error.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == REFUSED
    [details] = cause.details
    assert refused_decision(error).rule == details["rule"]
    return details["rule"], details["kind"]


_ASSIGN = Assignment(action_id="a-1", actor="sup-sam", role=Role.SUPERVISOR, agent="agent-bo")
_CALL = CallRequest(action_id="c-1", actor="agent-ann", role=Role.AGENT, purpose="explain")
_ESCALATE = EscalationRequest(action_id="e-1", actor="agent-ann", role=Role.AGENT, reason="upset")
_RULING = ArbitrationRuling(action_id="r-1", actor="arb-1", role=Role.ARBITER,
                            favour_customer=False, reason="the photos show wear")  # fmt: skip


@pytest.mark.parametrize(
    ("update", "action", "typed"),
    [
        (ReturnCase.assign, _ASSIGN, (None, _K.CASE_CLOSED)),
        (ReturnCase.request_call, _CALL, ("R16", _K.CASE_CLOSED)),
        (ReturnCase.escalate, _ESCALATE, ("R18", _K.CASE_CLOSED)),
        (ReturnCase.apply_ruling, _RULING, ("R19", _K.CASE_CLOSED)),
    ],
    ids=["assign", "request_call", "escalate", "apply_ruling"],
)
async def test_r19_r16_r18_a_decision_on_a_closed_case_is_refused_with_its_rule_typed(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str,
    update: Any, action: Any, typed: tuple[str | None, RefusalKind],
) -> None:  # fmt: skip
    async with running_worker(time_skipping_env.client):
        handle = await rejected_at_inspection(time_skipping_env, task_queue)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(update, action)
    assert _refusal(refused.value) == (typed[0], typed[1].value)


@pytest.mark.parametrize(
    ("update", "action", "typed"),
    [
        (
            ReturnCase.extend_deadline,
            DeadlineExtension(action_id="x-1", actor="agent-ann", role=Role.AGENT,
                              deadline=Deadline.SHIP_BACK, extend_by=timedelta(days=2),
                              reason="the customer is travelling"),
            (None, _K.DEADLINE_NOT_RUNNING),
        ),
        (
            ReturnCase.apply_ruling,
            ArbitrationRuling(action_id="r-1", actor="arb-1", role=Role.ARBITER,
                              favour_customer=True, reason="fair"),
            ("R19", _K.NOT_NOW),
        ),
        (
            ReturnCase.offer_compensation,
            CompensationOffer(action_id="o-1", actor="agent-ann", role=Role.AGENT,
                              amount=Money(amount_minor=500, currency="USD"), reason="sorry"),
            ("R17", _K.WRONG_CURRENCY),
        ),
    ],
    ids=["deadline_not_running", "ruling_not_in_arbitration", "wrong_currency"],
)  # fmt: skip
async def test_r17_r19_an_open_cases_validator_refusal_names_its_rule_and_kind(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str,
    update: Any, action: Any, typed: tuple[str | None, RefusalKind],
) -> None:  # fmt: skip
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(update, action)
    assert _refusal(refused.value) == (typed[0], typed[1].value)


async def test_r17_the_409_takes_its_rule_from_the_refusal_not_its_words(
    api: httpx.AsyncClient,
) -> None:
    body = request_json(reason=Reason.QUALITY_DEFECT)
    case_id = (await api.post("/cases", json=body, headers=as_role("service"))).json()["case_id"]
    offer = {"action_id": "o-1", "amount": {"amount_minor": 500, "currency": "USD"},
             "reason": "sorry for the wait"}  # fmt: skip
    response = await api.post(f"/cases/{case_id}/compensation", json=offer,
                              headers=as_role("agent", "agent-ann"))  # fmt: skip
    assert response.status_code == 409
    # The words name no rule; the refusal's type does.
    [item] = response.json()["errors"]
    assert (item["field"], item["rule"]) == ("amount.currency", "R17")
    assert "order currency" in item["message"]
