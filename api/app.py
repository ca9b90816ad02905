"""Routes: thin translations between HTTP and the case gateway; no business rules."""

import json
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, Field, StrictBool, ValidationError
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send
from temporalio.service import RPCError

from activities.analytics_store import DeliveryOutcome
from api.asgi import HttpMiddleware, on_response_start
from api.auth import Authentication, requires
from api.codec import RunCodec, codec_app
from api.docs_pages import add_docs_pages
from api.errors import (
    ApiError,
    ApiErrorItem,
    documented,
    error_response,
    from_message,
    from_refusal,
    from_validation,
    http_error,
    one_line,
)
from api.metrics import ApiMetrics, RequestMetrics
from api.page_policy import PagePolicy
from api.paths import CASE_ID_PATTERN, CaseId
from api.queues import queues_router
from api.refusal_budget import RefusalBudget, RefusalBudgetGuard
from api.rendered_reports import RenderedReports
from api.report_page import MEDIA_TYPES, ImageFormat, Plot
from api.reports import Section, report_csv
from api.request_ids import RequestIds
from api.review import review_router
from api.status import status_router
from desk.router import Desk
from domain.analytics import DeliveryReport, Report, ReportFilters
from domain.case import (
    STAFF_BY_AUTHORITY,
    ArbitrationRuling,
    Assignment,
    BusinessKey,
    CallRequest,
    CompensationOffer,
    Complaint,
    Deadline,
    DeadlineExtension,
    Dispute,
    EscalationRequest,
    EvidenceSubmitted,
    ExplainedReason,
    InterceptRequested,
    MessageId,
    OpenCaseRequest,
    PaymentResolution,
    PaymentResolutionChoice,
    RefundConsent,
    RemedyChoice,
    ReviewDecision,
    Role,
    RootCause,
    ScanReport,
    ShippedBack,
    Strict,
    WarehouseScan,
    Withdrawal,
)
from domain.claim import CarrierResponse
from domain.money import Money
from domain.view import CaseLedger, CaseView, ServiceView
from infra.case_notes import NoteIdTakenError, UnknownNoteCaseError
from infra.gateway import (
    CaseErasedError,
    CaseGateway,
    ReceiptRefusedError,
    RefusedDecisionError,
    RefusedInputError,
    UnknownCaseError,
    WorkerUnavailableError,
)
from infra.kept_for_review import AlreadyResolvedError, UnknownKeptItemError
from infra.outages import DATABASE_DOWN, unreachable_service
from infra.security.identity import Authenticator, Caller
from infra.security.privacy import CustomerHasOpenCasesError, ErasureReport

MAX_BODY_BYTES = 256 * 1024
RETRY_AFTER_S = 5
CustomerId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
TEMPORAL_DEV_UI_ORIGIN = "http://localhost:8233"


class DecisionBody(Strict):
    action_id: MessageId
    approve: StrictBool
    reason: ExplainedReason | None = None
    root_cause: RootCause | None = None


class CompensationBody(Strict):
    action_id: MessageId
    amount: Money
    reason: ExplainedReason


class EscalationBody(Strict):
    action_id: MessageId
    reason: ExplainedReason


class CallBody(Strict):
    action_id: MessageId
    purpose: ExplainedReason


class AssignmentBody(Strict):
    action_id: MessageId
    agent: BusinessKey


class ExtensionBody(Strict):
    action_id: MessageId
    deadline: Deadline
    extend_by: Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=30))]
    reason: ExplainedReason


class PaymentResolutionBody(PaymentResolutionChoice):
    action_id: MessageId


class RulingBody(Strict):
    action_id: MessageId
    favour_customer: StrictBool
    refund: Money | None = None
    reason: ExplainedReason


class ScanSubmission(ScanReport):
    barcode: str = Field(
        min_length=7, max_length=220, pattern=CASE_ID_PATTERN,
        description="the return label's barcode: the case id",
    )  # fmt: skip


class ScanBatch(Strict):
    scans: Annotated[list[ScanSubmission], Field(min_length=1, max_length=100)]


class CaseAccepted(BaseModel):
    """The answer to an opening request: the case exists and owns the request from now on.
    Its decision (R1 and on) follows within moments at `status_url`."""

    case_id: str
    created: bool
    status_url: str


class ScanResult(BaseModel):
    scan_id: str
    barcode: str
    accepted: bool
    problem: str | None = None


class ScanBatchRefusal(ApiError):
    """A batch with a scan no open case takes: the error shape, and every scan's outcome
    (the others were applied; sending the batch again changes nothing, R26)."""

    results: list[ScanResult]


class _BodyTooLargeError(HTTPException):
    def __init__(self) -> None:
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE, f"body: larger than {MAX_BODY_BYTES} bytes"
        )


class BodyLimit(HttpMiddleware):
    """The body limit, on the stream: a declared Content-Length above MAX_BODY_BYTES is
    refused before anything is read, and a body without one (chunked) is counted as it
    arrives and refused at the chunk that crosses the limit, before it is parsed, kept or
    echoed. It wraps `receive` only, so it runs after authentication."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            too_large = _BodyTooLargeError()
            answer = error_response(too_large.status_code, [from_message(too_large.detail)])
            await answer(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                # An HTTPException: FastAPI lets it through its body parsing to the app's
                # handler, which answers 413 in the error shape.
                raise _BodyTooLargeError
            return message

        await self._app(scope, limited, send)


# On every answer: no content sniffing, and no cache keeps a case (personal data) or a
# decision; nothing the API answers is meant to be cached, so all answers say so.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


class SecurityHeaders(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:

        def with_headers(start: Message) -> None:
            MutableHeaders(scope=start).update(SECURITY_HEADERS)

        await self._app(scope, receive, on_response_start(send, with_headers))


class ServerTiming(HttpMiddleware):
    """`Server-Timing: app;dur=<ms>` on every answer (W3C Server Timing): how long the API
    took until its answer started, authentication included. Browsers' developer tools
    show it, and bench/desk_queues.py reads it, so a latency is the server's own, not
    the load generator's."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()

        def timed(start: Message) -> None:
            taken_ms = (time.perf_counter() - started) * 1000
            MutableHeaders(scope=start)["Server-Timing"] = f"app;dur={taken_ms:.1f}"

        await self._app(scope, receive, on_response_start(send, timed))


class _DuplicateKeyError(json.JSONDecodeError):
    def __init__(self, key: str, document: str) -> None:
        super().__init__(f"duplicate key {key!r}", document, 0)
        self.key = key


class _StrictJSONRequest(Request):
    """JSON as JSON means it: a key twice in one object is refused (Python's parser would
    silently keep the last), and so are NaN and Infinity, which JSON has no word for.
    Each is a JSONDecodeError, which FastAPI answers as 422 (any other error is a 400).
    The body is read through the route's own request, which keeps it for the error
    handlers (they store a refused body)."""

    def __init__(self, route_request: Request) -> None:
        super().__init__(route_request.scope, route_request.receive)
        self._route_request = route_request

    async def body(self) -> bytes:
        return await self._route_request.body()

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                document = body.decode("utf-8")
            except UnicodeDecodeError as error:
                raise json.JSONDecodeError("not UTF-8", repr(body[:40]), error.start) from error

            def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
                found: dict[str, Any] = {}
                for key, value in pairs:
                    if key in found:
                        raise _DuplicateKeyError(key, document)
                    found[key] = value
                return found

            def no_constant(name: str) -> Any:
                raise json.JSONDecodeError(f"{name} is not a JSON number", document, 0)

            try:
                self._json = json.loads(
                    document, object_pairs_hook=unique_keys, parse_constant=no_constant
                )
            except RecursionError as error:  # [[[[... a few KiB deep
                raise json.JSONDecodeError("nested too deeply", document, 0) from error
        return self._json


class _StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request))

        return strict


async def _unavailable(_: Request, error: Exception) -> JSONResponse:
    """An outage is not the caller's fault: 503 and a retry. What was accepted before it
    stays accepted (a stored case request, a delivered scan), and repeating a request that
    carries its own id changes nothing (R2, R26)."""
    service = unreachable_service(error)
    if service is None:
        raise error
    message = f"{service} cannot be reached right now; send the request again"
    return error_response(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        [ApiErrorItem(field=None, rule=None, message=message)],
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


async def _unexpected(_: Request, error: Exception) -> JSONResponse:
    # Outside the middleware stack (Starlette's last resort), so the headers go on here.
    message = "the API failed unexpectedly; the request may be sent again"
    return error_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        [ApiErrorItem(field=None, rule=None, message=message)],
        headers=SECURITY_HEADERS,
    )


# Why a batch with an unknown barcode is 404 and not 207 (Multi-Status): a scanner that
# reads only the status still sees that a parcel needs a person; the body says which.
_SCAN_404 = (
    "a barcode matches no open case: that scan is kept for a person (R26); the body lists "
    "every scan's outcome, the others were applied"
)

# Every route may answer these (authentication, the body limit, validation, an outage).
_ANY_ROUTE = (401, 403, 413, 422, 429, 503)


def create_app(
    gateway: CaseGateway,
    authenticator: Authenticator,
    *,
    codec_origins: Sequence[str] = (TEMPORAL_DEV_UI_ORIGIN,),
    refusal_budget: RefusalBudget | None = None,
    run_codec: RunCodec | None = None,
    desk: Desk | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """`run_codec`: `make run`'s codec endpoint for its own Temporal UI (api/codec.py).
    `desk`: the operators' desk (desk/: its pages, and its sign-in for them and for the
    report page). `tracer_provider`: traces each request (infra/tracing.py), when set."""
    app = FastAPI(
        title="aftersales",
        description="Returns, exchanges and damage claims as durable Temporal workflows.",
        version="0.1.0",
        responses=documented(*_ANY_ROUTE),
        # Served offline instead (api/docs_pages.py): FastAPI's own pages use a CDN.
        docs_url=None,
        redoc_url=None,
    )
    # Before any route is added: every route parses JSON strictly.
    app.router.route_class = _StrictJSONRoute
    service = requires(Role.SERVICE)
    scanner = requires(Role.WAREHOUSE)
    carrier_desk = requires(Role.CARRIER)
    staff = requires(*STAFF_BY_AUTHORITY)
    arbiter = requires(Role.ARBITER)
    privacy = requires(Role.PRIVACY)
    reader = requires(Role.SERVICE, *STAFF_BY_AUTHORITY, Role.ARBITER)
    auditor = requires(*STAFF_BY_AUTHORITY, Role.ARBITER)

    # The last added runs first: the headers go on every answer, the 413 included.
    app.add_middleware(BodyLimit)
    # Per proven client, so after authentication; kept on the app for metrics to read.
    app.state.refusal_budget = budget = refusal_budget or RefusalBudget()
    app.add_middleware(RefusalBudgetGuard, budget=budget)
    # R24's page and plots, drawn once per report (kept on the app for metrics to read).
    app.state.rendered_reports = rendered = RenderedReports()
    # Nothing reads a body before the caller is proven: an unauthenticated 10 MB body is
    # refused before the body limit would count it.
    app.add_middleware(
        Authentication, authenticator=authenticator, desk=desk.gate if desk else None
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(PagePolicy)
    app.add_middleware(ServerTiming)
    metrics = ApiMetrics(app, budget, gateway.figures)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(RequestIds)
    if tracer_provider is not None:
        FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider)
    add_docs_pages(app)
    app.include_router(status_router(gateway, metrics))
    if desk is not None:
        app.include_router(desk.router)
    # The Temporal UI decodes payloads here for operators (staff only).
    app.mount(
        "/codec",
        codec_app(gateway.payload_codec, staff, codec_origins, authenticator, run_codec),
    )

    async def refuse(
        request: Request, status_code: int, errors: list[ApiErrorItem]
    ) -> JSONResponse:
        """Bad input loses nothing: the body as received is kept with the answer's reason
        before the answer goes out; if it cannot be kept (PostgreSQL down), 503 asks for the
        request again. A read sends nothing to keep."""
        if request.method != "GET":
            try:
                await gateway.record_refused_input(
                    source="api",
                    operation=f"{request.method} {request.url.path}",
                    payload=(await request.body()).decode("utf-8", "backslashreplace"),
                    errors=one_line(errors),
                )
            except DATABASE_DOWN as outage:
                return await _unavailable(request, outage)
            budget.spend(request.state.principal.actor)
        return error_response(status_code, errors)

    app.add_exception_handler(HTTPException, http_error)

    @app.exception_handler(UnknownCaseError)
    async def unknown_case(request: Request, error: UnknownCaseError) -> JSONResponse:
        errors = [from_message(str(error))]
        if "case_id" not in request.path_params:
            # A carrier's answer to no claim: the gateway kept it (R15).
            budget.spend(request.state.principal.actor)
            return error_response(status.HTTP_404_NOT_FOUND, errors)
        return await refuse(request, status.HTTP_404_NOT_FOUND, errors)

    @app.exception_handler(RefusedInputError)
    async def refused(request: Request, error: RefusedInputError) -> JSONResponse:
        return await refuse(request, status.HTTP_409_CONFLICT, [from_message(str(error))])

    @app.exception_handler(RefusedDecisionError)
    async def refused_decision(request: Request, error: RefusedDecisionError) -> JSONResponse:
        return await refuse(
            request, status.HTTP_409_CONFLICT, [from_refusal(str(error), error.rule)]
        )

    @app.exception_handler(UnknownKeptItemError)
    async def unknown_kept(_: Request, error: UnknownKeptItemError) -> JSONResponse:
        return error_response(status.HTTP_404_NOT_FOUND, [from_message(str(error))])

    @app.exception_handler(UnknownNoteCaseError)
    async def unknown_note_case(request: Request, error: UnknownNoteCaseError) -> JSONResponse:
        return await refuse(request, status.HTTP_404_NOT_FOUND, [from_message(str(error))])

    @app.exception_handler(AlreadyResolvedError)
    @app.exception_handler(NoteIdTakenError)
    async def taken(request: Request, error: ValueError) -> JSONResponse:
        return await refuse(request, status.HTTP_409_CONFLICT, [from_message(str(error))])

    @app.exception_handler(CaseErasedError)
    async def erased_case(_: Request, error: CaseErasedError) -> JSONResponse:
        return error_response(status.HTTP_410_GONE, [from_message(str(error), field="case_id")])

    @app.exception_handler(CustomerHasOpenCasesError)
    async def erasure_waits(_: Request, error: CustomerHasOpenCasesError) -> JSONResponse:
        # Not kept in refused_inputs: the path names the customer being erased.
        return error_response(
            status.HTTP_409_CONFLICT, [from_message(str(error), field="customer_id")]
        )

    @app.exception_handler(WorkerUnavailableError)
    async def no_worker(_: Request, error: WorkerUnavailableError) -> JSONResponse:
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            [from_message(str(error))],
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    for outage in (RPCError, *DATABASE_DOWN):
        app.add_exception_handler(outage, _unavailable)
    app.add_exception_handler(Exception, _unexpected)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = from_validation(error.errors())
        if isinstance(error.__cause__, _DuplicateKeyError):
            errors = [
                ApiErrorItem(
                    field=error.__cause__.key,
                    rule=None,
                    message="duplicate key: a key may appear once in a JSON object",
                )
            ]
        return await refuse(request, status.HTTP_422_UNPROCESSABLE_CONTENT, errors)

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, error: ValidationError) -> JSONResponse:
        errors = from_validation(error.errors())
        return await refuse(request, status.HTTP_422_UNPROCESSABLE_CONTENT, errors)

    @app.post(
        "/cases",
        status_code=status.HTTP_201_CREATED,
        responses={
            200: {"model": CaseAccepted, "description": "the same request again (R2)"},
            **documented(409),
        },
    )
    async def open_case(
        request: OpenCaseRequest, response: Response, _: Annotated[Caller, Depends(service)]
    ) -> CaseAccepted:
        """Open a case (R2: idempotent; the same request again answers 200). Answers once
        the request is stored and the case started, before the case's first decision.
        R1: a requested_at later than our receipt (beyond a few minutes of clock skew) is
        422; one older than the policy's allowance before receipt is judged at receipt."""
        try:
            received = gateway.received_now(request)
        except ReceiptRefusedError as refused:
            where = ("body", refused.field) if refused.field else ("body",)
            raise RequestValidationError(
                [{"type": "value_error", "loc": where, "msg": refused.message}]
            ) from refused
        created = await gateway.accept_case(received)
        if not created:
            response.status_code = status.HTTP_200_OK
        return CaseAccepted(
            case_id=request.case_id, created=created, status_url=f"/cases/{request.case_id}"
        )

    @app.post("/deliveries")
    async def deliveries(
        report: DeliveryReport, _: Annotated[Caller, Depends(service)]
    ) -> DeliveryOutcome:
        """R24: units delivered per SKU, batch and day (UTC), the return rate's
        denominator. Each row is that day's total: sending it again changes nothing
        (`changed` 0), a different total replaces it. A bad row refuses the whole report
        (422 naming `rows.<n>.<field>`, the body kept for a person); nothing is stored."""
        return await gateway.analytics.record_deliveries(report.rows)

    def report_filters(
        from_day: Annotated[date | None, Query(alias="from")] = None,
        to_day: Annotated[date | None, Query(alias="to")] = None,
        category: Annotated[str | None, Query(max_length=64)] = None,
        sku: Annotated[str | None, Query(max_length=64)] = None,
        batch: Annotated[str | None, Query(max_length=64)] = None,
        channel: Annotated[str | None, Query(max_length=64)] = None,
        kind: Annotated[str | None, Query(max_length=64)] = None,
        reason: Annotated[str | None, Query(max_length=64)] = None,
    ) -> ReportFilters:
        """Days are UTC and inclusive; a value nothing has (an unknown SKU) narrows to
        nothing, it is not an error. `to` before `from` is 422 naming `to`."""
        if from_day and to_day and to_day < from_day:
            raise RequestValidationError(
                [{"type": "value_error", "loc": ("query", "to"),
                  "msg": "before from: the range would be empty"}]
            )  # fmt: skip
        return ReportFilters(from_day=from_day, to_day=to_day, category=category, sku=sku,
                             batch=batch, channel=channel, kind=kind, reason=reason)  # fmt: skip

    @app.get("/reports")
    async def report(
        filters: Annotated[ReportFilters, Depends(report_filters)],
        _: Annotated[Caller, Depends(staff)],
    ) -> Report:
        """R24: return rates by SKU and batch (returned units / delivered units), reasons
        and root causes, time to resolve (p50, p90 hours) by kind and reason, SLA
        compliance per rule with its breaches, money, carrier claims, satisfaction and its
        weekly trend, and the batches the alarm flagged."""
        return await gateway.report(filters)

    @app.get(
        "/reports/{section}.csv",
        responses={200: {"content": {"text/csv": {}}, "description": "one section as CSV"}},
    )
    async def report_section_csv(
        section: Section,
        filters: Annotated[ReportFilters, Depends(report_filters)],
        _: Annotated[Caller, Depends(staff)],
    ) -> Response:
        """One section of `GET /reports` as CSV (`sla_breaches`: the listed breaches)."""
        text = report_csv(await gateway.report(filters), section)
        return Response(text, media_type="text/csv; charset=utf-8")

    @app.get(
        "/reports/page",
        responses={200: {"content": {"text/html": {}}, "description": "the report page"}},
    )
    async def report_page(
        filters: Annotated[ReportFilters, Depends(report_filters)],
        _: Annotated[Caller, Depends(staff)],
    ) -> Response:
        """The report as one HTML page for a browser: flagged batches, plots, tables."""
        return HTMLResponse(await rendered.page(await gateway.report(filters)))

    @app.get(
        "/reports/plots/{plot}.{image_format}",
        responses={
            200: {"content": {"image/png": {}, "image/svg+xml": {}}, "description": "the plot"}
        },
    )
    async def report_plot(
        plot: Plot,
        image_format: ImageFormat,
        filters: Annotated[ReportFilters, Depends(report_filters)],
        _: Annotated[Caller, Depends(staff)],
    ) -> Response:
        """One plot of the report, PNG or SVG."""
        image = await rendered.plot(await gateway.report(filters), plot, image_format)
        return Response(image, media_type=MEDIA_TYPES[image_format])

    # Before `/cases/{case_id}`'s siblings: the lists, queues and what waits for a person.
    app.include_router(queues_router(gateway, _StrictJSONRoute))
    app.include_router(review_router(gateway, _StrictJSONRoute))

    @app.get("/cases/{case_id}", responses=documented(404, 410))
    async def read_case(
        case_id: CaseId,
        caller: Annotated[Caller, Depends(reader)],
        fresh: Annotated[bool, Query()] = False,
    ) -> CaseView | ServiceView:
        """The case as the caller's role may see it: the shop's backend what it tells the
        customer (ServiceView), staff the working view (CaseView), the arbiter the working
        view of a disputed case only; any other case answers 404, as an unknown one does,
        so the arbiter learns nothing of cases that are not theirs to rule on (R19).
        Read from PostgreSQL as of the case's last ledger step (R23), so it answers after
        Temporal's retention and with no worker running. `fresh=true` asks the workflow
        itself (503 naming the worker if none answers); a decision's answer is as fresh."""
        if caller.role is Role.ARBITER:
            return await gateway.arbitration_view(case_id, fresh=fresh)
        view = await gateway.status(case_id, fresh=fresh)
        return view.for_service() if caller.role is Role.SERVICE else view

    @app.get("/cases/{case_id}/ledger", responses=documented(404))
    async def ledger(
        case_id: CaseId,
        caller: Annotated[Caller, Depends(auditor)],
    ) -> CaseLedger:
        """R23: the case's audit trail from PostgreSQL, oldest step first, for staff and
        (for a disputed case only, else 404) the arbiter. Customers are named by role, and
        complaint words, messages as they arrived and photo URLs (a count) are left out,
        as in the working view (docs/privacy.md)."""
        # Internal notes are the merchant's own: not for the platform's arbiter.
        trail = await gateway.ledger(case_id, with_notes=caller.role is not Role.ARBITER)
        if caller.role is Role.ARBITER and not trail.disputed:
            raise UnknownCaseError(f"case_id: no case {case_id!r}")
        return trail

    async def tell(case_id: CaseId, signal: str, message: BaseModel) -> dict[str, str]:
        await gateway.tell(case_id, signal, message)
        return {"case_id": case_id, "accepted": signal}

    @app.post(
        "/cases/{case_id}/evidence",
        status_code=status.HTTP_202_ACCEPTED,
        responses=documented(404, 409, 410),
    )
    async def evidence(
        case_id: CaseId, body: EvidenceSubmitted, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "evidence_submitted", body)

    @app.post(
        "/cases/{case_id}/shipped-back",
        status_code=status.HTTP_202_ACCEPTED,
        responses=documented(404, 409, 410),
    )
    async def shipped_back(
        case_id: CaseId, body: ShippedBack, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "shipped_back", body)

    @app.post(
        "/cases/{case_id}/complaint",
        status_code=status.HTTP_202_ACCEPTED,
        responses=documented(404, 409, 410),
    )
    async def complaint(
        case_id: CaseId, body: Complaint, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "complaint", body)

    @app.post(
        "/cases/{case_id}/dispute",
        status_code=status.HTTP_202_ACCEPTED,
        responses=documented(404, 409, 410),
    )
    async def dispute(
        case_id: CaseId, body: Dispute, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "dispute", body)

    @app.post(
        "/cases/{case_id}/intercept",
        status_code=status.HTTP_202_ACCEPTED,
        responses=documented(404, 409, 410),
    )
    async def intercept(
        case_id: CaseId, body: InterceptRequested, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "intercept_requested", body)

    @app.post(
        "/cases/{case_id}/withdrawal",
        status_code=status.HTTP_202_ACCEPTED,
        responses=documented(404, 409, 410),
    )
    async def withdrawal(
        case_id: CaseId, body: Withdrawal, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "withdraw", body)

    @app.post("/cases/{case_id}/remedy", responses=documented(404, 409, 410))
    async def remedy(
        case_id: CaseId, body: RemedyChoice, caller: Annotated[Caller, Depends(service)]
    ) -> ServiceView:
        return (await gateway.decide(case_id, "choose_remedy", body, caller)).for_service()

    @app.post("/cases/{case_id}/refund-consent", responses=documented(404, 409, 410))
    async def refund_consent(
        case_id: CaseId, body: RefundConsent, caller: Annotated[Caller, Depends(service)]
    ) -> ServiceView:
        return (await gateway.decide(case_id, "consent_to_refund", body, caller)).for_service()

    @app.post("/cases/{case_id}/decision", responses=documented(404, 409, 410))
    async def decision(
        case_id: CaseId, body: DecisionBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseView:
        return await gateway.decide(
            case_id,
            "decide",
            ReviewDecision(actor=caller.actor, role=caller.role, **body.model_dump()),
            caller,
        )

    @app.post("/cases/{case_id}/compensation", responses=documented(404, 409, 410))
    async def compensation(
        case_id: CaseId, body: CompensationBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseView:
        offer = CompensationOffer(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "offer_compensation", offer, caller)

    @app.post("/cases/{case_id}/escalation", responses=documented(404, 409, 410))
    async def escalation(
        case_id: CaseId, body: EscalationBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseView:
        request = EscalationRequest(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "escalate", request, caller)

    @app.post("/cases/{case_id}/call", responses=documented(404, 409, 410))
    async def call(
        case_id: CaseId, body: CallBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseView:
        request = CallRequest(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "request_call", request, caller)

    @app.post("/cases/{case_id}/assignment", responses=documented(404, 409, 410))
    async def assignment(
        case_id: CaseId, body: AssignmentBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseView:
        assigned = Assignment(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "assign", assigned, caller)

    @app.post("/cases/{case_id}/deadline-extension", responses=documented(404, 409, 410))
    async def deadline_extension(
        case_id: CaseId, body: ExtensionBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseView:
        extension = DeadlineExtension(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "extend_deadline", extension, caller)

    @app.post("/cases/{case_id}/payment-resolution", responses=documented(404, 409, 410))
    async def payment_resolution(
        case_id: CaseId, body: PaymentResolutionBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseView:
        """R21: a declined payment retried under its key, or recorded settled another way."""
        resolved = PaymentResolution(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "resolve_declined_payment", resolved, caller)

    @app.post("/cases/{case_id}/ruling", responses=documented(404, 409, 410))
    async def ruling(
        case_id: CaseId, body: RulingBody, caller: Annotated[Caller, Depends(arbiter)]
    ) -> CaseView:
        """R19; a case never disputed answers 404, as for reading it."""
        await gateway.arbitration_view(case_id, fresh=True)
        ruled = ArbitrationRuling(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "apply_ruling", ruled, caller)

    @app.post("/customers/{customer_id}/erasure", responses=documented(409))
    async def erasure(
        customer_id: CustomerId, caller: Annotated[Caller, Depends(privacy)]
    ) -> ErasureReport:
        """GDPR art. 17: the customer's ledger rows pseudonymised and their free text
        removed, their cases' data keys destroyed (their Temporal payloads can no longer be
        read); money records and the audit trail's rows, actions and times stay. 409 while
        a case of theirs (or its dispute window, survey or carrier claim) still runs;
        repeated, it erases nothing more (docs/privacy.md)."""
        return await gateway.erase_customer(customer_id, actor=caller.actor, role=caller.role.value)

    @app.post(
        "/claims/{claim_id}/carrier-response",
        status_code=status.HTTP_202_ACCEPTED,
        responses=documented(404),
    )
    async def carrier_response(
        claim_id: CaseId, body: CarrierResponse, caller: Annotated[Caller, Depends(carrier_desk)]
    ) -> dict[str, str]:
        """R15: the carrier claims desk's callback, from a client made for the claim's
        carrier; an id that is no carrier claim's (a case, a survey), another carrier's
        claim, or a claim that can no longer take it answers 404, and the answer is kept
        for a person."""
        await gateway.carrier_response(claim_id, body, caller)
        return {"claim_id": claim_id, "accepted": "carrier_response"}

    @app.post(
        "/scans",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=list[ScanResult],
        responses={404: {"model": ScanBatchRefusal, "description": _SCAN_404}},
    )
    async def scans(
        batch: ScanBatch, caller: Annotated[Caller, Depends(scanner)]
    ) -> list[ScanResult] | JSONResponse:
        """R26: 202 when every scan was durably signalled to its case (a repeated scan
        changes nothing). A barcode's scans are applied in the order sent. If any barcode
        matches no open case: 404, that scan kept for a person, and every scan's outcome
        listed (the others were applied)."""
        problems = await gateway.scan_batch(
            [
                # The scanner is the proven caller, never what the body says (R23).
                (
                    s.barcode,
                    WarehouseScan(**s.model_dump(exclude={"barcode"}), scanned_by=caller.actor),
                )
                for s in batch.scans
            ]
        )
        results = [
            ScanResult(scan_id=submission.scan_id, barcode=submission.barcode,
                       accepted=problem is None, problem=str(problem) if problem else None)
            for submission, problem in zip(batch.scans, problems, strict=True)
        ]  # fmt: skip
        if all(r.accepted for r in results):
            return results
        errors = [
            from_message(r.problem, field=f"scans.{place}.barcode")
            for place, r in enumerate(results)
            if r.problem is not None
        ]
        refusal = ScanBatchRefusal(detail=one_line(errors), errors=errors, results=results)
        return JSONResponse(refusal.model_dump(), status_code=status.HTTP_404_NOT_FOUND)

    return app
