"""Recorded histories replay against the current code: a change that would break a
running case fails here, not in production."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker import WORKFLOW_RUNNER, WORKFLOWS

HISTORIES = {
    path.stem: path.read_text() for path in (Path(__file__).parent / "histories").glob("*.json")
}


def test_every_case_kind_has_recorded_histories() -> None:
    assert set(HISTORIES) >= {
        "return_refunded",
        "return_rejected",
        "return_refused",
        "return_abandoned",
    }


@pytest.mark.parametrize("name", sorted(HISTORIES))
async def test_recorded_history_replays_on_current_code(name: str) -> None:
    history = WorkflowHistory.from_json(name, HISTORIES[name])
    replayer = Replayer(
        workflows=WORKFLOWS,
        workflow_runner=WORKFLOW_RUNNER,
        data_converter=pydantic_data_converter,
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
