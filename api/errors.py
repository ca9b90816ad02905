"""The API's one error shape: every 4xx and 5xx body names the field and the rule, in the
same JSON, and never a Python class name or the refused input itself."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

# What one answer may say: enough for a person, never the size of the input (a body of
# 10 000 unknown keys would otherwise be 10 000 errors).
MAX_MESSAGE_CHARS = 500
MAX_ERRORS = 20
_RULE = re.compile(r"\bR([1-9]|1[0-9]|2[0-7])\b")
# "field: message" or "field.sub: message": the messages of domain.md's refusals start so.
_FIELD_PREFIX = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*): ")


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


def from_message(message: str, field: str | None = None) -> ApiErrorItem:
    """An item from input refused at the edge: a leading `field: ` names the field (unless
    one is given), the first rule id named is the rule."""
    field, text = _field_and_text(message, field)
    rule = _RULE.search(text)
    return ApiErrorItem(field=field, rule=rule.group(0) if rule else None, message=_capped(text))


def from_refusal(message: str, rule: str | None) -> ApiErrorItem:
    """An item from a case's typed refusal: the rule is the one it carries (None where no
    rule of domain.md refuses), never read from its words; a leading `field: ` still
    names the field."""
    field, text = _field_and_text(message, None)
    return ApiErrorItem(field=field, rule=rule, message=_capped(text))


def _field_and_text(message: str, field: str | None) -> tuple[str | None, str]:
    text = message.strip()
    if (named := _FIELD_PREFIX.match(text)) and not _RULE.fullmatch(named.group(1)):
        field, text = field or named.group(1), text[named.end() :]
    return field, text


def from_validation(errors: Sequence[Mapping[str, Any]]) -> list[ApiErrorItem]:
    """Pydantic's (or FastAPI's) errors, each naming its field, at most MAX_ERRORS of them;
    the refused input is not echoed, so the answer stays small whatever was sent."""
    items = []
    for error in errors[:MAX_ERRORS]:
        # FastAPI says where ("body", "query", "header", "path") first; the field follows.
        location = [str(part) for part in error.get("loc", ())]
        if location[:1] == ["body"]:
            location = location[1:]
        # None for the body as a whole: a model check's message names its field itself.
        field = ".".join(location) or None
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            message = f"not valid JSON: {error.get('ctx', {}).get('error', 'decode error')}"
            field = "body"
        items.append(from_message(message, field=field))
    if len(errors) > MAX_ERRORS:
        more = f"and {len(errors) - MAX_ERRORS} more errors like these"
        items.append(ApiErrorItem(field=None, rule=None, message=more))
    return items


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


async def http_error(request: Request, error: Exception) -> JSONResponse:
    """401, 403, 404 (no such route), 405, 413 in the one shape: nothing was accepted,
    nothing is kept. For the API and the codec server alike."""
    if not isinstance(error, HTTPException):
        raise error
    item = from_message(error.detail)
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
