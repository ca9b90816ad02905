"""A case id read as its workflow's kind, for the gateway: what `domain/workflow_ids.py`
parses, turned into the gateway's errors where an id names no case."""

from __future__ import annotations

from domain.case import CaseKind
from domain.workflow_ids import WorkflowKind, case_kind_of, parse_workflow_id
from infra.case_errors import unknown_case


def case_kind(case_id: str) -> CaseKind:
    """The kind of the case `case_id` names; UnknownCaseError for any other workflow's id."""
    kind = case_kind_of(case_id)
    if kind is None:
        raise unknown_case(case_id)
    return kind


def claimed_case(workflow_id: str) -> str | None:
    """The damage claim case a carrier claim's id names; None for any other id."""
    parsed = parse_workflow_id(workflow_id)
    if parsed is None or parsed.kind is not WorkflowKind.CARRIER_CLAIM:
        return None
    return parsed.rest if case_kind_of(parsed.rest) is CaseKind.DAMAGE_CLAIM else None
