"""JSON as JSON means it: a key twice in one object is refused (Python's parser would
silently keep the last), and so are NaN and Infinity, which JSON has no word for. Every
route of the API parses its body so (`StrictJSONRoute`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class DuplicateKeyError(json.JSONDecodeError):
    def __init__(self, key: str, document: str) -> None:
        super().__init__(f"duplicate key {key!r}", document, 0)
        self.key = key


class _StrictJSONRequest(Request):
    """JSON as JSON means it: a key twice in one object is refused (Python's parser would
    silently keep the last), and so are NaN and Infinity, which JSON has no word for.
    Each is a JSONDecodeError, which FastAPI answers as 422 (any other error is a 400).
    The body is read through the route's own request, which keeps it for the error
    handlers (they store a refused body)."""

    def __init__(self, route_request: Request) -> None:
        super().__init__(route_request.scope, route_request.receive)
        self._route_request = route_request

    async def body(self) -> bytes:
        return await self._route_request.body()

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                document = body.decode("utf-8")
            except UnicodeDecodeError as error:
                raise json.JSONDecodeError("not UTF-8", repr(body[:40]), error.start) from error

            def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
                found: dict[str, Any] = {}
                for key, value in pairs:
                    if key in found:
                        raise DuplicateKeyError(key, document)
                    found[key] = value
                return found

            def no_constant(name: str) -> Any:
                raise json.JSONDecodeError(f"{name} is not a JSON number", document, 0)

            try:
                self._json = json.loads(
                    document, object_pairs_hook=unique_keys, parse_constant=no_constant
                )
            except RecursionError as error:  # [[[[... a few KiB deep
                raise json.JSONDecodeError("nested too deeply", document, 0) from error
        return self._json


class StrictJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request))

        return strict
