"""The API's one error shape: every 4xx and 5xx body names the field and the rule, in the
same JSON, and never a Python class name or the refused input itself."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from temporalio.service import RPCError

from api.security_headers import SECURITY_HEADERS
from api.strict_json import DuplicateKeyError
from domain.errors import FieldError
from domain.rules import Rule
from infra.case_errors import (
    CaseErasedError,
    ReceiptRefusedError,
    RefusedDecisionError,
    RefusedInputError,
    UnknownCaseError,
    WorkerUnavailableError,
)
from infra.case_notes import NoteIdTakenError, UnknownNoteCaseError
from infra.kept_for_review import AlreadyResolvedError, UnknownKeptItemError
from infra.outages import DATABASE_DOWN, unreachable_service
from infra.security.privacy import CustomerHasOpenCasesError

if TYPE_CHECKING:
    from api.refusal_budget import RefusalBudget
    from infra.gateway import CaseGateway

# What one answer may say: enough for a person, never the size of the input (a body of
# 10 000 unknown keys would otherwise be 10 000 errors).
MAX_MESSAGE_CHARS = 500
MAX_ERRORS = 20


class ApiErrorItem(BaseModel):
    field: str | None = Field(description="the dotted body field or header it concerns")
    rule: str | None = Field(description="the rule of domain.md involved (R1..R27), if any")
    message: str


class ApiError(BaseModel):
    """Every error answer: one line for people, and each problem for programs."""

    detail: str = Field(description="one line: field: message (rule)")
    errors: list[ApiErrorItem]


class _AsciiJSONResponse(JSONResponse):
    """A message may quote input holding a lone surrogate (a JSON escape), which UTF-8
    cannot encode; escaped to ASCII, valid JSON still goes out."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def error_response(
    status_code: int, errors: Sequence[ApiErrorItem], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = ApiError(detail=one_line(errors), errors=list(errors))
    return _AsciiJSONResponse(body.model_dump(), status_code=status_code, headers=headers)


def one_line(errors: Iterable[ApiErrorItem]) -> str:
    parts = []
    for error in errors:
        text = f"{error.field}: {error.message}" if error.field else error.message
        if error.rule and error.rule not in error.message:
            text += f" ({error.rule})"
        parts.append(text)
    return "; ".join(parts)


def item_of(error: FieldError) -> ApiErrorItem:
    """An item from an error that names its field and rule (domain/errors.py)."""
    return ApiErrorItem(field=error.field, rule=error.rule, message=_capped(error.message))


def from_validation(errors: Sequence[Mapping[str, Any]]) -> list[ApiErrorItem]:
    """Pydantic's (or FastAPI's) errors, each naming its field, at most MAX_ERRORS of them;
    the refused input is not echoed, so the answer stays small whatever was sent."""
    items = []
    for error in errors[:MAX_ERRORS]:
        items.append(_validation_item(error))
    if len(errors) > MAX_ERRORS:
        more = f"and {len(errors) - MAX_ERRORS} more errors like these"
        items.append(ApiErrorItem(field=None, rule=None, message=more))
    return items


def _validation_item(error: Mapping[str, Any]) -> ApiErrorItem:
    context = error.get("ctx", {})
    if error.get("type") == "json_invalid":
        message = f"not valid JSON: {context.get('error', 'decode error')}"
        return ApiErrorItem(field="body", rule=None, message=_capped(message))
    # FastAPI says where ("body", "query", "header", "path") first; the field follows.
    location = [str(part) for part in error.get("loc", ())]
    if location[:1] == ["body"]:
        location = location[1:]
    field = ".".join(location) or None
    # A model's own check raises an error that names its field and rule (domain/errors.py);
    # pydantic keeps it in the context.
    if isinstance(raised := context.get("error"), FieldError):
        return ApiErrorItem(
            field=field or raised.field, rule=raised.rule, message=_capped(raised.message)
        )
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return ApiErrorItem(field=field, rule=None, message=_capped(message))


def _capped(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def documented(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each error status it may answer, with the error model."""
    return {code: {"model": ApiError, "description": _MEANING[code]} for code in status_codes}


_MEANING = {
    400: "the request is malformed",
    401: "no valid credentials",
    403: "the caller's role may not do this",
    404: "no such case, claim or barcode (kept for a person where it carried news)",
    405: "the method is not allowed on this path",
    409: "refused by the case's rules (the rule and reason are named)",
    410: "the case's personal data was erased (GDPR art. 17): it can no longer be read",
    413: "the body is larger than the API takes",
    415: "the body is not JSON",
    422: "a field is invalid (the field and rule are named)",
    429: "this client's budget of refused input is spent: send writes again after Retry-After",
    503: "PostgreSQL or Temporal cannot be reached right now; send the request again",
}


class FieldHTTPException(HTTPException):
    """An HTTP refusal that names its field (and rule) as data; `detail` is the one line."""

    def __init__(
        self, status_code: int, message: str, *, field: str | None = None, rule: Rule | None = None
    ) -> None:
        super().__init__(status_code, f"{field}: {message}" if field else message)
        self.field = field
        self.rule = rule
        self.message = message


def http_error_item(error: HTTPException) -> ApiErrorItem:
    if isinstance(error, FieldHTTPException):
        return ApiErrorItem(field=error.field, rule=error.rule, message=_capped(error.message))
    # Starlette's own (404 no such route, 405): its words name no field and no rule.
    return ApiErrorItem(field=None, rule=None, message=_capped(str(error.detail)))


async def http_error(request: Request, error: Exception) -> JSONResponse:
    """401, 403, 404 (no such route), 405, 413 in the one shape: nothing was accepted,
    nothing is kept. For the API and the codec server alike."""
    if not isinstance(error, HTTPException):
        raise error
    item = http_error_item(error)
    headers = dict(error.headers or {})
    if error.status_code == status.HTTP_401_UNAUTHORIZED:
        item.field = "Authorization"  # the header that lacks a valid credential
    if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        headers["Allow"] = allowed_methods(request)
    return error_response(error.status_code, [item], headers)


# The methods a 405's Allow may name.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method the request's path takes (RFC 9110's Allow on a 405). Starlette's own
    header names the first route of the path only: `/cases` has one route per method,
    one of them in an included router (api/queues.py), whose routes FastAPI keeps behind
    one entry: each method is asked of every route, as routing itself would."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in sorted(_METHODS)
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    )


# How long a client is asked to wait before sending again through an outage.
RETRY_AFTER_S = 5


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


class _Refusals:
    """Bad input loses nothing: the body as received is kept with the answer's reason
    before the answer goes out; if it cannot be kept (PostgreSQL down), 503 asks for the
    request again. A read sends nothing to keep. Each refusal spends from the caller's
    budget (api/refusal_budget.py)."""

    def __init__(self, gateway: CaseGateway, budget: RefusalBudget) -> None:
        self._gateway = gateway
        self._budget = budget

    async def refuse(
        self, request: Request, status_code: int, errors: list[ApiErrorItem]
    ) -> JSONResponse:
        if request.method != "GET":
            try:
                await self._gateway.record_refused_input(
                    source="api",
                    operation=f"{request.method} {request.url.path}",
                    payload=(await request.body()).decode("utf-8", "backslashreplace"),
                    errors=one_line(errors),
                )
            except DATABASE_DOWN as outage:
                return await _unavailable(request, outage)
            self.spend(request)
        return error_response(status_code, errors)

    def spend(self, request: Request) -> None:
        self._budget.spend(request.state.principal.actor)

    def kept(self, status_code: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        """A handler that keeps the refused body, for an error naming its field and rule."""

        async def handler(request: Request, error: Exception) -> JSONResponse:
            if not isinstance(error, FieldError):
                raise error
            return await self.refuse(request, status_code, [item_of(error)])

        return handler


def _answered(
    status_code: int, headers: Mapping[str, str] | None = None
) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    """A handler that answers an error naming its field and rule, and keeps nothing of
    the request."""

    async def handler(_: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, FieldError):
            raise error
        return error_response(status_code, [item_of(error)], headers=headers)

    return handler


def add_error_handlers(app: FastAPI, gateway: CaseGateway, budget: RefusalBudget) -> None:
    """Every error the API answers, in the one shape (`ApiError`)."""
    refusals = _Refusals(gateway, budget)

    async def unknown_case(request: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, UnknownCaseError):
            raise error
        if "case_id" not in request.path_params:
            # A carrier's answer to no claim: the gateway kept it (R15).
            refusals.spend(request)
            return error_response(status.HTTP_404_NOT_FOUND, [item_of(error)])
        return await refusals.refuse(request, status.HTTP_404_NOT_FOUND, [item_of(error)])

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, RequestValidationError | ValidationError):
            raise error
        errors = from_validation(error.errors())
        if isinstance(error.__cause__, DuplicateKeyError):
            message = "duplicate key: a key may appear once in a JSON object"
            errors = [ApiErrorItem(field=error.__cause__.key, rule=None, message=message)]
        return await refusals.refuse(request, status.HTTP_422_UNPROCESSABLE_CONTENT, errors)

    conflict, unprocessable = status.HTTP_409_CONFLICT, status.HTTP_422_UNPROCESSABLE_CONTENT
    retry = {"Retry-After": str(RETRY_AFTER_S)}
    handlers: dict[type[Exception], Callable[[Request, Exception], Awaitable[JSONResponse]]] = {
        HTTPException: http_error,
        UnknownCaseError: unknown_case,
        ReceiptRefusedError: refusals.kept(unprocessable),
        RefusedInputError: refusals.kept(conflict),
        RefusedDecisionError: refusals.kept(conflict),
        UnknownKeptItemError: _answered(status.HTTP_404_NOT_FOUND),
        UnknownNoteCaseError: refusals.kept(status.HTTP_404_NOT_FOUND),
        AlreadyResolvedError: refusals.kept(conflict),
        NoteIdTakenError: refusals.kept(conflict),
        CaseErasedError: _answered(status.HTTP_410_GONE),
        # Not kept in refused_inputs: the path names the customer being erased.
        CustomerHasOpenCasesError: _answered(conflict),
        WorkerUnavailableError: _answered(status.HTTP_503_SERVICE_UNAVAILABLE, retry),
        **dict.fromkeys((RPCError, *DATABASE_DOWN), _unavailable),
        Exception: _unexpected,
        RequestValidationError: invalid,
        ValidationError: invalid,
    }
    for error_type, handler in handlers.items():
        app.add_exception_handler(error_type, handler)
