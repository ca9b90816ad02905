"""Recorded histories replay against the current code: a change that would break a
running case fails here, not in production."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from domain.case import ScanEvent
from tests.conftest import a_request
from tests.helpers import local_activities, open_case, scan, state_when
from worker import STRICT_WORKFLOW_RUNNER, WORKFLOW_RUNNER, WORKFLOWS
from workflows.case_workflow import SLA_TIMERS_PATCH
from workflows.exchange_case import EXCHANGE_POSTAGE_PATCH
from workflows.return_case import ReturnCase
from workflows.steps.casebook import LOCAL_STEPS_PATCH
from workflows.steps.payments import REFUND_WITHIN_LIMIT_PATCH

_HERE = Path(__file__).parent / "histories"
# A history does not carry its workflow id, and the cases derive ids (children's) from it.
WORKFLOW_IDS: dict[str, str] = json.loads((_HERE / "workflow_ids.json").read_text())
HISTORIES = {name: (_HERE / f"{name}.json").read_text() for name in WORKFLOW_IDS}


def test_every_recorded_history_file_is_listed() -> None:
    assert {p.stem for p in _HERE.glob("*.json")} - {"workflow_ids"} == set(WORKFLOW_IDS)


def test_every_case_kind_has_recorded_histories() -> None:
    assert set(HISTORIES) >= {
        "return_refunded",
        "return_rejected",
        "return_refused",
        "return_abandoned",
        "exchange_dearer_replacement",
        "damage_claim_lost_replaced",
        "carrier_claim_90_days",
        "return_disputed_ruled_for_customer",
    }


@pytest.mark.parametrize(
    "runner", [WORKFLOW_RUNNER, STRICT_WORKFLOW_RUNNER], ids=["worker", "strict-sandbox"]
)
@pytest.mark.parametrize("name", sorted(HISTORIES))
async def test_recorded_history_replays_on_current_code(
    name: str, runner: SandboxedWorkflowRunner, data_converter: DataConverter
) -> None:
    # The project's converter with its codec: recorded before it, in plaintext, and still
    # replaying (plaintext passes through).
    history = WorkflowHistory.from_json(WORKFLOW_IDS[name], HISTORIES[name])
    replayer = Replayer(
        workflows=WORKFLOWS,
        workflow_runner=runner,
        data_converter=data_converter,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


def _patch_markers(history: WorkflowHistory) -> list[bytes]:
    return [
        payload.data
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        for payload in event.marker_recorded_event_attributes.details["patch-data"].payloads
    ]


async def test_cases_from_before_the_sla_timers_replay_without_them(
    data_converter: DataConverter,
) -> None:
    # The workflow.patched example (README "Changing a workflow"): this history predates
    # the R13/R14 timers, carries no marker, and replays because old runs skip them.
    history = WorkflowHistory.from_json(
        WORKFLOW_IDS["return_refunded"], HISTORIES["return_refunded"]
    )
    assert _patch_markers(history) == []
    result = await Replayer(
        workflows=WORKFLOWS, workflow_runner=WORKFLOW_RUNNER, data_converter=data_converter
    ).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None


async def test_new_cases_record_the_sla_timer_patch(
    time_skipping_env: WorkflowEnvironment, running_worker: Any, task_queue: str
) -> None:  # R13, R14 on new cases
    async with running_worker(time_skipping_env.client):
        handle = await open_case(time_skipping_env, task_queue, a_request())
        await handle.signal(ReturnCase.warehouse_scan, scan(ScanEvent.PARCEL_RECEIVED))
        await state_when(handle, lambda s: s.inspection_deadline is not None)
        await time_skipping_env.sleep(timedelta(hours=49))
        await state_when(handle, lambda s: bool(s.sla_breaches))
        history = await handle.fetch_history()
    assert any(SLA_TIMERS_PATCH.encode() in marker for marker in _patch_markers(history))


def _step_activities(history: WorkflowHistory) -> tuple[list[str], list[str]]:
    """Ledger and message steps as (regular activities scheduled, local activity markers)."""
    regular = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    local = [marker["activity_type"] for marker in local_activities(history)]
    steps = {"record_case_step", "notify_customer"}
    return [a for a in regular if a in steps], [a for a in local if a in steps]


def test_ledger_steps_became_local_activities_only_for_runs_that_recorded_the_patch() -> None:
    # The second workflow.patched example: runs from before keep their regular activities.
    before, after = (
        WorkflowHistory.from_json(WORKFLOW_IDS[name], HISTORIES[name])
        for name in ("return_refunded", "return_refunded_local_steps")
    )
    regular, local = _step_activities(before)
    assert regular
    assert local == []
    assert not any(LOCAL_STEPS_PATCH.encode() in m for m in _patch_markers(before))
    regular, local = _step_activities(after)
    assert regular == []
    assert local
    assert any(LOCAL_STEPS_PATCH.encode() in m for m in _patch_markers(after))


def _refunded_minor(history: WorkflowHistory) -> list[int]:
    """The amounts of the refunds a run asked the payment activity for."""
    return [
        json.loads(event.activity_task_scheduled_event_attributes.input.payloads[0].data)["amount"][
            "amount_minor"
        ]
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name == "issue_refund"
    ]


def test_an_exchange_pays_back_the_return_postage_only_in_runs_that_recorded_the_patch() -> None:
    # R6, R7: the same wrong-item exchange with postage, recorded before and after; the
    # run from before replays on the current code (test above) without paying it back.
    before, after = (
        WorkflowHistory.from_json(WORKFLOW_IDS[name], HISTORIES[name])
        for name in ("exchange_wrong_item_before_postage", "exchange_wrong_item_postage_paid")
    )
    assert not any(EXCHANGE_POSTAGE_PATCH.encode() in m for m in _patch_markers(before))
    assert _refunded_minor(before) == []
    assert any(EXCHANGE_POSTAGE_PATCH.encode() in m for m in _patch_markers(after))
    assert _refunded_minor(after) == [690]


def test_refunds_are_capped_at_the_limit_only_in_runs_that_recorded_the_patch() -> None:
    # R21: a run from before the patch keeps paying as it did; a new run caps the second of
    # two offers accepted together at what is left of the price (59.90 - 40.00), and the
    # merchant-fault refund after inspection is the return postage alone (R6).
    before, after = (
        WorkflowHistory.from_json(WORKFLOW_IDS[name], HISTORIES[name])
        for name in ("return_quality_defect_auto_approved", "return_two_offers_capped")
    )
    assert not any(REFUND_WITHIN_LIMIT_PATCH.encode() in m for m in _patch_markers(before))
    assert any(REFUND_WITHIN_LIMIT_PATCH.encode() in m for m in _patch_markers(after))
    assert _refunded_minor(after) == [4_000, 1_990, 690]
