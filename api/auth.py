"""Authentication first, then authority. `Authentication` (plain ASGI) proves who calls
before anything reads the body: no or an invalid credential is 401 and the body is never
read, parsed, echoed or stored. Each route then names the roles it allows (`requires`,
403 otherwise); the actor and role the ledger records (R23) come only from the proof."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from opentelemetry import trace
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.codec import (
    SESSION_PATH,
    is_codec_preflight,
    is_run_codec_request,
    session_authorization,
)
from api.docs_pages import DOCS_ASSETS_PATH, DOCS_PATH, OAUTH2_REDIRECT_PATH, REDOC_PATH
from api.errors import FieldHTTPException
from api.status import STATUS_PATHS
from desk.gate import DESK_PATH, DeskGate, is_browser_page
from domain.case import Role
from infra.security.identity import (
    Authenticator,
    Caller,
    Principal,
    Unauthenticated,
    acting_role,
    parse_bearer,
)

# Only for the OpenAPI document (the "Authorize" button, the 401 in every operation);
# `Authentication` has already checked the header.
_bearer = HTTPBearer(auto_error=False)
# The API's own description reads without a credential; everything else needs one.
PUBLIC_PATHS = frozenset(
    {"/openapi.json", DOCS_PATH, OAUTH2_REDIRECT_PATH, REDOC_PATH, SESSION_PATH, *STATUS_PATHS}
)


# A no-op unless the API traces (infra/tracing.py): bench/breakdown.py reads it.
_STAGES = trace.get_tracer("aftersales.auth")


class Authentication:
    """`desk`: the operators' desk, whose pages (and the report page, when no bearer token
    or codec session comes with it) are proven by its own session cookie instead."""

    def __init__(
        self, app: ASGIApp, authenticator: Authenticator, desk: DeskGate | None = None
    ) -> None:
        self._app = app
        self._authenticator = authenticator
        self._desk = desk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in PUBLIC_PATHS
            or scope["path"].startswith(f"{DOCS_ASSETS_PATH}/")
            or is_codec_preflight(scope)
            or is_run_codec_request(scope)  # its path's secret is checked by its route
        ):
            await self._app(scope, receive, send)
            return
        authorization = Headers(scope=scope).get("authorization") or session_authorization(scope)
        on_desk = scope["path"] == DESK_PATH or scope["path"].startswith(f"{DESK_PATH}/")
        if (
            self._desk is not None
            and (on_desk or authorization is None)
            and is_browser_page(scope["path"])
        ):
            await self._desk.admit(scope, receive, send, self._app)
            return
        try:
            with _STAGES.start_as_current_span("authenticate"):
                principal = await self._prove(authorization)
        except Unauthenticated as problem:
            await _unauthorised(str(problem))(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self._app(scope, receive, send)

    async def _prove(self, authorization: str | None) -> Principal:
        credential = parse_bearer(authorization)
        if self._authenticator.staff.fetches_keys:
            # A JWKS URL may be fetched (cached between fetches): not on the event loop.
            return await asyncio.to_thread(self._authenticator.authenticate, credential)
        return self._authenticator.authenticate(credential)


def _unauthorised(problem: str) -> JSONResponse:
    """401 in the API's one error shape, with the RFC 6750 challenge."""
    return JSONResponse(
        {
            "detail": f"Authorization: {problem}",
            "errors": [{"field": "Authorization", "rule": None, "message": problem}],
        },
        status_code=status.HTTP_401_UNAUTHORIZED,
        headers={"WWW-Authenticate": 'Bearer realm="aftersales"'},
    )


def requires(*roles: Role) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the proven caller acting in the first of `roles` (most authority
    first) they hold, or 403."""

    # async: FastAPI would run a plain function in a thread for every request.
    async def caller(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Caller:
        principal: Principal = request.state.principal
        role = acting_role(principal, roles)
        if role is None:
            allowed = ", ".join(r.value for r in roles)
            raise FieldHTTPException(
                status.HTTP_403_FORBIDDEN,
                f"{principal.actor} may not do this (allowed: {allowed})",
                field="role",
            )
        return Caller(actor=principal.actor, role=role, carriers=principal.carriers)

    return caller
