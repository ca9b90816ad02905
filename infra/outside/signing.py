"""Signed requests to the merchant's own services (docs/outside/README.md).

Every request carries `X-Aftersales-Timestamp` (Unix seconds) and `X-Aftersales-Signature`
(`v1=` and the hex HMAC-SHA256, keyed with the system's shared secret, of
`METHOD\\nPATH\\nTIMESTAMP\\nIDEMPOTENCY_KEY\\n` followed by the exact body bytes; PATH
with its query, IDEMPOTENCY_KEY empty for a request without one). The receiver recomputes
it, compares in constant time, and refuses a timestamp outside the replay window; a
request replayed inside the window carries its `Idempotency-Key`, signed with the rest,
so it changes nothing twice (a copy under a new key is no longer signed). `verify` is the
receiver's side, as the tests' server runs it."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta

TIMESTAMP_HEADER = "X-Aftersales-Timestamp"
SIGNATURE_HEADER = "X-Aftersales-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# How far a receiver accepts a request's timestamp from its own clock, either way.
REPLAY_WINDOW = timedelta(minutes=5)
_VERSION = "v1="


class BadSignature(ValueError):
    """A request whose signature or timestamp the receiver refuses (answer 401)."""


def signature(
    secret: bytes, method: str, path: str, timestamp: int, idempotency_key: str, body: bytes
) -> str:
    signed = f"{method.upper()}\n{path}\n{timestamp}\n{idempotency_key}\n".encode() + body
    return _VERSION + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def signed_headers(
    secret: bytes,
    method: str,
    path: str,
    body: bytes,
    now: datetime,
    *,
    idempotency_key: str | None = None,
) -> dict[str, str]:
    """The request's timestamp, signature and (when it has one) idempotency key."""
    timestamp = int(now.timestamp())
    key = {} if idempotency_key is None else {IDEMPOTENCY_HEADER: idempotency_key}
    return key | {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, method, path, timestamp, idempotency_key or "", body),
    }


def verify(
    secret: bytes,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    window: timedelta = REPLAY_WINDOW,
) -> None:
    """The receiver's check: raises BadSignature unless the request is signed with
    `secret` and stamped within `window` of `now`."""
    stamp = headers.get(TIMESTAMP_HEADER, "")
    # ASCII digits only: `isdigit` alone takes "²", which `int` then refuses.
    if not (stamp.isascii() and stamp.isdigit()):
        raise BadSignature(f"{TIMESTAMP_HEADER}: missing or not Unix seconds")
    if abs(now.timestamp() - int(stamp)) > window.total_seconds():
        raise BadSignature(f"{TIMESTAMP_HEADER}: outside the {window} replay window")
    key = headers.get(IDEMPOTENCY_HEADER, "")
    expected = signature(secret, method, path, int(stamp), key, body)
    # As bytes: `compare_digest` raises TypeError on a str that is not ASCII.
    sent = headers.get(SIGNATURE_HEADER, "").encode("utf-8", "replace")
    if not hmac.compare_digest(expected.encode(), sent):
        raise BadSignature(f"{SIGNATURE_HEADER}: does not match the request")
