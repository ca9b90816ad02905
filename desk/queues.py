"""The desk's work lists: the case queues with their counts (domain/queues.py, read by
infra/case_queues.py), narrowed by filters and a search, paged by cursor, exported as CSV
as shown, and assigned in bulk; and what is kept for a person (R26's unmatched scans,
refused input), each resolved with who and why."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from desk.forms import ACTION_ID_FIELD, BadForm, Forbidden, FormFields, new_action_id, posted, said
from desk.gate import DESK_PATH
from desk.rendering import page
from domain.case import (
    INTEGRATORS,
    STAFF_BY_AUTHORITY,
    Assignment,
    BusinessKey,
    CaseKind,
    Channel,
    ExplainedReason,
    Reason,
    Role,
)
from domain.queues import (
    CarrierName,
    CaseFilter,
    CaseRow,
    CaseSort,
    Cursor,
    InvalidCursorError,
    Queue,
    SearchText,
    Viewer,
)
from domain.state import CaseStatus
from domain.workflow_ids import CaseIdText, has_case_id_shape
from infra.case_errors import RefusedDecisionError, RefusedInputError, UnknownCaseError
from infra.case_page import CasePageReads
from infra.gateway import CaseGateway
from infra.kept_for_review import (
    AlreadyResolvedError,
    InvalidKeptCursorError,
    Item,
    KeptPage,
    Resolver,
    UnknownKeptItemError,
)
from infra.path_params import ScanId
from infra.security.identity import Caller
from workflows.case_handlers import CaseHandlers

T = TypeVar("T")
# What a bulk assignment says it did, carried to the queue's page in its query: the
# count and the first refusals (the rest are the cases still unassigned in the queue).
DONE_LENGTH = 500
_REFUSALS_SHOWN = 2
# What each list is called on screen, in the navigation's order.
QUEUE_TITLES = {
    Queue.NEEDS_DECISION: "Needs a decision",
    Queue.LATE: "Late",
    Queue.ESCALATED: "Escalated to my level",
    Queue.ASSIGNED_TO_ME: "Assigned to me",
    Queue.UNASSIGNED: "Unassigned",
    Queue.WAITING_ON_CUSTOMER: "Waiting on the customer",
}
_CSV_COLUMNS = ("case_id", "status", "kind", "reason", "channel", "order_id", "sku", "carrier",
                "waiting_for", "next_deadline", "assigned_agent", "escalation_level")  # fmt: skip


@dataclass(frozen=True)
class NavItem:
    title: str
    href: str
    count: int


class Filters(FormFields):
    """A queue's narrowing as the filter form sends it (one value per field)."""

    kind: CaseKind | None = None
    reason: Reason | None = None
    sku: BusinessKey | None = None
    carrier: CarrierName | None = None
    channel: Channel | None = None
    status: CaseStatus | None = None
    q: SearchText | None = None

    def as_filter(self) -> CaseFilter:
        return CaseFilter(
            kinds=_one(self.kind), reasons=_one(self.reason), sku=self.sku,
            carrier=self.carrier, channels=_one(self.channel), statuses=_one(self.status),
            search=self.q,
        )  # fmt: skip


def _one(value: T | None) -> frozenset[T]:
    return frozenset() if value is None else frozenset({value})


class BulkAssignForm(FormFields):
    agent: BusinessKey


class ResolutionForm(FormFields):
    reason: ExplainedReason


class AttachForm(ResolutionForm):
    case_id: CaseIdText


def _viewer(caller: Caller) -> Viewer:
    return Viewer(actor=caller.actor, role=caller.role)


async def navigation(gateway: CaseGateway, reads: CasePageReads, caller: Caller) -> list[NavItem]:
    """Every queue with its count for this person, then what is kept for a person."""
    counts, kept = await asyncio.gather(
        gateway.queues.counts(_viewer(caller), datetime.now(UTC)), reads.kept_counts()
    )
    items = [NavItem(title, f"{DESK_PATH}/queues/{queue.value}", counts.counts[queue])
             for queue, title in QUEUE_TITLES.items()]  # fmt: skip
    if caller.role in STAFF_BY_AUTHORITY:
        items.append(NavItem("Unmatched scans", f"{DESK_PATH}/unmatched-scans",
                             kept.unmatched_scans))  # fmt: skip
        if caller.role in INTEGRATORS:
            items.append(NavItem("Refused input", f"{DESK_PATH}/refused-inputs",
                                 kept.refused_inputs))  # fmt: skip
    return items


def _filters(request: Request) -> Filters:
    fields = {k: v for k, v in request.query_params.items() if k in Filters.model_fields and v}
    try:
        return Filters.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        raise BadForm(f"{first['loc'][0]}: {first['msg']}") from error


def _shown_total(
    counted: int | None,
    rows: list[CaseRow],
    cursor: str | None,
    next_cursor: str | None,
    navigation_count: int,
) -> int:
    """The heading's number: counted for a narrowed queue; the rows themselves when one
    page shows the whole queue (exact, whatever the shared counts' age); else the
    navigation's count."""
    if counted is not None:
        return counted
    if cursor is None and next_cursor is None:
        return len(rows)
    return navigation_count


def _csv(rows: list[CaseRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS)
    for row in rows:
        values = row.model_dump(mode="json")
        writer.writerow(["" if values[c] is None else values[c] for c in _CSV_COLUMNS])
    return out.getvalue()


async def _queue_rows(
    request: Request, gateway: CaseGateway, queue: Queue, caller: Caller, cursor: str | None
) -> tuple[list[CaseRow], str | None, int | None, Filters]:
    filters = _filters(request)
    try:
        after = Cursor.decode(cursor, CaseSort.NEXT_DEADLINE) if cursor else None
    except InvalidCursorError as error:
        raise BadForm(f"cursor: {error}") from error
    # Unnarrowed, the queue's total is its count in the navigation: not counted twice.
    narrowed = any(filters.model_dump().values())
    shown = await gateway.queues.queue(
        queue, _viewer(caller), datetime.now(UTC), narrowed_by=filters.as_filter(),
        after=after, with_total=narrowed,
    )  # fmt: skip
    return shown.rows, shown.next_cursor, shown.total, filters


def add_queue_routes(
    router: APIRouter,
    gateway: CaseGateway,
    reads: CasePageReads,
    acting: Callable[..., Caller],
    roles: tuple[Role, ...],
) -> None:
    @router.get("")
    async def home(request: Request) -> Response:
        acting(request, *roles)
        return RedirectResponse(f"{DESK_PATH}/queues/{Queue.NEEDS_DECISION.value}",
                                status_code=status.HTTP_303_SEE_OTHER)  # fmt: skip

    # Before the page's route, which would take "<queue>.csv" for a queue's name.
    @router.get("/queues/{queue}.csv")
    async def queue_csv(
        request: Request,
        queue: Queue,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> Response:
        """The page shown, as CSV: the same filters and the same page."""
        caller = acting(request, *roles)
        rows, *_ = await _queue_rows(request, gateway, queue, caller, cursor)
        return Response(
            _csv(rows), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{queue.value}.csv"'},
        )  # fmt: skip

    @router.get("/queues/{queue}")
    async def show_queue(
        request: Request,
        queue: Queue,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
        done: Annotated[str | None, Query(max_length=DONE_LENGTH)] = None,
    ) -> Response:
        """A queue, soonest deadline first; the filters narrow it, the cursor pages it."""
        caller = acting(request, *roles)
        # The queue and the navigation's counts at once (each its own connection).
        (rows, next_cursor, total, filters), nav = await asyncio.gather(
            _queue_rows(request, gateway, queue, caller, cursor),
            navigation(gateway, reads, caller),
        )
        query = {k: v for k, v in filters.model_dump(mode="json").items() if v}
        return page(request, "queue.html", {
            "nav": nav, "caller": caller,
            "queue": queue, "title": QUEUE_TITLES[queue], "rows": rows,
            "total": _shown_total(total, rows, cursor, next_cursor,
                                  nav[list(QUEUE_TITLES).index(queue)].count),
            "next_cursor": next_cursor, "filters": filters, "query": query,
            "kinds": list(CaseKind), "reasons": list(Reason), "channels": list(Channel),
            "statuses": list(CaseStatus), "action_id": new_action_id(), "done": done,
            "can_assign": caller.role in STAFF_BY_AUTHORITY, "now": datetime.now(UTC),
        })  # fmt: skip

    @router.post("/queues/{queue}/assign")
    async def bulk_assign(request: Request, queue: Queue) -> Response:
        """The ticked cases assigned to one agent, each through the gateway as the case
        page's form does; the action id the page made, per case, so a resend assigns
        once. What a case refused is listed with its rule."""
        caller = acting(request, *STAFF_BY_AUTHORITY)
        form = await request.form()
        fields = await posted(request)
        case_ids = [str(v) for v in form.getlist("case_id")][:500]
        agent = BulkAssignForm.model_validate({"agent": fields.get("agent", "")}).agent
        action_id = fields.get(ACTION_ID_FIELD, "")
        if not action_id:
            raise BadForm("action_id: the form carries no action id; reload the page")
        refusals = await _assign_each(gateway, caller, case_ids, agent, action_id)
        done = f"assigned {len(case_ids) - len(refusals)} of {len(case_ids)} to {agent}"
        if refusals:
            shown = "; ".join(refusals[:_REFUSALS_SHOWN])
            done += f"; {len(refusals)} refused, the first: {shown}"
        return _back_to_queue(request, queue, done)


def _back_to_queue(request: Request, queue: Queue, done: str) -> Response:
    """Back to the queue as it was narrowed (the form posts with its query), saying what
    was done: in the redirect's query, so within what the queue's page takes."""
    query = dict(request.query_params) | {"done": done[:DONE_LENGTH]}
    return RedirectResponse(
        request.url_for("show_queue", queue=queue.value).include_query_params(**query),
        status_code=status.HTTP_303_SEE_OTHER,
    )


async def _assign_each(
    gateway: CaseGateway, caller: Caller, case_ids: list[str], agent: str, action_id: str
) -> list[str]:
    """Each case assigned in turn; what each case that refused said."""
    refusals = []
    for case_id in case_ids:
        if not has_case_id_shape(case_id):
            # Not a case id at all (the page only lists real ones): nothing to ask.
            refusals.append("a ticked value is not a case id")
            continue
        message = Assignment(action_id=_per_case(action_id, case_id), actor=caller.actor,
                             role=caller.role, agent=agent)  # fmt: skip
        try:
            await gateway.decide(case_id, CaseHandlers.assign, message, caller)
        except (RefusedDecisionError, RefusedInputError, UnknownCaseError) as refusal:
            refusals.append(f"{case_id}: {refusal}")
    return refusals


async def _kept_list(
    request: Request, gateway: CaseGateway, reads: CasePageReads, caller: Caller,
    template: str, kept: KeptPage[Any], *, done: str | None = None,
    problem: str | None = None, status_code: int = status.HTTP_200_OK,
) -> Response:  # fmt: skip
    """A page of what is kept for a person, with what was just done or refused."""
    return page(request, template, {
        "nav": await navigation(gateway, reads, caller), "caller": caller,
        "items": kept.items, "next_cursor": kept.next_cursor,
        "done": done, "problem": problem,
    }, status_code=status_code)  # fmt: skip


def _resolved(request: Request, target: str, done: str) -> Response:
    url = request.url_for(target).include_query_params(done=done)
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def add_kept_routes(
    router: APIRouter,
    gateway: CaseGateway,
    reads: CasePageReads,
    acting: Callable[..., Caller],
) -> None:
    """What is kept for a person: R26's unmatched scans and refused input."""

    @router.get("/unmatched-scans")
    async def unmatched_scans(
        request: Request, cursor: Annotated[str | None, Query(max_length=512)] = None
    ) -> Response:
        caller = acting(request, *STAFF_BY_AUTHORITY)
        kept = await _kept_page(gateway.kept.unmatched_scans, cursor)
        return await _kept_list(request, gateway, reads, caller, "unmatched_scans.html", kept,
                                done=request.query_params.get("done"))  # fmt: skip

    @router.post("/unmatched-scans/{scan_id}/{resolution}")
    async def resolve_scan(request: Request, scan_id: ScanId, resolution: str) -> Response:
        """R26: attach the scan to its case (delivered once) or dismiss it, with why."""
        caller = acting(request, *STAFF_BY_AUTHORITY)
        fields = await posted(request)
        try:
            done = await _resolve_scan(gateway, caller, scan_id, resolution, fields)
        except (ValidationError, UnknownCaseError, UnknownKeptItemError,
                AlreadyResolvedError) as problem:  # fmt: skip
            kept = await gateway.kept.unmatched_scans()
            return await _kept_list(
                request, gateway, reads, caller, "unmatched_scans.html", kept,
                problem=f"{scan_id}: {said(problem)}", status_code=_refused_status(problem),
            )  # fmt: skip
        return _resolved(request, "unmatched_scans", done)

    @router.get("/refused-inputs")
    async def refused_inputs(
        request: Request, cursor: Annotated[str | None, Query(max_length=512)] = None
    ) -> Response:
        caller = acting(request, *INTEGRATORS)
        kept = await _kept_page(gateway.kept.refused_inputs, cursor)
        return await _kept_list(request, gateway, reads, caller, "refused_inputs.html", kept,
                                done=request.query_params.get("done"))  # fmt: skip

    @router.post("/refused-inputs/{input_id}/handled")
    async def mark_handled(request: Request, input_id: Annotated[int, Path(ge=1)]) -> Response:
        caller = acting(request, *INTEGRATORS)
        fields = await posted(request)
        try:
            reason = ResolutionForm.model_validate(fields).reason
            await gateway.kept.mark_handled(
                input_id, Resolver(actor=caller.actor, role=caller.role, reason=reason)
            )
        except (ValidationError, UnknownKeptItemError, AlreadyResolvedError) as problem:
            kept = await gateway.kept.refused_inputs()
            return await _kept_list(
                request, gateway, reads, caller, "refused_inputs.html", kept,
                problem=f"{input_id}: {said(problem)}", status_code=_refused_status(problem),
            )  # fmt: skip
        return _resolved(request, "refused_inputs", f"refused input {input_id} handled")


async def _resolve_scan(
    gateway: CaseGateway, caller: Caller, scan_id: str, resolution: str, fields: dict[str, str]
) -> str:
    """The scan attached or dismissed; what was done, in words."""

    def resolver_of(reason: str) -> Resolver:
        return Resolver(actor=caller.actor, role=caller.role, reason=reason)

    if resolution == "attach":
        form = AttachForm.model_validate(fields)
        await gateway.attach_scan(scan_id, form.case_id, resolver_of(form.reason))
        return f"scan {scan_id} attached to {form.case_id}"
    if resolution == "dismiss":
        reason = ResolutionForm.model_validate(fields).reason
        await gateway.kept.dismiss_scan(scan_id, resolver_of(reason))
        return f"scan {scan_id} dismissed"
    raise Forbidden(f"resolution: {resolution!r} is neither attach nor dismiss")


def _refused_status(problem: Exception) -> int:
    """A form filled in wrong is 422 (the field named); a resolution the item or the case
    cannot take is 409."""
    if isinstance(problem, ValidationError):
        return status.HTTP_422_UNPROCESSABLE_CONTENT
    return status.HTTP_409_CONFLICT


async def _kept_page(
    read: Callable[..., Awaitable[KeptPage[Item]]], cursor: str | None
) -> KeptPage[Item]:
    try:
        return await read(after=cursor)
    except InvalidKeptCursorError as error:
        raise BadForm(f"cursor: {error}") from error


def _per_case(action_id: str, case_id: str) -> str:
    """The page's action id made one per case, within an action id's 128 characters
    whatever the case id's length (up to 220): a resend assigns each case once."""
    return f"{action_id[:64]}-{hashlib.sha256(case_id.encode()).hexdigest()[:32]}"
