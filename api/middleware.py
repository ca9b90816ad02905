"""The API's body limit, and the server's own timing of each answer."""

from __future__ import annotations

import time

from fastapi import status
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from api.asgi import HttpMiddleware, on_response_start
from api.errors import FieldHTTPException, error_response, http_error_item

MAX_BODY_BYTES = 256 * 1024


class _BodyTooLargeError(FieldHTTPException):
    def __init__(self) -> None:
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE, f"larger than {MAX_BODY_BYTES} bytes", field="body"
        )


class BodyLimit(HttpMiddleware):
    """The body limit, on the stream: a declared Content-Length above MAX_BODY_BYTES is
    refused before anything is read, and a body without one (chunked) is counted as it
    arrives and refused at the chunk that crosses the limit, before it is parsed, kept or
    echoed. It wraps `receive` only, so it runs after authentication."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            too_large = _BodyTooLargeError()
            answer = error_response(too_large.status_code, [http_error_item(too_large)])
            await answer(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                # An HTTPException: FastAPI lets it through its body parsing to the app's
                # handler, which answers 413 in the error shape.
                raise _BodyTooLargeError
            return message

        await self._app(scope, limited, send)


class ServerTiming(HttpMiddleware):
    """`Server-Timing: app;dur=<ms>` on every answer (W3C Server Timing): how long the API
    took until its answer started, authentication included. Browsers' developer tools
    show it, and bench/desk_queues.py reads it, so a latency is the server's own, not
    the load generator's."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()

        def timed(start: Message) -> None:
            taken_ms = (time.perf_counter() - started) * 1000
            MutableHeaders(scope=start)["Server-Timing"] = f"app;dur={taken_ms:.1f}"

        await self._app(scope, receive, on_response_start(send, timed))
