"""What waits for a person, over HTTP: scans that matched no case (R26) and refused
input, each resolved with who and why; and internal notes on a case. Staff only:
agents, supervisors and managers work unmatched scans and write notes; refused input
(raw bodies that may hold anything, kept 30 days: docs/privacy.md) is for supervisors
and managers, who repair integrations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import Field

from api.callers import IntegratorsDesk, Staff
from api.errors import documented
from domain.case import ExplainedReason, MessageId, Strict
from domain.view import CaseNote
from domain.workflow_ids import CaseIdText
from infra.gateway import CaseGateway
from infra.kept_for_review import (
    InvalidKeptCursorError,
    KeptPage,
    RefusedInput,
    Resolver,
    UnmatchedScan,
)
from infra.path_params import CaseId, ScanId
from infra.security.identity import Caller

NoteText = Annotated[str, Field(min_length=1, max_length=4000)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=512)]


class AttachmentBody(Strict):
    case_id: CaseIdText
    reason: ExplainedReason


class ResolutionBody(Strict):
    reason: ExplainedReason


class NoteBody(Strict):
    # Made by the form or client once per note: sent twice, the note is written once.
    note_id: MessageId
    body: NoteText


def _resolver(caller: Caller, reason: str) -> Resolver:
    return Resolver(actor=caller.actor, role=caller.role, reason=reason)


def _refused_cursor(error: InvalidKeptCursorError) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", "cursor"), "msg": str(error)}]
    )


def review_router(gateway: CaseGateway, route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class, tags=["kept for a person"])

    @router.get("/unmatched-scans", responses=documented(422))
    async def unmatched_scans(
        _: Staff, resolved: bool = False, cursor: Cursor = None, limit: Limit = 50
    ) -> KeptPage[UnmatchedScan]:
        """R26: scans whose barcode matched no open case, oldest first; `resolved=true`
        lists every one, resolved or not."""
        try:
            return await gateway.kept.unmatched_scans(
                unresolved_only=not resolved, after=cursor, limit=limit
            )
        except InvalidKeptCursorError as error:
            raise _refused_cursor(error) from error

    @router.post("/unmatched-scans/{scan_id}/attachment", responses=documented(404, 409))
    async def attach_scan(scan_id: ScanId, body: AttachmentBody, caller: Staff) -> UnmatchedScan:
        """R26: the scan delivered to the case a person says it belongs to, once (its own
        scan id: sent again, the case changes nothing), and recorded with who, when and
        why. 404 for an unknown scan, or a case that cannot take it (it stays kept); 409
        if it was already resolved otherwise."""
        return await gateway.attach_scan(scan_id, body.case_id, _resolver(caller, body.reason))

    @router.post("/unmatched-scans/{scan_id}/dismissal", responses=documented(404, 409))
    async def dismiss_scan(scan_id: ScanId, body: ResolutionBody, caller: Staff) -> UnmatchedScan:
        """The scan set aside with a reason (a test scan, a parcel that is no return)."""
        return await gateway.kept.dismiss_scan(scan_id, _resolver(caller, body.reason))

    @router.get("/refused-inputs", responses=documented(422))
    async def refused_inputs(
        _: IntegratorsDesk,
        handled: bool = False,
        cursor: Cursor = None,
        limit: Limit = 50,
    ) -> KeptPage[RefusedInput]:
        """Input refused at an edge, with why, oldest first; `handled=true` lists all."""
        try:
            return await gateway.kept.refused_inputs(
                unhandled_only=not handled, after=cursor, limit=limit
            )
        except InvalidKeptCursorError as error:
            raise _refused_cursor(error) from error

    @router.post("/refused-inputs/{input_id}/handling", responses=documented(404, 409))
    async def mark_handled(
        input_id: Annotated[int, Path(ge=1)],
        body: ResolutionBody,
        caller: IntegratorsDesk,
    ) -> RefusedInput:
        """Marked handled with what was done about it."""
        return await gateway.kept.mark_handled(input_id, _resolver(caller, body.reason))

    @router.post(
        "/cases/{case_id}/notes",
        status_code=status.HTTP_201_CREATED,
        responses=documented(404, 409, 410),
    )
    async def add_note(case_id: CaseId, body: NoteBody, caller: Staff) -> CaseNote:
        """An internal note, recorded under its author beside the case's ledger (read with
        `GET /cases/{id}/ledger`); a closed case takes notes too, an erased one none (410).
        The same `note_id` again answers the note written first; other words under it are
        409."""
        return await gateway.add_note(case_id, body.note_id, body.body, caller)

    return router
