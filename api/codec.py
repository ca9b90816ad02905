"""The codec server: Temporal's remote codec protocol, so the Temporal UI and CLI of an
authorised operator show cases decoded while Temporal itself only ever holds ciphertext.

`POST /codec/decode` and `/codec/encode` take and answer `{"payloads": [...]}` (the
Payloads protobuf as JSON, bytes in base64). Staff only (bearer token; the UI sends the
operator's access token with `passAccessToken`). CORS lets the UI's origin call it from the
browser; the preflight carries no token and is answered before authentication."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import Depends, FastAPI, Request, Response, status
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from api.auth import Caller
from infra.codec import CodecError

# The headers the Temporal UI sends with a codec request.
_UI_HEADERS = ["Authorization", "Content-Type", "X-Namespace", "Caller-Type"]


def codec_app(
    codec: PayloadCodec, staff: Callable[..., Awaitable[Caller]], origins: Sequence[str]
) -> FastAPI:
    """An app of its own, mounted at /codec by create_app: its CORS policy covers these
    two routes only, not the case API."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["POST"],
        allow_headers=_UI_HEADERS,
        max_age=600,
    )
    app.add_exception_handler(NotPayloadsError, _not_payloads)

    @app.post("/encode")
    async def encode(request: Request, _: Annotated[Caller, Depends(staff)]) -> Response:
        payloads = await _payloads(request)
        return _answer(await codec.encode(payloads))

    @app.post("/decode")
    async def decode(request: Request, _: Annotated[Caller, Depends(staff)]) -> Response:
        """A payload that cannot be opened (its case was erased, or its key is not in
        the ring) comes back as it was: still encrypted, the others decoded."""
        decoded = []
        for payload in await _payloads(request):
            try:
                decoded.extend(await codec.decode([payload]))
            except CodecError:
                decoded.append(payload)
        return _answer(decoded)

    return app


class NotPayloadsError(Exception):
    pass


async def _payloads(request: Request) -> list[Payload]:
    try:
        parsed = json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as error:
        raise NotPayloadsError(str(error)) from None
    return list(parsed.payloads)


async def _not_payloads(_: Request, error: Exception) -> JSONResponse:
    message = f"not a Temporal Payloads JSON: {error}"
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
