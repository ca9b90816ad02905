"""An error that names, as data, what it concerns: the field (None for the request as a
whole) and the rule of domain.md that refuses (None where none does). Raised where the
problem is found, read by each way in (the API's error shape, the desk, the CLI) as it is,
never parsed back out of its words."""

from __future__ import annotations

from domain.rules import Rule


class FieldError(Exception):
    """`str()` is `field: message`, the one line people and logs read."""

    def __init__(self, message: str, *, field: str | None = None, rule: Rule | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.message = message
        self.field = field
        self.rule = rule


class InvalidValue(FieldError, ValueError):
    """A value a model's own check refuses. Pydantic reports it as a `value_error` with
    this error kept in its context, so the ways in read its field and rule from there."""
