"""Who is at the browser: the desk's pages (and the R24 report page) are proven by the
desk's session cookie, before anything reads a body. A browser with no session is sent to
sign in (303), never answered with the API's JSON 401."""

from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from desk.sessions import Session, SessionStore

DESK_PATH = "/desk"
SIGN_IN_PATH = f"{DESK_PATH}/sign-in"
CALLBACK_PATH = f"{DESK_PATH}/callback"
STATIC_PATH = f"{DESK_PATH}/static/"
SESSION_COOKIE = "aftersales_desk"
# The pages a signed-in browser opens outside /desk: R24's report page and its plots.
REPORT_PAGES = ("/reports/page", "/reports/plots/")
# Reachable signed out: signing in itself, and the stylesheet and script its page uses.
_OPEN_PATHS = (SIGN_IN_PATH, CALLBACK_PATH, STATIC_PATH)


def is_browser_page(path: str) -> bool:
    return path == DESK_PATH or path.startswith((f"{DESK_PATH}/", *REPORT_PAGES))


def sign_in_url(return_to: str) -> str:
    return f"{SIGN_IN_PATH}?return_to={quote(return_to, safe='/')}"


def safe_return(return_to: str | None) -> str:
    """A page of this site only (a path, never `//host` or a scheme): no open redirect."""
    if not return_to or not return_to.startswith("/") or return_to.startswith("//"):
        return DESK_PATH
    return return_to if "\\" not in return_to else DESK_PATH


class DeskGate:
    """Used by `api.auth.Authentication` for the browser's pages."""

    def __init__(self, sessions: SessionStore) -> None:
        self.sessions = sessions

    async def admit(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        path: str = scope["path"]
        if path.startswith(_OPEN_PATHS):
            await app(scope, receive, send)
            return
        session = await self.session_of(scope)
        if session is None:
            here = path + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
            # A form posted after the session ended returns to the page, not to the POST.
            return_to = here if scope["method"] == "GET" else DESK_PATH
            await RedirectResponse(sign_in_url(return_to), status_code=303)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = session.principal
        state["desk_session"] = session
        await app(scope, receive, send)

    async def session_of(self, scope: Scope) -> Session | None:
        session_id = cookie_parser(Headers(scope=scope).get("cookie", "")).get(SESSION_COOKIE)
        return await self.sessions.find(session_id) if session_id else None
