"""What the API's middlewares share. They are plain ASGI: Starlette's BaseHTTPMiddleware
costs every request a task and a stream copy."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HttpMiddleware:
    """Lets everything but HTTP (lifespan) through untouched; `handle` sees HTTP only."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


def on_response_start(send: Send, see: Callable[[Message], None]) -> Send:
    """`send`, with `see` shown the answer's start (status and headers, still editable)
    before it goes out."""

    async def seen(message: Message) -> None:
        if message["type"] == "http.response.start":
            see(message)
        await send(message)

    return seen
