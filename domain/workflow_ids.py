"""What a workflow id names, read off the id alone: the one place ids are parsed.

Every workflow in the namespace is named by a business key (R2), so its id says what it
is: a case is `<case kind>-<order>-<line>-<request>` (`OpenCaseRequest.case_id`), a
case's children (its satisfaction survey, its carrier claim) are `<child kind>-<case id>`,
and the batch alarm's schedule and its runs start `batch-alarm`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from domain.case import CaseKind

# A case id as the ways in take it before looking it up: `<kind>-<order>-<line>-<request>`,
# each part a business key (R2).
CASE_ID_PATTERN = r"^[a-z_]+-[A-Za-z0-9][A-Za-z0-9_.-]*$"
MIN_CASE_ID_LENGTH, MAX_CASE_ID_LENGTH = 7, 220
_CASE_ID = re.compile(CASE_ID_PATTERN)
# A case id in a body or a form (a scan's barcode, the case a kept scan is attached to).
CaseIdText = Annotated[
    str,
    Field(min_length=MIN_CASE_ID_LENGTH, max_length=MAX_CASE_ID_LENGTH, pattern=CASE_ID_PATTERN),
]


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


def has_case_id_shape(text: str) -> bool:
    """Whether `text` reads as a case id (CASE_ID_PATTERN, its lengths); whether such a
    case exists is the read model's to say."""
    return MIN_CASE_ID_LENGTH <= len(text) <= MAX_CASE_ID_LENGTH and bool(_CASE_ID.fullmatch(text))
