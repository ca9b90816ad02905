"""The HTTP server the API runs in: uvicorn, with a bound on each request's head (its
request line and headers) enforced as the bytes arrive.

An ASGI middleware is too late for this: the server has buffered and parsed the whole
head before the app is called, and httptools (uvicorn's parser) buffers a header of any
length, copying it as it grows (a 200 MB header held hundreds of MB for minutes). Here
the head is fed to the parser in small slices and counted; past MAX_HEAD_BYTES the
connection is answered 431 in the API's error shape and nothing more of it is parsed."""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.types import ASGIApp
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.errors import ApiError, ApiErrorItem, one_line

# A request's head: request line and every header. nginx's default is 4 x 8 KiB; a staff
# token is at most 8 KiB (infra/security/identity.py MAX_CREDENTIAL_CHARS) and no header this API
# reads needs more than a few hundred bytes.
MAX_HEAD_BYTES = 32 * 1024
# The head is fed to the parser this much at a time, so it is counted to within a slice
# and a body that arrives with the head in one read is not mistaken for head.
_HEAD_SLICE = 4 * 1024
# After the 431 is sent, what the client still sends is read and dropped for this long
# (so it reads the answer rather than a reset), then the connection is closed.
_LINGER_S = 2.0

_TOO_LARGE = ApiErrorItem(
    field="headers",
    rule=None,
    message=f"the request line and headers are larger than {MAX_HEAD_BYTES} bytes",
)
_TOO_LARGE_BODY = ApiError(detail=one_line([_TOO_LARGE]), errors=[_TOO_LARGE]).model_dump_json()
_TOO_LARGE_ANSWER = (
    "HTTP/1.1 431 Request Header Fields Too Large\r\n"
    "content-type: application/json\r\n"
    f"content-length: {len(_TOO_LARGE_BODY)}\r\n"
    "x-content-type-options: nosniff\r\n"
    "cache-control: no-store\r\n"
    "connection: close\r\n"
    "\r\n" + _TOO_LARGE_BODY
).encode("ascii")


class BoundedHeadProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a head larger than MAX_HEAD_BYTES."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._reading_head = True
        self._head_bytes = 0
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # dropped, unparsed, until the linger ends
        while self._reading_head and data:
            piece, data = data[:_HEAD_SLICE], data[_HEAD_SLICE:]
            self._head_bytes += len(piece)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse_head()
                return
            super().data_received(piece)
            if self._handed_over():
                return
        if data:
            super().data_received(data)

    def _handed_over(self) -> bool:
        """The connection is no longer this parser's: refused (400) or upgraded to a
        WebSocket, which drops what follows the head, as uvicorn itself does."""
        return self.transport.is_closing() or self.transport.get_protocol() is not self

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # Whatever follows on this connection is the next request's head.
        self._reading_head = True
        self._head_bytes = 0

    def _refuse_head(self) -> None:
        self._refused = True
        self.transport.write(_TOO_LARGE_ANSWER)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(_LINGER_S, self.transport.close)


def api_server(
    app: ASGIApp, *, host: str, port: int, access_log: bool = True, log_level: str | None = None
) -> uvicorn.Server:
    """The API's uvicorn server: `python -m api` and `make run` alike."""
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            http=BoundedHeadProtocol,
            access_log=access_log,
            log_level=log_level,
        )
    )
