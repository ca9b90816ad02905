"""Routes: thin translations between HTTP and the case gateway; no business rules."""

import json
import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.service import RPCError

from api.auth import Caller, requires
from api.codec import codec_app
from domain.case import (
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
    RefundConsent,
    RemedyChoice,
    ReviewDecision,
    Role,
    RootCause,
    ShippedBack,
    Strict,
    WarehouseScan,
    Withdrawal,
)
from domain.claim import CarrierResponse
from domain.money import Money
from domain.state import CaseState, CaseStatus
from infra.gateway import (
    CaseGateway,
    CaseSummary,
    RefusedDecisionError,
    RefusedInputError,
    UnknownCaseError,
    describe_errors,
    describe_validation_error,
)
from infra.outages import DATABASE_DOWN, unreachable_service

MAX_BODY_BYTES = 256 * 1024
RETRY_AFTER_S = 5
# `<kind>-<order>-<line>-<request>`, each part a business key (R2).
_CASE_ID_PATTERN = r"^[a-z_]+-[A-Za-z0-9][A-Za-z0-9_.-]*$"
CaseId = Annotated[str, Path(min_length=7, max_length=220, pattern=_CASE_ID_PATTERN)]
STAFF = (Role.AGENT, Role.SUPERVISOR, Role.MANAGER)
TEMPORAL_DEV_UI_ORIGIN = "http://localhost:8233"


class DecisionBody(Strict):
    action_id: MessageId
    approve: bool
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


class RulingBody(Strict):
    action_id: MessageId
    favour_customer: bool
    refund: Money | None = None
    reason: ExplainedReason


class ScanSubmission(WarehouseScan):
    barcode: str = Field(
        min_length=7, max_length=220, pattern=_CASE_ID_PATTERN,
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


class BodyLimit:
    """Refuses a body declared larger than MAX_BODY_BYTES before reading it (plain ASGI:
    Starlette's BaseHTTPMiddleware costs every request a task and a stream copy)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = Headers(scope=scope).get("content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                too_large = JSONResponse(
                    {"detail": f"body: larger than {MAX_BODY_BYTES} bytes"},
                    status_code=status.HTTP_413_CONTENT_TOO_LARGE,
                )
                await too_large(scope, receive, send)
                return
        await self._app(scope, receive, send)


class _AsciiJSONResponse(JSONResponse):
    """FastAPI's 422 echoes the refused input, which may hold a lone surrogate (a JSON
    escape) that UTF-8 cannot encode, or NaN (which Python's parser takes and JSON has no
    word for); escaped to ASCII, with such numbers as strings, valid JSON goes out."""

    def render(self, content: Any) -> bytes:
        return json.dumps(_finite(content), allow_nan=False, separators=(",", ":")).encode("ascii")


def _finite(content: Any) -> Any:
    if isinstance(content, float) and not math.isfinite(content):
        return str(content)
    if isinstance(content, dict):
        return {key: _finite(value) for key, value in content.items()}
    if isinstance(content, list):
        return [_finite(value) for value in content]
    return content


async def _unavailable(_: Request, error: Exception) -> JSONResponse:
    """An outage is not the caller's fault: 503 and a retry. What was accepted before it
    stays accepted (a stored case request, a delivered scan), and repeating a request that
    carries its own id changes nothing (R2, R26)."""
    service = unreachable_service(error)
    if service is None:
        raise error
    return JSONResponse(
        {"detail": f"{service} cannot be reached right now; send the request again"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def create_app(
    gateway: CaseGateway,
    tokens: Mapping[str, Role],
    *,
    codec_origins: Sequence[str] = (TEMPORAL_DEV_UI_ORIGIN,),
) -> FastAPI:
    app = FastAPI(
        title="aftersales",
        description="Returns, exchanges and damage claims as durable Temporal workflows.",
        version="0.1.0",
    )
    service = requires(tokens, Role.SERVICE)
    scanner = requires(tokens, Role.WAREHOUSE)
    staff = requires(tokens, *STAFF)
    arbiter = requires(tokens, Role.ARBITER)
    reader = requires(tokens, Role.SERVICE, *STAFF, Role.ARBITER)

    app.add_middleware(BodyLimit)
    # The Temporal UI decodes payloads here for operators (staff only).
    app.mount("/codec", codec_app(gateway.payload_codec, staff, codec_origins))

    async def refuse(request: Request, answer: JSONResponse, errors: str) -> JSONResponse:
        """Bad input loses nothing: the body as received is kept with the answer's reason
        before the answer goes out; if it cannot be kept (PostgreSQL down), 503 asks for the
        request again. A read sends nothing to keep."""
        if request.method != "GET":
            try:
                await gateway.record_refused_input(
                    source="api",
                    operation=f"{request.method} {request.url.path}",
                    payload=(await request.body()).decode("utf-8", "backslashreplace"),
                    errors=errors,
                )
            except DATABASE_DOWN as outage:
                return await _unavailable(request, outage)
        return answer

    @app.exception_handler(UnknownCaseError)
    async def unknown_case(request: Request, error: UnknownCaseError) -> JSONResponse:
        answer = JSONResponse({"detail": str(error)}, status_code=status.HTTP_404_NOT_FOUND)
        if "case_id" not in request.path_params:
            return answer  # a carrier's answer to no claim: the gateway keeps it (R15)
        return await refuse(request, answer, str(error))

    @app.exception_handler(RefusedInputError)
    @app.exception_handler(RefusedDecisionError)
    async def refused(request: Request, error: ValueError) -> JSONResponse:
        answer = JSONResponse({"detail": str(error)}, status_code=status.HTTP_409_CONFLICT)
        return await refuse(request, answer, str(error))

    for outage in (RPCError, *DATABASE_DOWN):
        app.add_exception_handler(outage, _unavailable)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        answer = _AsciiJSONResponse(
            {"detail": jsonable_encoder(error.errors())},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
        return await refuse(request, answer, describe_errors(error.errors()))

    @app.exception_handler(ValidationError)
    async def invalid(request: Request, error: ValidationError) -> JSONResponse:
        message = describe_validation_error(error)
        answer = JSONResponse(
            {"detail": message}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
        )
        return await refuse(request, answer, message)

    @app.post("/cases", status_code=status.HTTP_201_CREATED)
    async def open_case(
        request: OpenCaseRequest, response: Response, _: Annotated[Caller, Depends(service)]
    ) -> CaseAccepted:
        """Open a case (R2: idempotent; the same request again answers 200). Answers once
        the request is stored and the case started, before the case's first decision."""
        created = await gateway.accept_case(request)
        if not created:
            response.status_code = status.HTTP_200_OK
        return CaseAccepted(
            case_id=request.case_id, created=created, status_url=f"/cases/{request.case_id}"
        )

    @app.get("/cases")
    async def list_cases(
        _: Annotated[Caller, Depends(staff)],
        status_is: Annotated[CaseStatus | None, Query(alias="status")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> list[CaseSummary]:
        return await gateway.list_cases(status=status_is.value if status_is else None, limit=limit)

    @app.get("/cases/{case_id}")
    async def read_case(case_id: CaseId, _: Annotated[Caller, Depends(reader)]) -> CaseState:
        return await gateway.status(case_id)

    async def tell(case_id: CaseId, signal: str, message: BaseModel) -> dict[str, str]:
        await gateway.tell(case_id, signal, message)
        return {"case_id": case_id, "accepted": signal}

    @app.post("/cases/{case_id}/evidence", status_code=status.HTTP_202_ACCEPTED)
    async def evidence(
        case_id: CaseId, body: EvidenceSubmitted, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "evidence_submitted", body)

    @app.post("/cases/{case_id}/shipped-back", status_code=status.HTTP_202_ACCEPTED)
    async def shipped_back(
        case_id: CaseId, body: ShippedBack, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "shipped_back", body)

    @app.post("/cases/{case_id}/complaint", status_code=status.HTTP_202_ACCEPTED)
    async def complaint(
        case_id: CaseId, body: Complaint, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "complaint", body)

    @app.post("/cases/{case_id}/dispute", status_code=status.HTTP_202_ACCEPTED)
    async def dispute(
        case_id: CaseId, body: Dispute, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "dispute", body)

    @app.post("/cases/{case_id}/intercept", status_code=status.HTTP_202_ACCEPTED)
    async def intercept(
        case_id: CaseId, body: InterceptRequested, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "intercept_requested", body)

    @app.post("/cases/{case_id}/withdrawal", status_code=status.HTTP_202_ACCEPTED)
    async def withdrawal(
        case_id: CaseId, body: Withdrawal, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        return await tell(case_id, "withdraw", body)

    @app.post("/cases/{case_id}/remedy")
    async def remedy(
        case_id: CaseId, body: RemedyChoice, _: Annotated[Caller, Depends(service)]
    ) -> CaseState:
        return await gateway.decide(case_id, "choose_remedy", body)

    @app.post("/cases/{case_id}/refund-consent")
    async def refund_consent(
        case_id: CaseId, body: RefundConsent, _: Annotated[Caller, Depends(service)]
    ) -> CaseState:
        return await gateway.decide(case_id, "consent_to_refund", body)

    @app.post("/cases/{case_id}/decision")
    async def decision(
        case_id: CaseId, body: DecisionBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseState:
        return await gateway.decide(
            case_id,
            "decide",
            ReviewDecision(actor=caller.actor, role=caller.role, **body.model_dump()),
        )

    @app.post("/cases/{case_id}/compensation")
    async def compensation(
        case_id: CaseId, body: CompensationBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseState:
        offer = CompensationOffer(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "offer_compensation", offer)

    @app.post("/cases/{case_id}/escalation")
    async def escalation(
        case_id: CaseId, body: EscalationBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseState:
        request = EscalationRequest(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "escalate", request)

    @app.post("/cases/{case_id}/call")
    async def call(
        case_id: CaseId, body: CallBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseState:
        request = CallRequest(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "request_call", request)

    @app.post("/cases/{case_id}/assignment")
    async def assignment(
        case_id: CaseId, body: AssignmentBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseState:
        assigned = Assignment(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "assign", assigned)

    @app.post("/cases/{case_id}/deadline-extension")
    async def deadline_extension(
        case_id: CaseId, body: ExtensionBody, caller: Annotated[Caller, Depends(staff)]
    ) -> CaseState:
        extension = DeadlineExtension(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "extend_deadline", extension)

    @app.post("/cases/{case_id}/ruling")
    async def ruling(
        case_id: CaseId, body: RulingBody, caller: Annotated[Caller, Depends(arbiter)]
    ) -> CaseState:
        ruled = ArbitrationRuling(actor=caller.actor, role=caller.role, **body.model_dump())
        return await gateway.decide(case_id, "apply_ruling", ruled)

    @app.post("/claims/{claim_id}/carrier-response", status_code=status.HTTP_202_ACCEPTED)
    async def carrier_response(
        claim_id: CaseId, body: CarrierResponse, _: Annotated[Caller, Depends(service)]
    ) -> dict[str, str]:
        """R15: the carrier claims desk's callback; a claim that can no longer take it
        answers 404 and the answer is kept for a person."""
        await gateway.carrier_response(claim_id, body)
        return {"claim_id": claim_id, "accepted": "carrier_response"}

    @app.post("/scans", status_code=status.HTTP_202_ACCEPTED)
    async def scans(batch: ScanBatch, _: Annotated[Caller, Depends(scanner)]) -> list[ScanResult]:
        """R26: accepted once durably signalled; a repeated scan changes nothing; a barcode
        matching no open case answers 404 and the scan is kept for a person."""
        problems = await gateway.scan_batch(
            [
                (s.barcode, WarehouseScan.model_validate(s.model_dump(exclude={"barcode"})))
                for s in batch.scans
            ]
        )
        results = [
            ScanResult(scan_id=submission.scan_id, barcode=submission.barcode,
                       accepted=problem is None, problem=str(problem) if problem else None)
            for submission, problem in zip(batch.scans, problems, strict=True)
        ]  # fmt: skip
        if not all(r.accepted for r in results):
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                detail=[r.model_dump() for r in results],
            )
        return results

    return app
