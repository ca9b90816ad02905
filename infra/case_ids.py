"""What a workflow id names: a case of one kind (its return label's barcode), a carrier
claim, or neither (a survey). Surveys and carrier claims share the namespace, not the
cases' messages."""

from __future__ import annotations

from domain.case import CaseKind
from infra.case_errors import unknown_case
from workflows.carrier_claim import CLAIM_ID_PREFIX


def kind_of(case_id: str) -> CaseKind | None:
    """The case kind a case id (a return label's barcode) names, or None for any other id."""
    return next((k for k in CaseKind if case_id.startswith(f"{k.value}-")), None)


def case_kind(case_id: str) -> CaseKind:
    """The kind of the case `case_id` names; UnknownCaseError for any other workflow's id."""
    kind = kind_of(case_id)
    if kind is None:
        raise unknown_case(case_id)
    return kind


def is_carrier_claim(workflow_id: str) -> bool:
    """A carrier claim's id is `claim-` and the id of the damage claim case it serves."""
    case_id = workflow_id.removeprefix(CLAIM_ID_PREFIX)
    return case_id != workflow_id and kind_of(case_id) is CaseKind.DAMAGE_CLAIM
