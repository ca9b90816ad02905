"""The desk's forms: each posted form parsed after the session is proven, its CSRF token
checked against the session's, its fields validated into the gateway's own messages."""

from __future__ import annotations

import secrets
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from desk.sessions import Session
from domain.case import BusinessKey, Deadline, ExplainedReason, PaymentResolutionKind, RootCause
from domain.errors import FieldError
from domain.money import Money

CSRF_FIELD = "csrf_token"
ACTION_ID_FIELD = "action_id"


class Forbidden(Exception):
    """403: this person, in the roles they hold, may not open this page or send this."""


class BadForm(ValueError):
    """A form field the desk cannot take: the message names the field, and `rule` the
    rule of domain.md that refuses it, where one does."""

    def __init__(self, message: str, *, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule


def bad_form(error: ValidationError) -> BadForm:
    """A form's first refused field as the desk says it: the field, what is wrong, and the
    rule where the model's own check names one (domain/errors.py), never the value."""
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    if isinstance(raised := first.get("ctx", {}).get("error"), FieldError):
        return BadForm(f"{field or raised.field or 'form'}: {raised.message}", rule=raised.rule)
    return BadForm(f"{field or 'form'}: {first['msg']}")


def new_action_id() -> str:
    """The id a decision form carries from the page that made it: sent twice (a double
    click, a reload), the case decides once (the gateway's Update id includes it)."""
    return f"desk-{secrets.token_urlsafe(12)}"


async def posted(request: Request) -> dict[str, str]:
    """The form's fields (read only now: the session was proven before the body), or
    Forbidden when its CSRF token is not the session's."""
    session: Session = request.state.desk_session
    form = await request.form()
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    if not session.admits(fields.pop(CSRF_FIELD, "")):
        raise Forbidden("csrf_token: the form is not from this session's page; reload it")
    return fields


def amount_of(text: str, currency: str, field: str) -> Money:
    """`90`, `90.5` or `90.00` in the case's currency (two decimals, as Money keeps)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as error:
        raise BadForm(f"{field}: not an amount like 90.00") from error
    minor = value * 100
    if not value.is_finite() or minor != minor.to_integral_value() or value < 0:
        raise BadForm(f"{field}: not an amount like 90.00")
    try:
        return Money(amount_minor=int(minor), currency=currency)
    except ValidationError as error:
        raise BadForm(f"{field}: {error.errors()[0]['msg']}") from error


class RejectionReason(StrEnum):
    """The explanations an agent picks from to reject (R20: every refusal says why, in
    words the customer reads); "other" is written by hand."""

    NO_DEFECT_SHOWN = "the photos do not show the defect described"
    SIGNS_OF_USE = "the item shows signs of use beyond trying it on"
    AS_DESCRIBED = "the item matches its description on the product page"
    OUTSIDE_WARRANTY = "the damage is not covered: it was caused after delivery"


# The lengths an extension form offers, in days (the case takes at most 30).
EXTENSION_DAYS = (1, 2, 3, 7, 14)


class FormFields(BaseModel):
    """A form's fields as the browser sends them: text, so a number is parsed from it
    (the JSON API's models are strict instead); unknown fields are refused. What they
    become (the gateway's messages) is validated again as any boundary model is."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ReviewForm(FormFields):
    reason: ExplainedReason | None = None
    root_cause: RootCause | None = None


class ExplainedForm(FormFields):
    reason: ExplainedReason


class CompensationForm(ExplainedForm):
    # Read in the case's currency (`amount_of`), which the form does not carry.
    amount: str | None = None


class AssignForm(FormFields):
    agent: BusinessKey


class ExtendForm(FormFields):
    deadline: Deadline
    days: Annotated[int, Field(ge=1, le=30)]
    reason: ExplainedReason


class RulingForm(FormFields):
    favour_customer: Literal["yes", "no"]
    reason: ExplainedReason
    # Empty: all that remains refundable (R19).
    refund: str | None = None


class PaymentResolutionForm(FormFields):
    """R21: what a person does with a payment the provider declined; `reference` says
    how it was settled another way (the case's own check requires it for that only)."""

    resolution: PaymentResolutionKind
    reason: ExplainedReason
    reference: str | None = None


# What each choice does, as the form offers it (domain/case.py `PaymentResolutionKind`).
PAYMENT_RESOLUTIONS = {
    PaymentResolutionKind.RETRY: "try it again under its key (the provider pays a key once)",
    PaymentResolutionKind.SETTLED_ELSEWHERE: "record it settled another way (a bank transfer, "
    "a voucher): no payment is tried; give its reference",
}


class NoteForm(FormFields):
    text: Annotated[str, Field(min_length=1, max_length=2000)]


def blank_as_none(fields: dict[str, str]) -> dict[str, str | None]:
    return {name: value.strip() or None for name, value in fields.items()}


def said(problem: Exception) -> str:
    """A refused value's field and what is wrong with it: never the value itself."""
    if isinstance(problem, ValidationError | RequestValidationError):
        first = problem.errors()[0]
        # A path or query parameter's location starts with where it was sent.
        loc = [str(p) for p in first["loc"] if p not in ("path", "query", "body")]
        return f"{'.'.join(loc) or 'form'}: {first['msg']}"
    return str(problem)
