"""A workflow id read off the id alone (domain/workflow_ids.py): the kind it names, the
case it belongs to, and the ids of a case's children."""

from __future__ import annotations

import pytest

from domain.case import CaseKind
from domain.workflow_ids import (
    WorkflowKind,
    case_kind_of,
    child_workflow_id,
    parse_workflow_id,
)


@pytest.mark.parametrize(
    ("workflow_id", "kind", "case_id"),
    [
        ("return-A-1-1-r1", WorkflowKind.RETURN, "return-A-1-1-r1"),
        ("exchange-A-1-r1", WorkflowKind.EXCHANGE, "exchange-A-1-r1"),
        ("damage_claim-A-1-r1", WorkflowKind.DAMAGE_CLAIM, "damage_claim-A-1-r1"),
        ("survey-return-A-1-r1", WorkflowKind.SURVEY, "return-A-1-r1"),
        ("claim-damage_claim-A-1-r1", WorkflowKind.CARRIER_CLAIM, "damage_claim-A-1-r1"),
        ("batch-alarm", WorkflowKind.BATCH_ALARM, None),
        ("batch-alarm-2026-12-07T05:00:00Z", WorkflowKind.BATCH_ALARM, None),
    ],
)
def test_an_id_names_its_kind_and_its_case(
    workflow_id: str, kind: WorkflowKind, case_id: str | None
) -> None:
    parsed = parse_workflow_id(workflow_id)
    assert parsed is not None
    assert (parsed.kind, parsed.case_id) == (kind, case_id)


def test_only_a_case_id_names_a_kind_of_case() -> None:
    assert case_kind_of("damage_claim-A-1-r1") is CaseKind.DAMAGE_CLAIM
    assert case_kind_of("claim-damage_claim-A-1-r1") is None
    assert case_kind_of("survey-return-A-1-r1") is None
    assert parse_workflow_id("refund-A-1-r1") is None
    assert parse_workflow_id("return") is None


def test_a_child_id_is_its_kind_then_its_case() -> None:
    assert child_workflow_id(WorkflowKind.SURVEY, "return-A-1-r1") == "survey-return-A-1-r1"
    carrier_claim = child_workflow_id(WorkflowKind.CARRIER_CLAIM, "damage_claim-A-1-r1")
    assert parse_workflow_id(carrier_claim) == parse_workflow_id("claim-damage_claim-A-1-r1")
    with pytest.raises(ValueError, match="no case's child"):
        child_workflow_id(WorkflowKind.RETURN, "return-A-1-r1")
