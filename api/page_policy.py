"""What a browser may do with a page the API serves: one middleware for every answer a
browser renders as a document (HTML, and SVG, which can hold script), whichever route
made it, so a page added later is covered without thinking of it.

- `frame-ancestors 'none'` and `X-Frame-Options: DENY` (for browsers without CSP level 2):
  no other site can frame a page and trick an operator into clicking on it.
- A Content-Security-Policy that allows no script at all on the API's own pages (they
  have none: the session form, the report page with its inline PNG plots and one inline
  style sheet), forms posted only back to the API, no <base> to redirect relative links.
- The desk's pages (desk/) load its own script and style sheet from this origin, and
  nothing inline.
- The interactive docs (/docs, /redoc: api/docs_pages.py) load Swagger UI's and ReDoc's
  bundles from this origin and start them with one inline script each: their policy
  allows this origin and inline script, and no other origin at all (ReDoc runs its
  search in a worker made from a blob)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware, on_response_start
from api.docs_pages import DOCS_PATH, OAUTH2_REDIRECT_PATH, REDOC_PATH
from desk.gate import DESK_PATH

# Documents a browser renders (and could run script in) rather than hands to a script.
_DOCUMENT_TYPES = ("text/html", "image/svg+xml")
_EVERY_PAGE = "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
PAGE_POLICY = f"default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; {_EVERY_PAGE}"
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    f"img-src 'self' data:; connect-src 'self'; worker-src blob:; {_EVERY_PAGE}"
)
DOCS_PATHS = frozenset({DOCS_PATH, OAUTH2_REDIRECT_PATH, REDOC_PATH})
# The desk's pages run its own script and style sheet (served by the API, none inline).
DESK_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    f"connect-src 'self'; {_EVERY_PAGE}"
)


class PagePolicy(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        policy = (
            DOCS_POLICY if path in DOCS_PATHS
            else DESK_POLICY if path == DESK_PATH or path.startswith(f"{DESK_PATH}/")
            else PAGE_POLICY
        )  # fmt: skip

        def with_policy(start: Message) -> None:
            headers = MutableHeaders(scope=start)
            if headers.get("content-type", "").startswith(_DOCUMENT_TYPES):
                headers["Content-Security-Policy"] = policy
                headers["X-Frame-Options"] = "DENY"

        await self._app(scope, receive, on_response_start(send, with_policy))
