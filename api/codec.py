"""The codec server: Temporal's remote codec protocol, so the Temporal UI and CLI of an
authorised operator show cases decoded while Temporal itself only ever holds ciphertext.

`POST /codec/decode` and `/codec/encode` take and answer `{"payloads": [...]}` (the
Payloads protobuf as JSON, bytes in base64). Staff only. How the caller proves it:

- a bearer token: the CLI (`--codec-auth`), and a Temporal UI that has its own login
  (OIDC) and passes the operator's access token (`passAccessToken`);
- the dev server's UI (`make run`) and compose's have no login and so no token to pass;
  what they can send is a cookie (`includeCredentials`). An operator stores a staff token
  in that cookie once at `/codec/session`; it is HttpOnly and SameSite=Strict (the UI on
  localhost:8233 and the API on localhost:8000 are the same site, another site's page
  never sends it), Secure unless the API is reached on loopback, and only kept when
  posted from that page itself (no other site can sign the browser in). The same cookie
  opens the read-only staff pages (`STAFF_PAGES`: the report page and its plots) in that
  browser.

- `make run`'s own dev server UI decodes with no step at all: `make run` hands it a codec
  endpoint of this run only, `/codec/run/<secret>` (`RunCodec`): decode only, from loopback
  only, the secret in the path as the credential (docs/sealing.md says why that is safe
  on one's own machine, and what it does not protect).

CORS lets the UI's origin call the routes from the browser; the preflight carries no
credentials and is answered before authentication (`api.auth.Authentication` lets it
through, and takes the session cookie as the bearer token on these routes)."""

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from html import escape
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from google.protobuf import json_format
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import cookie_parser
from starlette.types import Scope
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from api.errors import FieldHTTPException, http_error
from domain.case import STAFF_BY_AUTHORITY
from infra.security.codec import CodecError
from infra.security.identity import (
    Authenticator,
    Caller,
    Unauthenticated,
    acting_role,
    is_loopback,
)

CODEC_PATH = "/codec"
# The form that keeps a token in the cookie: the one route that reads a body before the
# caller is proven, because that body is the credential (never stored nor echoed).
SESSION_PATH = f"{CODEC_PATH}/session"
SESSION_COOKIE = "aftersales_codec"
SESSION_LENGTH = timedelta(hours=8)
# Read-only pages an operator opens in a browser, which cannot send a bearer header: the
# session cookie proves the caller there too (R24's report page and its plots).
STAFF_PAGES = ("/reports/page", "/reports/plots/")
# `make run`'s codec endpoint for its own UI: /codec/run/<secret> (RunCodec).
RUN_CODEC_PATH = f"{CODEC_PATH}/run"
# A post from this page ("same-origin"), or typed by the operator ("none": no page).
_SAME_ORIGIN_FETCHES = frozenset({"same-origin", "none"})
# The headers the Temporal UI sends with a codec request: with `passAccessToken` its
# login's access token and, from UI 2.4x on, the ID token (Authorization-Extras).
_UI_HEADERS = ["Authorization", "Authorization-Extras", "Content-Type", "X-Namespace"]


@dataclass(frozen=True)
class RunCodec:
    """`make run`'s codec credential: a secret of this run (256 random bits), in the path
    of the endpoint the dev server's UI is given. Whoever holds the URL decodes, nothing
    more: no encode (that UI's writes have nothing to seal for us: decisions go through
    the API with grants), and only over loopback with a loopback Host (a page that
    rebinds its own name to 127.0.0.1 is refused)."""

    secret: str

    @classmethod
    def new(cls) -> "RunCodec":
        return cls(secrets.token_urlsafe(32))

    def endpoint(self, api_origin: str) -> str:
        """What the UI is given; it appends /decode (and /encode, refused here)."""
        return f"{api_origin}{RUN_CODEC_PATH}/{self.secret}"

    def admits(self, secret: str) -> bool:
        return secrets.compare_digest(secret.encode(), self.secret.encode())


def codec_app(
    codec: PayloadCodec,
    staff: Callable[..., Awaitable[Caller]],
    origins: Sequence[str],
    authenticator: Authenticator,
    run_codec: RunCodec | None = None,
) -> FastAPI:
    """An app of its own, mounted at /codec by create_app: its CORS policy covers these
    routes only, not the case API. `run_codec`: `make run`'s endpoint for its own UI."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["POST"],
        allow_headers=_UI_HEADERS,
        allow_credentials=True,
        max_age=600,
    )
    app.add_exception_handler(NotPayloadsError, _not_payloads)
    app.add_exception_handler(HTTPException, http_error)

    @app.post("/encode")
    async def encode(request: Request, _: Annotated[Caller, Depends(staff)]) -> Response:
        payloads = await _payloads(request)
        return _answer(await codec.encode(payloads))

    @app.post("/decode")
    async def decode(request: Request, _: Annotated[Caller, Depends(staff)]) -> Response:
        return _answer(await _decoded(codec, await _payloads(request)))

    if run_codec is not None:

        @app.post("/run/{secret}/decode")
        async def decode_for_this_run(secret: str, request: Request) -> Response:
            """The dev server UI's decode (`make run`): the path's secret is the
            credential, checked before the body is read."""
            _admit_to_run_codec(run_codec, secret, request)
            return _answer(await _decoded(codec, await _payloads(request)))

    @app.get("/session", response_class=HTMLResponse)
    async def session_form() -> str:
        return _SESSION_FORM

    @app.post("/session", response_class=HTMLResponse)
    async def open_session(request: Request) -> Response:
        """Keeps a staff token for the browser's codec requests (checked again on each of
        them as a bearer token is). Only a valid staff token, posted from this page, is
        kept: another site cannot log the operator's browser in as someone else (login
        CSRF: its own valid token would be enough, so the token alone proves nothing)."""
        if _posted_from_another_site(request):
            return HTMLResponse(_CROSS_SITE, status_code=status.HTTP_403_FORBIDDEN)
        token = parse_qs((await request.body()).decode("utf-8", "replace")).get("token", [""])[0]
        if not token.strip():
            return HTMLResponse(_SESSION_FORM, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
        try:
            principal = authenticator.authenticate(token.strip())
        except Unauthenticated:
            return HTMLResponse(_SESSION_FORM, status_code=status.HTTP_401_UNAUTHORIZED)
        if acting_role(principal, STAFF_BY_AUTHORITY) is None:
            return HTMLResponse(_SESSION_FORM, status_code=status.HTTP_403_FORBIDDEN)
        answer = HTMLResponse(_SESSION_OPENED)
        answer.set_cookie(
            SESSION_COOKIE,
            token.strip(),
            max_age=int(SESSION_LENGTH.total_seconds()),
            path="/",
            httponly=True,
            samesite="strict",
            # Off loopback the cookie holds a bearer token: never over plain HTTP.
            secure=not is_loopback(request.url.hostname or ""),
        )
        return answer

    return app


def _admit_to_run_codec(run_codec: RunCodec, secret: str, request: Request) -> None:
    if not run_codec.admits(secret):
        raise FieldHTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "not this run's endpoint (`make run` gives its UI a new one on every start: "
            "reload the page)",
            field="codec",
        )
    peer = request.client.host if request.client else ""
    host = request.url.hostname or ""
    if not (is_loopback(peer) and is_loopback(host)):
        raise FieldHTTPException(
            status.HTTP_403_FORBIDDEN,
            # Neither name is echoed (docs/contract.md): the Host is the caller's input.
            "this run's endpoint answers loopback only, under a loopback name",
            field="codec",
        )


async def _decoded(codec: PayloadCodec, payloads: Sequence[Payload]) -> list[Payload]:
    """A payload that cannot be opened (its case was erased, or its key is not in the
    ring) comes back as it was: still encrypted, the others decoded."""
    decoded = []
    for payload in payloads:
        try:
            decoded.extend(await codec.decode([payload]))
        except CodecError:
            decoded.append(payload)
    return decoded


def is_run_codec_request(scope: Scope) -> bool:
    """A request for `make run`'s own codec endpoint: its path's secret is the credential
    (`RunCodec`), checked by the route itself; no bearer token is asked for."""
    path: str = scope["path"]
    return path.startswith(f"{RUN_CODEC_PATH}/")


def _posted_from_another_site(request: Request) -> bool:
    """Whether a browser posted the form from a page not of this origin. Headers a page's
    script cannot set decide: `Sec-Fetch-Site` (every current browser sends it), else
    `Origin` (sent with every cross-origin POST; "null" from a sandboxed frame or a data:
    URL). A request with neither comes from no browser, which no other site can drive. A
    stateless check rather than a CSRF token: the form is one POST of a credential, and a
    token would need a state of its own before the operator has any session."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in _SAME_ORIGIN_FETCHES
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin is not None and origin != own


def is_codec_preflight(scope: Scope) -> bool:
    """A browser's CORS preflight for a codec route: it carries no credentials by design."""
    return (
        scope["method"] == "OPTIONS"
        and scope["path"].startswith(f"{CODEC_PATH}/")
        and "access-control-request-method" in Headers(scope=scope)
    )


def session_authorization(scope: Scope) -> str | None:
    """On the codec routes and the staff pages a browser opens, a request with no
    Authorization header but the session cookie is checked as if the cookie's token had
    come as a bearer token: one authentication path, so a wrong token only ever gets 401.
    Everything else needs the header: the cookie is a browser's convenience, and a page
    that only reads (GET) is the most a cross-site request could reach with it."""
    path = scope["path"]
    on_a_page = scope["method"] == "GET" and path.startswith(STAFF_PAGES)
    if not (path.startswith(f"{CODEC_PATH}/") or on_a_page):
        return None
    token = cookie_parser(Headers(scope=scope).get("cookie", "")).get(SESSION_COOKIE)
    return f"Bearer {token}" if token else None


class NotPayloadsError(Exception):
    pass


async def _payloads(request: Request) -> list[Payload]:
    try:
        parsed = json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError:
        # The parser's words quote the input ("... which is {'a': 1}"): not passed on.
        raise NotPayloadsError from None
    return list(parsed.payloads)


async def _not_payloads(_: Request, __: Exception) -> JSONResponse:
    message = 'not a Temporal Payloads JSON: {"payloads": [{"metadata": {...}, "data": ...}]}'
    return JSONResponse(
        {
            "detail": f"payloads: {message}",
            "errors": [{"field": "payloads", "rule": None, "message": message}],
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def _answer(payloads: Sequence[Payload]) -> Response:
    return Response(
        json_format.MessageToJson(Payloads(payloads=payloads), indent=None),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


_SESSION_FORM = f"""<!doctype html>
<title>aftersales: staff session in this browser</title>
<form method="post" action="/codec/session">
  <p>Staff token, for the Temporal UI to decode cases through this codec server and for
  the report page:</p>
  <input type="password" name="token" autocomplete="off" required>
  <button>Keep for {escape(str(SESSION_LENGTH))}</button>
</form>
"""
_CROSS_SITE = """<!doctype html>
<title>aftersales: not kept</title>
<p>Not kept: the form was posted from another site. Open <a href="/codec/session">this
page</a> and post the token from it.</p>
"""
_SESSION_OPENED = """<!doctype html>
<title>aftersales: codec session</title>
<p>Kept. In the Temporal UI's codec server settings, tick "Include cross-origin
credentials"; its pages then show cases decoded. The report page (R24) opens in this
browser too: <a href="/reports/page">/reports/page</a>.</p>
"""
