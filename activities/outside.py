"""How an outside system's answer reaches a case (docs/outside/*.openapi.yaml).

Three kinds of answer besides a yes, each with its own path:
- a refusal (a declined card, no stock, a rejected claim): a business outcome the
  adapter raises as `OutsideRefusal`; the activity turns it into a non-retryable
  `ApplicationError` of the system's `NoType`, so the workflow takes the refusal's path;
- an answer the contract does not define (an unexpected status or body): `UnknownAnswer`,
  also non-retryable, its own type, kept for a person (the case records it);
- no answer (a timeout, a 5xx, a connection refused): any other exception, which
  Temporal retries with the call's retry policy.

The workflows read an activity's failure back with `outside_no`: a typed `OutsideNo`,
or None for a failure that is not an outside system's answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from temporalio.exceptions import ActivityError, ApplicationError

from domain.refusal import OutsideAnswer


class NoType(StrEnum):
    """The ApplicationError type of each outside system's refusal, and of an answer no
    contract defines. The workflows branch on these names."""

    PAYMENT_DECLINED = "PaymentDeclined"
    SHIPMENT_REFUSED = "ShipmentRefused"
    CLAIM_REJECTED = "ClaimRejected"
    INTERCEPT_REFUSED = "InterceptRefused"
    MESSAGE_REFUSED = "MessageRefused"
    UNKNOWN_ANSWER = "UnknownAnswer"


class OutsideRefusal(Exception):
    """The outside system said no, with its reason (HTTP 422, `outcome: refused`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownAnswer(Exception):
    """The outside system answered something its contract does not define. `what` says
    which status and shape, never the body (it may carry personal data)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass(frozen=True)
class OutsideNo:
    """An outside system's no as a case reads it: refused (with its reason) or an
    unknown answer (with what came), never retried."""

    type: NoType
    reason: str

    @property
    def answer(self) -> OutsideAnswer:
        if self.type is NoType.UNKNOWN_ANSWER:
            return OutsideAnswer.UNKNOWN
        return OutsideAnswer.REFUSED


@contextmanager
def answered_no_as(refusal: NoType) -> Iterator[None]:
    """Inside an activity: the adapter's refusal or unknown answer leaves as a
    non-retryable ApplicationError the workflow branches on; anything else is retried."""
    try:
        yield
    except OutsideRefusal as no:
        raise ApplicationError(no.reason, type=refusal, non_retryable=True) from no
    except UnknownAnswer as unknown:
        raise ApplicationError(
            f"an answer the contract does not define: {unknown.what}",
            type=NoType.UNKNOWN_ANSWER,
            non_retryable=True,
        ) from unknown


def outside_no(error: ActivityError | ApplicationError, *expected: NoType) -> OutsideNo | None:
    """The outside system's no behind an activity's failure, if it is one of `expected`
    or an unknown answer; None for any other failure (the caller re-raises it). A local
    activity's failure reaches the workflow as the ApplicationError itself, an
    activity's wrapped in an ActivityError."""
    cause = error.cause if isinstance(error, ActivityError) else error
    if not isinstance(cause, ApplicationError):
        return None
    if cause.type not in (*expected, NoType.UNKNOWN_ANSWER):
        return None
    return OutsideNo(type=NoType(cause.type), reason=cause.message)
