"""Recorded histories replay against the current code: a change that would break a
running case fails here, not in production."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from tests.helpers import local_activities
from worker import STRICT_WORKFLOW_RUNNER, WORKFLOW_RUNNER, WORKFLOWS
from workflows.case_desk import DISPUTE_WINDOW_IN_THE_VIEW

_HERE = Path(__file__).parent.parent / "histories"
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
        "return_racing_decisions_scans_and_offer",
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


def _history(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(WORKFLOW_IDS[name], HISTORIES[name])


def _patch_markers(history: WorkflowHistory) -> list[bytes]:
    return [
        payload.data
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        and "patch-data" in event.marker_recorded_event_attributes.details
        for payload in event.marker_recorded_event_attributes.details["patch-data"].payloads
    ]


# Each patch since the baseline (docs/versioning.md) and the histories of its new path.
PATCHED_HISTORIES = {
    DISPUTE_WINDOW_IN_THE_VIEW: {
        "return_rejected_dispute_window_recorded",
        "return_disputed_dispute_window_recorded",
        # Recorded after the patch (issue 18): every run since asks it at its start.
        "return_refund_declined_then_retried",
    },
}


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_the_baseline_histories_carry_no_patch_marker_and_later_ones_their_patch(
    name: str,
) -> None:
    # docs/versioning.md: the product's first release is the baseline, with no patch; a
    # change from here on ships behind a patch, asked once at the start of a run.
    patches = [patch for patch, names in PATCHED_HISTORIES.items() if name in names]
    assert [json.loads(marker)["id"] for marker in _patch_markers(_history(name))] == patches


def test_a_rejection_recorded_before_the_dispute_window_patch_replays_without_its_steps() -> None:
    # R19: the old path publishes the view only; the new one records the window opening
    # and passing, so the read model and NextDeadline say it (issue 17).
    def window_steps(name: str) -> list[str]:
        summaries = [
            json.loads(event.user_metadata.summary.data)
            for event in _history(name).events
            if event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        ]
        return [summary for summary in summaries if "dispute_window" in summary]

    assert window_steps("return_rejected") == []
    assert window_steps("return_rejected_dispute_window_recorded") == [
        "ledger #5: dispute_window_opened (R19)",
        "ledger #6: dispute_window_closed (R19)",
    ]
    assert window_steps("return_disputed_dispute_window_recorded") == [
        "ledger #5: dispute_window_opened (R19)"
    ]


def test_ledger_steps_and_messages_are_local_activities() -> None:
    regular = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in _history("return_refunded").events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    local = [marker["activity_type"] for marker in local_activities(_history("return_refunded"))]
    assert {"record_case_step", "notify_customer"} <= set(local)
    assert not {"record_case_step", "notify_customer"} & set(regular)


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


def test_a_wrong_item_exchange_pays_back_the_return_postage() -> None:  # R6, R7
    assert _refunded_minor(_history("exchange_wrong_item")) == [690]


def test_two_offers_accepted_together_are_capped_at_the_limit() -> None:  # R21
    # The second of two offers accepted together is capped at what is left of the price
    # (59.90 - 40.00), and the merchant-fault refund after inspection is the return
    # postage alone (R6).
    assert _refunded_minor(_history("return_two_offers_capped")) == [4_000, 1_990, 690]


def test_the_racing_history_paid_once_for_the_offer_and_once_for_the_return() -> None:
    # R21: two approvals, two passing inspections and an offer at once: 15.00 of goodwill,
    # then the rest of the price; the second inspection changes nothing (R26).
    assert _refunded_minor(_history("return_racing_decisions_scans_and_offer")) == [1_500, 4_490]


def test_a_declined_refund_is_asked_again_only_after_a_persons_retry() -> None:  # R21
    history = _history("return_refund_declined_then_retried")
    kinds = [event.WhichOneof("attributes") for event in history.events]
    failed = kinds.index("activity_task_failed_event_attributes")
    accepted = kinds.index("workflow_execution_update_accepted_event_attributes")
    scheduled = [
        i
        for i, event in enumerate(history.events)
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name == "issue_refund"
    ]
    # The same key twice: once declined, once after the supervisor's retry.
    assert _refunded_minor(history) == [5_990, 5_990]
    assert scheduled[0] < failed < accepted < scheduled[1]
    assert kinds.count("activity_task_failed_event_attributes") == 1
