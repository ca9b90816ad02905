"""Each request's id: the caller's `X-Request-ID` when it is a plain token, else a new
one; sent back on the answer and put on every log line written while it is handled."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infra.logs import request_id

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only if it cannot smuggle anything into a log line.
_PLAIN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        sent = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
        this_id = sent if _PLAIN_ID.match(sent) else uuid.uuid4().hex
        token = request_id.set(this_id)

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = this_id
            await send(message)

        try:
            await self._app(scope, receive, with_id)
        finally:
            request_id.reset(token)
