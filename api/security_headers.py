"""The headers every answer of the API carries."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware, on_response_start

# On every answer: no content sniffing, and no cache keeps a case (personal data) or a
# decision; nothing the API answers is meant to be cached, so all answers say so.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


class SecurityHeaders(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:

        def with_headers(start: Message) -> None:
            MutableHeaders(scope=start).update(SECURITY_HEADERS)

        await self._app(scope, receive, on_response_start(send, with_headers))
