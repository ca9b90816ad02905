"""One of the merchant's services over HTTP: signed requests with a timeout, and every
answer classified as its contract says (docs/outside/*.openapi.yaml):

| answer | meaning | the case |
|---|---|---|
| 2xx with the documented body | yes | goes on |
| 422 `{"outcome": "refused", "reason": ...}` | a business no | the refusal's path, never retried |
| 408, 429, 5xx, a timeout, no connection | no answer yet | retried by Temporal |
| anything else | undefined | `UnknownAnswer`: kept for a person, never retried |
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from activities.outside import OutsideRefusal, UnknownAnswer
from infra.outside.signing import signed_headers

AnswerT = TypeVar("AnswerT", bound=BaseModel)

REFUSED_STATUS = 422
# Statuses that mean "not now": the call is retried like a timeout.
_RETRY_LATER = frozenset({408, 425, 429})


class Method(StrEnum):
    GET = "GET"
    POST = "POST"


class Refused(BaseModel):
    """The body of a refusal (HTTP 422): the reason is the provider's, for people."""

    outcome: Literal["refused"]
    reason: str


class NoAnswerYet(Exception):
    """A timeout, a connection refused, 408/425/429 or a 5xx: retried by Temporal."""


@dataclass(frozen=True)
class Endpoint:
    """Where a system's service listens, the secret its requests are signed with, and
    how long one call may take."""

    base_url: str
    secret: bytes
    timeout: timedelta


class SignedService:
    def __init__(self, name: str, endpoint: Endpoint) -> None:
        self._name = name
        self._secret = endpoint.secret
        self._http = httpx.AsyncClient(
            base_url=endpoint.base_url.rstrip("/"),
            timeout=endpoint.timeout.total_seconds(),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        method: Method,
        path: str,
        answer: type[AnswerT],
        *,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> AnswerT:
        """The documented answer; raises OutsideRefusal, UnknownAnswer or NoAnswerYet."""
        found = await self._call(method, path, answer, body, idempotency_key, absent_on_404=False)
        if found is None:  # only a 404 where the contract defines it answers nothing
            raise UnknownAnswer(f"{self._name}: HTTP 404, which its contract does not define")
        return found

    async def find(self, path: str, answer: type[AnswerT]) -> AnswerT | None:
        """A GET whose contract defines 404 as "none": the answer, or None."""
        return await self._call(Method.GET, path, answer, None, None, absent_on_404=True)

    async def _call(
        self,
        method: Method,
        path: str,
        answer: type[AnswerT],
        body: dict[str, Any] | None,
        idempotency_key: str | None,
        *,
        absent_on_404: bool,
    ) -> AnswerT | None:
        content = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        request = self._http.build_request(method, path, content=content)
        request.headers.update(
            signed_headers(
                self._secret, method, request.url.raw_path.decode(), content, datetime.now(UTC),
                idempotency_key=idempotency_key,
            )
        )  # fmt: skip
        if body is not None:
            request.headers["Content-Type"] = "application/json"
        try:
            response = await self._http.send(request)
        except httpx.TransportError as error:  # timeouts included
            raise NoAnswerYet(f"{self._name}: no answer ({type(error).__name__})") from error
        return self._classified(response, answer, absent_on_404=absent_on_404)

    def _classified(
        self, response: httpx.Response, answer: type[AnswerT], *, absent_on_404: bool
    ) -> AnswerT | None:
        status = response.status_code
        if status >= 500 or status in _RETRY_LATER:
            raise NoAnswerYet(f"{self._name}: HTTP {status}, to be retried")
        if status == 404 and absent_on_404:
            return None
        if 200 <= status < 300:
            return self._parsed(response, answer)
        if status == REFUSED_STATUS:
            raise OutsideRefusal(self._parsed(response, Refused).reason)
        raise UnknownAnswer(f"{self._name}: HTTP {status}, which its contract does not define")

    def _parsed(self, response: httpx.Response, model: type[AnswerT]) -> AnswerT:
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            # The body's words stay out: they may carry personal data (docs/privacy.md).
            raise UnknownAnswer(
                f"{self._name}: HTTP {response.status_code} with a body its contract does "
                f"not define ({response.headers.get('content-type', 'no content type')}, "
                f"{len(response.content)} bytes)"
            ) from None
