"""Each request's id: the caller's `X-Request-ID` when it is a plain token, else a new
one; sent back on the answer and put on every log line written while it is handled."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware, on_response_start
from infra.logs import request_id

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only if it cannot smuggle anything into a log line.
_PLAIN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIds(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        this_id = sent if _PLAIN_ID.match(sent) else uuid.uuid4().hex
        token = request_id.set(this_id)

        def with_id(start: Message) -> None:
            MutableHeaders(scope=start)[REQUEST_ID_HEADER] = this_id

        try:
            await self._app(scope, receive, on_response_start(send, with_id))
        finally:
            request_id.reset(token)
