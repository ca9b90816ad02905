"""What a workflow id names, read off the id alone: the one place ids are parsed.

Every workflow in the namespace is named by a business key (R2), so its id says what it
is: a case is `<case kind>-<order>-<line>-<request>` (`OpenCaseRequest.case_id`), a
case's children (its satisfaction survey, its carrier claim) are `<child kind>-<case id>`,
and the batch alarm's schedule and its runs start `batch-alarm`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from domain.case import CaseKind


class WorkflowKind(StrEnum):
    RETURN = CaseKind.RETURN.value
    EXCHANGE = CaseKind.EXCHANGE.value
    DAMAGE_CLAIM = CaseKind.DAMAGE_CLAIM.value
    SURVEY = "survey"  # R25, a child of the case it surveys
    CARRIER_CLAIM = "claim"  # R15, a child of a damage claim case that may outlive it
    BATCH_ALARM = "batch-alarm"  # R24: no case, no personal data

    @property
    def prefix(self) -> str:
        """How ids of this kind start. The batch alarm's schedule id is the bare prefix;
        Temporal names its runs after it."""
        return self.value if self is WorkflowKind.BATCH_ALARM else f"{self.value}-"

    @property
    def case_kind(self) -> CaseKind | None:
        """The kind of case a workflow of this kind is; None for any other workflow."""
        return _CASE_KINDS.get(self.value)


_CASE_KINDS = {kind.value: kind for kind in CaseKind}
CHILD_KINDS = frozenset({WorkflowKind.SURVEY, WorkflowKind.CARRIER_CLAIM})


@dataclass(frozen=True)
class WorkflowId:
    kind: WorkflowKind
    # What follows the kind's prefix: a case's order, line and request; a child's case id.
    rest: str

    @property
    def case_id(self) -> str | None:
        """The case the workflow belongs to: a case's own id, a child's parent; None for
        the batch alarm."""
        if self.kind in CHILD_KINDS:
            return self.rest
        if self.kind.case_kind is not None:
            return f"{self.kind.prefix}{self.rest}"
        return None


def parse_workflow_id(workflow_id: str) -> WorkflowId | None:
    """None for an id no workflow of the project has."""
    for kind in WorkflowKind:
        if workflow_id.startswith(kind.prefix):
            return WorkflowId(kind, workflow_id.removeprefix(kind.prefix))
    return None


def case_kind_of(workflow_id: str) -> CaseKind | None:
    """The kind of case `workflow_id` names (a return label's barcode is one), or None for
    any other id."""
    parsed = parse_workflow_id(workflow_id)
    return parsed.kind.case_kind if parsed is not None else None


def child_workflow_id(kind: WorkflowKind, case_id: str) -> str:
    """The id of a case's survey or carrier claim."""
    if kind not in CHILD_KINDS:
        raise ValueError(f"{kind.value} is no case's child")
    return f"{kind.prefix}{case_id}"
