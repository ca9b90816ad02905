"""Case lists and work queues over HTTP (`GET /cases`, `GET /queues`,
`GET /queues/{queue}`): the query module (infra/case_queues.py) behind a thin edge that
parses the filters, proves the caller, and pages with an opaque cursor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from api.callers import Auditor
from api.errors import documented
from domain.case import CaseKind, Channel, Reason
from domain.queues import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    CaseFilter,
    CasePage,
    CaseRow,
    CaseSort,
    Cursor,
    InvalidCursorError,
    Queue,
    QueueCounts,
    Viewer,
    scope_of,
)
from domain.state import CaseStatus, EscalationLevel
from infra.gateway import CaseGateway
from infra.security.identity import Caller

# `assignee=unassigned` asks for the cases nobody is assigned to.
UNASSIGNED = "unassigned"
Member = TypeVar("Member", bound=StrEnum)
Many = Annotated[list[str] | None, Query(max_length=32)]


def _refused(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message}]
    )


def _members(kind: type[Member], field: str, values: Sequence[str] | None) -> frozenset[Member]:
    """Repeated (`status=a&status=b`) or comma-separated (`status=a,b`), each a member of
    `kind`; 422 naming the field and the values it takes otherwise (not the value sent:
    an error never echoes input, docs/contract.md)."""
    found = set()
    for value in (part.strip() for v in values or () for part in v.split(",")):
        try:
            found.add(kind(value))
        except ValueError:
            raise _refused(field, f"each value must be one of {', '.join(kind)}") from None
    return frozenset(found)


def case_filter(
    status: Many = None,
    kind: Many = None,
    reason: Many = None,
    channel: Many = None,
    escalation_level: Many = None,
    sku: Annotated[str | None, Query(max_length=64)] = None,
    carrier: Annotated[str | None, Query(max_length=64)] = None,
    assignee: Annotated[str | None, Query(max_length=128)] = None,
    deadline_before: datetime | None = None,
    deadline_after: datetime | None = None,
    late: bool = False,
    open_only: Annotated[bool, Query(alias="open")] = False,
    search: Annotated[str | None, Query(max_length=128)] = None,
) -> CaseFilter:
    """The narrowing filters `GET /cases` and `GET /queues/{queue}` share. Every one
    narrows (AND); a list matches any of its values. `late=true`: open, and the next
    deadline passed or an SLA clock breached. `search`: a case id, order id, SKU or
    tracking number, matched whole."""
    unassigned = assignee == UNASSIGNED
    return CaseFilter(
        statuses=_members(CaseStatus, "status", status),
        kinds=_members(CaseKind, "kind", kind),
        reasons=_members(Reason, "reason", reason),
        channels=_members(Channel, "channel", channel),
        escalation_levels=_members(EscalationLevel, "escalation_level", escalation_level),
        sku=sku,
        carrier=carrier,
        assignee=None if unassigned else assignee,
        unassigned=unassigned,
        deadline_before=deadline_before,
        deadline_after=deadline_after,
        late_at=datetime.now(UTC) if late else None,
        open_only=open_only,
        search=search,
    )


def _cursor(token: str | None, sort: CaseSort) -> Cursor | None:
    if token is None:
        return None
    try:
        return Cursor.decode(token, sort)
    except InvalidCursorError as error:
        raise _refused("cursor", str(error)) from error


def _viewer(caller: Caller) -> Viewer:
    return Viewer(actor=caller.actor, role=caller.role)


Filters = Annotated[CaseFilter, Depends(case_filter)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
PageCursor = Annotated[str | None, Query(max_length=512)]


def queues_router(gateway: CaseGateway, route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class, tags=["queues"])

    @router.get("/cases", responses=documented(422))
    async def list_cases(
        request: Request,
        response: Response,
        caller: Auditor,
        narrowed: Filters,
        sort: CaseSort = CaseSort.NEWEST,
        cursor: PageCursor = None,
        limit: Limit = PAGE_SIZE,
        count: bool = False,
        offset: Annotated[int | None, Query(include_in_schema=False)] = None,
    ) -> list[CaseRow]:
        """Cases from the PostgreSQL read model, newest first unless `sort=next_deadline`
        (soonest first, none last). The next page: the `Link` header (`rel="next"`), or
        `cursor=` the `X-Next-Cursor` header; absent on the last page. `count=true` adds
        `X-Total-Count`, the matches in all. `offset` is refused (422): a cursor stays
        right while cases are added, an offset would skip or repeat them."""
        if offset is not None:
            raise _refused("offset", "not supported: page with cursor (the Link header)")
        page = await gateway.queues.page(
            [scope_of(_viewer(caller)), narrowed],
            sort=sort,
            after=_cursor(cursor, sort),
            limit=limit,
            with_total=count,
        )
        if page.next_cursor is not None:
            following = request.url.include_query_params(cursor=page.next_cursor)
            response.headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
            response.headers["X-Next-Cursor"] = page.next_cursor
        if page.total is not None:
            response.headers["X-Total-Count"] = str(page.total)
        return page.rows

    @router.get("/queues")
    async def queue_counts(caller: Auditor) -> QueueCounts:
        """How many open cases each queue holds for the caller: needs a decision (under
        review, remedy choice, arbitration), late, escalated (to the caller's level for a
        supervisor or manager, any level otherwise), assigned to the caller, unassigned,
        waiting on the customer."""
        return await gateway.queues.counts(_viewer(caller), datetime.now(UTC))

    @router.get("/queues/{queue}", responses=documented(422))
    async def queue_page(
        queue: Queue,
        caller: Auditor,
        narrowed: Filters,
        cursor: PageCursor = None,
        limit: Limit = PAGE_SIZE,
        count: bool = False,
    ) -> CasePage:
        """One queue for the caller, soonest deadline first, narrowed by the same filters
        as `GET /cases`; `next_cursor` for the next page; `count=true` adds `total`, the
        matches' count now (`GET /queues` has every queue's count at once)."""
        return await gateway.queues.queue(
            queue,
            _viewer(caller),
            datetime.now(UTC),
            narrowed_by=narrowed,
            after=_cursor(cursor, CaseSort.NEXT_DEADLINE),
            limit=limit,
            with_total=count,
        )

    return router
