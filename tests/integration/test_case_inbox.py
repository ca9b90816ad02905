"""Message ids (workflows/case_inbox.py): senders choose them, so a case keeps what each
id first came with. A true repeat changes nothing and gets its first answer; another
message under a taken id is refused (`id_reused`) and recorded, never answered 200 with
nothing done, and never handed another message's answer by the server."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.case import (
    Assignment,
    CompensationOffer,
    Complaint,
    EscalationRequest,
    Reason,
    Role,
    Withdrawal,
)
from domain.ledger import LedgerAction
from domain.refusal import RefusalKind
from domain.state import CaseStatus, EscalationLevel
from tests.conftest import eur, eventually
from tests.helpers import as_role, events, under_review
from tests.integration.test_api import request_json
from workflows.case_inbox import NOT_APPLIED
from workflows.return_case import ReturnCase


def _assign(agent: str) -> Assignment:
    return Assignment(action_id="a-1", actor="sup-sam", role=Role.SUPERVISOR, agent=agent)


async def test_r23_an_escalation_under_an_assignments_id_is_refused_and_recorded(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        await handle.execute_update(ReturnCase.assign, _assign("agent-bo"))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                ReturnCase.escalate,
                EscalationRequest(action_id="a-1", actor="agent-ann", role=Role.AGENT,
                                  reason="the customer is upset"),
            )  # fmt: skip
        # A true repeat of the assignment is answered as the first time, not refused.
        repeated = await handle.execute_update(ReturnCase.assign, _assign("agent-bo"))
        after = await handle.query(ReturnCase.state)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == NOT_APPLIED
    assert list(cause.details) == [{"rule": None, "kind": RefusalKind.ID_REUSED.value}]
    assert after.escalation.level is EscalationLevel.NONE
    assert repeated.assigned_agent == after.assigned_agent == "agent-bo"
    ledger = await events(pool, handle.id)
    [ignored] = [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    assert ignored["rule_id"] is None
    assert ignored["details"]["kind"] == RefusalKind.ID_REUSED.value
    assert ignored["details"]["message"]["reason"] == "the customer is upset"
    assert [e["action"] for e in ledger].count("assigned") == 1


async def test_r18_a_complaint_under_a_taken_event_id_is_recorded_not_dropped(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:
    first = Complaint(event_id="c-1", summary="nobody answers")
    other = Complaint(event_id="c-1", summary="I want the manager", major=True)
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        await handle.signal(ReturnCase.complaint, first)
        await handle.signal(ReturnCase.complaint, first)  # a sender's retry: a repeat
        await handle.signal(ReturnCase.complaint, other)
        ledger = await eventually(
            lambda: events(pool, handle.id),
            lambda rows: any(e["action"] == LedgerAction.MESSAGE_IGNORED for e in rows),
        )
        after = await handle.query(ReturnCase.state)
    [ignored] = [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    assert ignored["details"]["kind"] == RefusalKind.ID_REUSED.value
    assert ignored["details"]["message"]["summary"] == "I want the manager"
    assert after.escalation.level is not EscalationLevel.MANAGER


async def test_r23_the_api_refuses_another_assignment_under_a_taken_action_id(
    api: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    # Same update, same action id, other fields: the server's de-duplication must not
    # answer it with the first assignment's 200.
    body = request_json(reason=Reason.QUALITY_DEFECT)
    case_id = (await api.post("/cases", json=body, headers=as_role("service"))).json()["case_id"]
    staff = as_role("supervisor", "sup-sam")
    url = f"/cases/{case_id}/assignment"
    first = await api.post(url, json={"action_id": "a-1", "agent": "agent-bo"}, headers=staff)
    again = await api.post(url, json={"action_id": "a-1", "agent": "agent-bo"}, headers=staff)
    other = await api.post(url, json={"action_id": "a-1", "agent": "agent-cy"}, headers=staff)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["assigned_agent"] == "agent-bo"
    assert other.status_code == 409
    [item] = other.json()["errors"]
    assert item["rule"] is None
    assert "a-1" in item["message"]
    read = await api.get(f"/cases/{case_id}", headers=as_role("agent"))
    assert read.json()["assigned_agent"] == "agent-bo"


async def test_r17_a_withdrawal_once_compensation_was_paid_says_money_has_moved(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str, pool: asyncpg.Pool
) -> None:
    async with running_worker(time_skipping_env.client):
        handle = await under_review(time_skipping_env, task_queue)
        await handle.execute_update(
            ReturnCase.offer_compensation,
            CompensationOffer(action_id="o-1", actor="sup-sam", role=Role.SUPERVISOR,
                              amount=eur(1_000), reason="sorry for the wait"),
        )  # fmt: skip
        await handle.signal(ReturnCase.withdraw, Withdrawal(event_id="w-1", reason="changed"))
        ledger = await eventually(
            lambda: events(pool, handle.id),
            lambda rows: any(e["action"] == LedgerAction.MESSAGE_IGNORED for e in rows),
        )
        after = await handle.query(ReturnCase.state)
    [ignored] = [e for e in ledger if e["action"] == LedgerAction.MESSAGE_IGNORED]
    assert ignored["details"]["kind"] == RefusalKind.MONEY_MOVED.value
    assert "money has already been paid" in ignored["reason"]
    assert after.status is CaseStatus.UNDER_REVIEW
